//! Unit names, validated with systemd's rules (`unit_name_is_valid`).

use std::fmt;

use crate::NameError;

/// The unit types systemd knows, by suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UnitType {
    /// `.service`
    Service,
    /// `.socket`
    Socket,
    /// `.target`
    Target,
    /// `.timer`
    Timer,
    /// `.path`
    Path,
    /// `.slice`
    Slice,
    /// `.scope`
    Scope,
    /// `.mount`
    Mount,
    /// `.automount`
    Automount,
    /// `.swap`
    Swap,
    /// `.device`
    Device,
}

impl UnitType {
    const ALL: [UnitType; 11] = [
        UnitType::Service,
        UnitType::Socket,
        UnitType::Target,
        UnitType::Timer,
        UnitType::Path,
        UnitType::Slice,
        UnitType::Scope,
        UnitType::Mount,
        UnitType::Automount,
        UnitType::Swap,
        UnitType::Device,
    ];

    /// The suffix without the dot: `service`.
    pub fn suffix(self) -> &'static str {
        match self {
            UnitType::Service => "service",
            UnitType::Socket => "socket",
            UnitType::Target => "target",
            UnitType::Timer => "timer",
            UnitType::Path => "path",
            UnitType::Slice => "slice",
            UnitType::Scope => "scope",
            UnitType::Mount => "mount",
            UnitType::Automount => "automount",
            UnitType::Swap => "swap",
            UnitType::Device => "device",
        }
    }

    /// The type for a suffix without the dot.
    pub fn from_suffix(s: &str) -> Option<UnitType> {
        UnitType::ALL.into_iter().find(|t| t.suffix() == s)
    }
}

/// A valid systemd unit name such as `web.service`, `worker@.service` or
/// `worker@a.service`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UnitName {
    full: String,
    ty: UnitType,
}

/// systemd's UNIT_NAME_MAX is 256 including the terminating NUL.
const UNIT_NAME_MAX: usize = 255;

fn valid_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, ':' | '_' | '.' | '-' | '\\' | '@')
}

impl UnitName {
    /// Parses a full unit name, suffix included.
    pub fn parse(s: &str) -> Result<UnitName, NameError> {
        if s.is_empty() {
            return Err(NameError::Empty);
        }
        if s.len() > UNIT_NAME_MAX {
            return Err(NameError::TooLong);
        }
        if let Some(c) = s.chars().find(|c| !valid_char(*c)) {
            return Err(NameError::BadChar(c));
        }
        let (stem, suffix) = s.rsplit_once('.').ok_or(NameError::NoSuffix)?;
        let ty = UnitType::from_suffix(suffix).ok_or_else(|| {
            if suffix.is_empty() {
                NameError::NoSuffix
            } else {
                NameError::BadSuffix(suffix.to_string())
            }
        })?;
        match stem.matches('@').count() {
            0 => {}
            1 => {
                let (prefix, _instance) = stem.split_once('@').unwrap_or_default();
                if prefix.is_empty() {
                    return Err(NameError::Empty);
                }
            }
            _ => return Err(NameError::BadAt),
        }
        if stem.is_empty() {
            return Err(NameError::Empty);
        }
        Ok(UnitName {
            full: s.to_string(),
            ty,
        })
    }

    /// Parses a name that may omit its suffix; `default` is appended when the
    /// name has no known unit-type suffix (`nginx` → `nginx.service`).
    pub fn with_default(s: &str, default: UnitType) -> Result<UnitName, NameError> {
        let has_suffix = s
            .rsplit_once('.')
            .is_some_and(|(_, suf)| UnitType::from_suffix(suf).is_some());
        if has_suffix {
            UnitName::parse(s)
        } else {
            UnitName::parse(&format!("{s}.{}", default.suffix()))
        }
    }

    /// Like [`UnitName::with_default`], but the result must be of type `ty`.
    pub fn of_type(s: &str, ty: UnitType) -> Result<UnitName, NameError> {
        let name = UnitName::with_default(s, ty)?;
        if name.ty != ty {
            return Err(NameError::WrongType {
                expected: ty.suffix(),
                found: name.ty.suffix().to_string(),
            });
        }
        Ok(name)
    }

    /// The full name, `web.service`.
    pub fn as_str(&self) -> &str {
        &self.full
    }

    /// The unit type.
    pub fn unit_type(&self) -> UnitType {
        self.ty
    }

    /// The name without suffix: `web` for `web.service`, `worker@` for
    /// `worker@.service`.
    pub fn stem(&self) -> &str {
        &self.full[..self.full.len() - self.ty.suffix().len() - 1]
    }

