//! Reading script values: sizes, durations, percentages, commands, names.
//!
//! Each reader takes a Rhai [`Dynamic`] and either returns a typed value or
//! an [`Issue`] saying what was expected. Readers know nothing about keys or
//! positions; the caller attaches those.

use rhai::{Array, Dynamic, FnPtr, ImmutableString};
use sparrow_unit::{UnitName, UnitType};

mod commands;
pub use commands::{absolute_command, command_words, header, header_text, regex_text};

/// What is wrong with a value, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// What is wrong.
    pub message: String,
    /// How to fix it, when there is something useful to say.
    pub help: Option<String>,
}

impl Issue {
    pub(crate) fn new(message: impl Into<String>) -> Issue {
        Issue {
            message: message.into(),
            help: None,
        }
    }
    pub(crate) fn help(mut self, help: impl Into<String>) -> Issue {
        self.help = Some(help.into());
        self
    }
}

/// `raw("...")` in a definition: text that keeps systemd's `%` specifiers
/// (and `$VAR` in commands) instead of having them escaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Raw(pub String);

/// A string from a definition, with whether it was wrapped in `raw()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Str {
    /// The characters.
    pub text: String,
    /// Written with `raw(..)`.
    pub raw: bool,
}

/// A friendly name for a value's type, for messages.
pub fn type_name(v: &Dynamic) -> &'static str {
    if v.is_string() {
        "a string"
    } else if v.is_int() {
        "an integer"
    } else if v.is_float() {
        "a number"
    } else if v.is_bool() {
        "a boolean"
    } else if v.is_array() {
        "an array"
    } else if v.is_map() {
        "a map"
    } else if v.is_unit() {
        "nothing (())"
    } else if v.is_fnptr() {
        "a closure"
    } else if v.is::<Raw>() {
        "raw(..)"
    } else if v.is_char() {
        "a character"
    } else {
        "an unsupported value"
    }
}

fn expected(what: &str, v: &Dynamic) -> Issue {
    Issue::new(format!("expected {what}, found {}", type_name(v)))
}

/// A string, `raw(..)`, or a number/bool turned into text.
pub fn text(v: &Dynamic) -> Result<Str, Issue> {
    if let Some(s) = v.read_lock::<ImmutableString>() {
        return Ok(Str {
            text: s.to_string(),
            raw: false,
        });
    }
    if let Some(r) = v.read_lock::<Raw>() {
        return Ok(Str {
            text: r.0.clone(),
            raw: true,
        });
    }
    if v.is_int() || v.is_float() || v.is_bool() {
        return Ok(Str {
            text: v.to_string(),
            raw: false,
        });
    }
    Err(expected("a string", v))
}

/// A single string or an array of them.
pub fn texts(v: &Dynamic) -> Result<Vec<Str>, Issue> {
    match v.read_lock::<Array>() {
        Some(a) => a.iter().map(text).collect(),
        None => {
            Ok(vec![text(v).map_err(|_| {
                expected("a string or an array of strings", v)
            })?])
        }
    }
}

/// A closure (`|| ..`), with its declared parameter count checked by the caller.
pub fn closure(v: &Dynamic) -> Option<FnPtr> {
    v.read_lock::<FnPtr>().map(|f| f.clone())
}

/// An integer within `min..=max`; strings of digits are accepted.
pub fn integer(v: &Dynamic, min: i64, max: i64) -> Result<i64, Issue> {
    let n = if let Ok(n) = v.as_int() {
        n
    } else if let Some(s) = v.read_lock::<ImmutableString>() {
        s.trim()
            .parse::<i64>()
            .map_err(|_| Issue::new(format!("expected an integer, found {:?}", s.as_str())))?
    } else {
        return Err(expected("an integer", v));
    };
    if n < min || n > max {
        return Err(Issue::new(format!("{n} is out of range {min}..={max}")));
    }
    Ok(n)
}

/// `true`/`false`, or systemd's spellings as strings.
pub fn boolean(v: &Dynamic) -> Result<bool, Issue> {
    if let Ok(b) = v.as_bool() {
        return Ok(b);
    }
    if let Some(s) = v.read_lock::<ImmutableString>() {
        return match s.as_str() {
            "yes" | "true" | "on" | "1" => Ok(true),
            "no" | "false" | "off" | "0" => Ok(false),
            other => Err(Issue::new(format!("expected a boolean, found {other:?}"))
                .help("use true or false")),
        };
    }
    Err(expected("a boolean", v))
}

/// One of `allowed`, with a suggestion when it is a near miss.
pub fn one_of(v: &Dynamic, allowed: &[&'static str]) -> Result<&'static str, Issue> {
    let s = text(v)?;
    allowed
        .iter()
        .find(|a| **a == s.text)
        .copied()
        .ok_or_else(|| {
            let mut issue = Issue::new(format!(
                "{:?} is not one of: {}",
                s.text,
                allowed.join(", ")
            ));
            if let Some(c) = crate::names::closest(&s.text, allowed.iter().copied()) {
                issue = issue.help(format!("did you mean {c:?}?"));
            }
            issue
        })
}

const SIZE_UNITS: &[(&str, u32)] = &[
    ("K", 1),
    ("KB", 1),
    ("KIB", 1),
    ("M", 2),
    ("MB", 2),
    ("MIB", 2),
    ("G", 3),
    ("GB", 3),
    ("GIB", 3),
    ("T", 4),
    ("TB", 4),
    ("TIB", 4),
    ("P", 5),
    ("PB", 5),
    ("PIB", 5),
    ("E", 6),
    ("EB", 6),
    ("EIB", 6),
    ("B", 0),
    ("", 0),
];

/// Parses `"512M"`, `"1.5G"`, `"4096"` to bytes. Units are powers of 1024,
/// as in systemd (`K`, `M`, `G`, `T`; `KB`/`KiB` spellings accepted).
pub fn parse_size(s: &str) -> Result<u64, Issue> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let unit_up = unit.trim().to_ascii_uppercase();
    let bad = || {
        Issue::new(format!("{s:?} is not a size"))
            .help("write bytes as an integer, or a number with K, M, G or T (powers of 1024): \"512M\", 2.GB")
    };
    let exp = SIZE_UNITS
        .iter()
        .find(|(u, _)| *u == unit_up)
        .map(|(_, e)| *e)
        .ok_or_else(bad)?;
    if num.is_empty() || num.matches('.').count() > 1 {
        return Err(bad());
    }
    let factor = 1024f64.powi(exp as i32);
    let value = num.parse::<f64>().map_err(|_| bad())? * factor;
    if !value.is_finite() || value >= u64::MAX as f64 {
        return Err(Issue::new(format!("{s:?} is too large")));
    }
    Ok(value.round() as u64)
}

/// Bytes in systemd's shortest exact spelling: 4294967296 → `4G`.
pub fn render_size(bytes: u64) -> String {
    const SUFFIXES: [&str; 6] = ["K", "M", "G", "T", "P", "E"];
    let mut unit = None;
    for (i, suffix) in SUFFIXES.iter().enumerate() {
        let f = 1u64 << (10 * (i + 1));
        if bytes >= f && bytes.is_multiple_of(f) {
            unit = Some((f, *suffix));
        }
    }
    match unit {
        Some((f, s)) => format!("{}{s}", bytes / f),
        None => bytes.to_string(),
    }
}

/// A resource size as written to a unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Size {
    /// A number of bytes.
    Bytes(u64),
    /// A percentage of physical memory.
    Percent(f64),
    /// No limit.
    Infinity,
}

impl Size {
    /// systemd spelling.
    pub fn render(&self) -> String {
        match self {
            Size::Bytes(b) => render_size(*b),
            Size::Percent(p) => format!("{}%", fmt_number(*p)),
            Size::Infinity => "infinity".into(),
        }
    }
}

pub(crate) fn fmt_number(p: f64) -> String {
    if p.fract() == 0.0 {
        format!("{}", p as i64)
    } else {
        format!("{p}")
    }
}

fn parse_percent_str(s: &str) -> Option<f64> {
    let n = s.trim().strip_suffix('%')?.trim();
    n.parse::<f64>().ok().filter(|p| p.is_finite() && *p >= 0.0)
}

/// Bytes, a percentage of RAM, or `infinity`.
pub fn size(v: &Dynamic) -> Result<Size, Issue> {
    if let Ok(n) = v.as_int() {
        return u64::try_from(n)
            .map(Size::Bytes)
            .map_err(|_| Issue::new(format!("size {n} is negative")));
    }
    if let Ok(f) = v.as_float() {
        if f >= 0.0 && f.is_finite() {
            return Ok(Size::Bytes(f.round() as u64));
        }
        return Err(Issue::new(format!("size {f} is negative")));
    }
    let s = text(v).map_err(|_| expected("a size", v))?.text;
    if s.trim() == "infinity" {
        return Ok(Size::Infinity);
    }
    if s.trim().ends_with('%') {
        return match parse_percent_str(&s) {
            Some(p) if p <= 100.0 => Ok(Size::Percent(p)),
            _ => Err(Issue::new(format!(
                "{s:?} is not a percentage between 0% and 100%"
            ))),
        };
    }
    parse_size(&s).map(Size::Bytes)
}