    /// `worker@.service`: a template that needs an instance to run.
    pub fn is_template(&self) -> bool {
        self.stem().ends_with('@')
    }

    /// For an instance (`worker@3.service`): its prefix and instance,
    /// `("worker", "3")`. `None` for a template or a plain unit.
    pub fn instance_parts(&self) -> Option<(&str, &str)> {
        let (prefix, instance) = self.stem().split_once('@')?;
        (!instance.is_empty()).then_some((prefix, instance))
    }

    /// For an instance, its template: `worker@.service` for `worker@3.service`.
    pub fn template(&self) -> Option<UnitName> {
        let (prefix, _) = self.instance_parts()?;
        UnitName::parse(&format!("{prefix}@.{}", self.ty.suffix())).ok()
    }

    /// `worker@a.service` for a template `worker@.service` and instance `a`.
    /// Returns `None` when this is not a template.
    pub fn instance(&self, instance: &str) -> Option<Result<UnitName, NameError>> {
        self.is_template()
            .then(|| UnitName::parse(&format!("{}{instance}.{}", self.stem(), self.ty.suffix())))
    }
}

impl fmt::Display for UnitName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full)
    }
}

/// As its text; deserialising validates it again.
impl serde::Serialize for UnitName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.full)
    }
}

impl<'de> serde::Deserialize<'de> for UnitName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<UnitName, D::Error> {
        let s = String::deserialize(d)?;
        UnitName::parse(&s).map_err(|e| serde::de::Error::custom(format!("{s:?}: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_what_systemd_accepts() {
        for ok in [
            "web.service",
            "worker@.service",
            "worker@a-b.service",
            "sys-fs\\x2dx.mount",
            "a:b_c.target",
            "backup.timer",
        ] {
            assert!(UnitName::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_what_systemd_rejects() {
        let cases: &[(&str, NameError)] = &[
            ("", NameError::Empty),
            (".service", NameError::Empty),
            ("@.service", NameError::Empty),
            ("web", NameError::NoSuffix),
            ("web.", NameError::NoSuffix),
            ("web.servic", NameError::BadSuffix("servic".into())),
            ("we b.service", NameError::BadChar(' ')),
            ("web\n.service", NameError::BadChar('\n')),
            ("a@b@c.service", NameError::BadAt),
            ("w/eb.service", NameError::BadChar('/')),
        ];
        for (input, err) in cases {
            assert_eq!(UnitName::parse(input).as_ref(), Err(err), "{input:?}");
        }
        let long = format!("{}.service", "a".repeat(250));
        assert_eq!(UnitName::parse(&long), Err(NameError::TooLong));
    }

    #[test]
    fn default_suffix_and_templates() {
        let n = UnitName::with_default("worker@", UnitType::Service).unwrap();
        assert_eq!(n.as_str(), "worker@.service");
        assert!(n.is_template());
        assert_eq!(n.stem(), "worker@");
        assert_eq!(
            n.instance("a").unwrap().unwrap().as_str(),
            "worker@a.service"
        );
        let t = UnitName::with_default("network.target", UnitType::Service).unwrap();
        assert_eq!(t.unit_type(), UnitType::Target);
        assert_eq!(
            UnitName::of_type("network.target", UnitType::Service),
            Err(NameError::WrongType {
                expected: "service",
                found: "target".into()
            })
        );
        assert!(UnitName::parse("web.service")
            .unwrap()
            .instance("x")
            .is_none());
    }

    #[test]
    fn names_round_trip_through_serde_and_are_validated() {
        let n = UnitName::parse("web@a.service").unwrap();
        let json = serde_json::to_string(&n).unwrap();
        assert_eq!(json, "\"web@a.service\"");
        assert_eq!(serde_json::from_str::<UnitName>(&json).unwrap(), n);
        assert!(serde_json::from_str::<UnitName>("\"../x.service\"").is_err());
    }

    #[test]
    fn an_instance_knows_its_prefix_instance_and_template() {
        let n = UnitName::parse("worker@a-b.service").unwrap();
        assert_eq!(n.instance_parts(), Some(("worker", "a-b")));
        assert_eq!(n.template().unwrap().as_str(), "worker@.service");
        let t = UnitName::parse("worker@.service").unwrap();
        assert_eq!((t.instance_parts(), t.template()), (None, None));
        let w = UnitName::parse("web.timer").unwrap();
        assert_eq!((w.instance_parts(), w.template()), (None, None));
    }
}