/// A percentage such as `"150%"`; an integer or number means percent.
pub fn percent(v: &Dynamic) -> Result<f64, Issue> {
    if let Ok(n) = v.as_int() {
        return if n > 0 {
            Ok(n as f64)
        } else {
            Err(Issue::new(format!("{n}% must be positive")))
        };
    }
    if let Ok(f) = v.as_float() {
        return if f > 0.0 && f.is_finite() {
            Ok(f)
        } else {
            Err(Issue::new(format!("{f}% must be positive")))
        };
    }
    let s = text(v).map_err(|_| expected("a percentage", v))?.text;
    parse_percent_str(&s).filter(|p| *p > 0.0).ok_or_else(|| {
        Issue::new(format!("{s:?} is not a percentage")).help("write it like \"150%\"")
    })
}

/// A percentage as systemd writes it.
pub fn render_percent(p: f64) -> String {
    format!("{}%", fmt_number(p))
}

const TIME_UNITS: &[(&str, u64)] = &[
    ("usec", 1),
    ("us", 1),
    ("µs", 1),
    ("msec", 1_000),
    ("ms", 1_000),
    ("seconds", 1_000_000),
    ("second", 1_000_000),
    ("sec", 1_000_000),
    ("s", 1_000_000),
    ("minutes", 60_000_000),
    ("minute", 60_000_000),
    ("min", 60_000_000),
    ("months", 2_629_800_000_000),
    ("month", 2_629_800_000_000),
    ("M", 2_629_800_000_000),
    ("m", 60_000_000),
    ("hours", 3_600_000_000),
    ("hour", 3_600_000_000),
    ("hr", 3_600_000_000),
    ("h", 3_600_000_000),
    ("days", 86_400_000_000),
    ("day", 86_400_000_000),
    ("d", 86_400_000_000),
    ("weeks", 604_800_000_000),
    ("week", 604_800_000_000),
    ("w", 604_800_000_000),
    ("years", 31_557_600_000_000),
    ("year", 31_557_600_000_000),
    ("y", 31_557_600_000_000),
];

/// Parses a systemd time span to microseconds (`"5min 20s"`, `"1.5h"`,
/// `"300ms"`, a bare number is seconds); `infinity` is `u64::MAX`.
pub fn parse_timespan(s: &str) -> Result<u64, Issue> {
    let t = s.trim();
    let bad = || {
        Issue::new(format!("{s:?} is not a time span"))
            .help("write it as systemd does: \"30s\", \"5min\", \"1h 30min\", \"500ms\"")
    };
    if t == "infinity" {
        return Ok(u64::MAX);
    }
    if t.is_empty() {
        return Err(bad());
    }
    let mut rest = t;
    let mut total: u64 = 0;
    while !rest.is_empty() {
        rest = rest.trim_start();
        let n_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, after) = rest.split_at(n_end);
        if num.is_empty() || num.matches('.').count() > 1 {
            return Err(bad());
        }
        let after = after.trim_start();
        let u_end = after
            .find(|c: char| c.is_ascii_digit() || c == '.' || c.is_whitespace())
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(u_end);
        let factor = if unit.is_empty() {
            1_000_000
        } else {
            TIME_UNITS
                .iter()
                .find(|(u, _)| *u == unit)
                .map(|(_, f)| *f)
                .ok_or_else(bad)?
        };
        let value = num.parse::<f64>().map_err(|_| bad())? * factor as f64;
        total = total.saturating_add(value.round() as u64);
        rest = next;
    }
    Ok(total)
}

/// A duration value: an integer (seconds) or a time-span string. Returns the
/// systemd spelling and the length in microseconds.
pub fn duration(v: &Dynamic) -> Result<(String, u64), Issue> {
    if let Ok(n) = v.as_int() {
        return u64::try_from(n)
            .map(|s| (format!("{s}s"), s.saturating_mul(1_000_000)))
            .map_err(|_| Issue::new(format!("duration {n} is negative")));
    }
    let s = text(v).map_err(|_| expected("a duration such as \"30s\"", v))?;
    let usec = parse_timespan(&s.text)?;
    Ok((s.text.trim().to_string(), usec))
}

/// The elements of an array value, or `None` when it is not an array.
pub fn array(v: &Dynamic) -> Option<Array> {
    v.read_lock::<Array>().map(|a| a.clone())
}

/// Reads unit names from a string (space-separated) or an array. With
/// `default`, a name without a type suffix gets it (`nginx` → `nginx.service`).
pub fn unit_names(v: &Dynamic, default: Option<UnitType>) -> Result<Vec<String>, Issue> {
    let mut out = Vec::new();
    for s in texts(v)? {
        for token in s.text.split_whitespace() {
            if s.raw {
                out.push(token.to_string());
                continue;
            }
            let parsed = match default {
                Some(t) => UnitName::of_type(token, t),
                None => UnitName::parse(token),
            };
            match parsed {
                Ok(n) => out.push(n.to_string()),
                Err(e) => {
                    let mut issue = Issue::new(format!("{token:?} is not a unit name: {e}"));
                    if default.is_none() && matches!(e, sparrow_unit::NameError::NoSuffix) {
                        issue = issue.help(format!(
                            "write the full name, such as \"{token}.service\" or \"{token}.target\" (after_service and after_target add the suffix for you)"
                        ));
                    }
                    return Err(issue);
                }
            }
        }
    }
    // An empty list means "none" (`after: []`, a `requires` closure that
    // found nothing); callers that need a name check for one.
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        let cases: &[(&str, Option<u64>)] = &[
            ("512M", Some(512 << 20)),
            ("1.5G", Some(3 << 29)),
            ("2GB", Some(2 << 30)),
            ("2 GiB", Some(2 << 30)),
            ("4096", Some(4096)),
            ("10k", Some(10 << 10)),
            ("1T", Some(1 << 40)),
            ("", None),
            ("G", None),
            ("1.2.3G", None),
            ("12X", None),
            ("-1G", None),
            ("99999999E", None),
        ];
        for (input, want) in cases {
            assert_eq!(parse_size(input).ok(), *want, "{input:?}");
        }
    }

    #[test]
    fn size_values_and_rendering() {
        assert_eq!(size(&Dynamic::from(4_i64 << 30)).unwrap().render(), "4G");
        assert_eq!(
            size(&Dynamic::from(1536_i64 << 20)).unwrap().render(),
            "1536M"
        );
        assert_eq!(size(&Dynamic::from(1000_i64)).unwrap().render(), "1000");
        assert_eq!(size(&Dynamic::from("50%")).unwrap(), Size::Percent(50.0));
        assert_eq!(size(&Dynamic::from("infinity")).unwrap(), Size::Infinity);
        assert!(size(&Dynamic::from("150%")).is_err());
        assert!(size(&Dynamic::from(-1_i64)).is_err());
        assert!(size(&Dynamic::from(true)).is_err());
        assert_eq!(render_size(0), "0");
        assert_eq!(render_size(1 << 60), "1E");
    }

    #[test]
    fn timespans() {
        let cases: &[(&str, Option<u64>)] = &[
            ("30s", Some(30_000_000)),
            ("30", Some(30_000_000)),
            ("5min 20s", Some(320_000_000)),
            ("5min20s", Some(320_000_000)),
            ("1.5h", Some(5_400_000_000)),
            ("500ms", Some(500_000)),
            ("2 s", Some(2_000_000)),
            ("infinity", Some(u64::MAX)),
            ("1M", Some(2_629_800_000_000)),
            ("1m", Some(60_000_000)),
            ("", None),
            ("s", None),
            ("10 parsecs", None),
            ("1..2s", None),
        ];
        for (input, want) in cases {
            assert_eq!(parse_timespan(input).ok(), *want, "{input:?}");
        }
        assert_eq!(
            duration(&Dynamic::from(5_i64)).unwrap(),
            ("5s".into(), 5_000_000)
        );
        assert!(duration(&Dynamic::from(-5_i64)).is_err());
    }

    #[test]
    fn percents_and_booleans() {
        assert_eq!(percent(&Dynamic::from("150%")).unwrap(), 150.0);
        assert_eq!(percent(&Dynamic::from(50_i64)).unwrap(), 50.0);
        assert_eq!(render_percent(12.5), "12.5%");
        assert!(percent(&Dynamic::from("150")).is_err());
        assert!(percent(&Dynamic::from("0%")).is_err());
        assert!(boolean(&Dynamic::from("yes")).unwrap());
        assert!(!boolean(&Dynamic::from(false)).unwrap());
        assert!(boolean(&Dynamic::from("maybe")).is_err());
        let e = one_of(&Dynamic::from("notfy"), &["simple", "notify"]).unwrap_err();
        assert_eq!(e.help.as_deref(), Some("did you mean \"notify\"?"));
    }
}
