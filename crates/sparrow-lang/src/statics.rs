//! Reading the values of static keys into unit-file values: text, tokens,
//! unit names, commands, paths, sizes and the rest, each checked as systemd
//! would read it; and raw pass-through sections.

use rhai::{Dynamic, Map};
use sparrow_unit::{UnitName, Value, Word};

use crate::keys::{KeySpec, Kind};
use crate::value::{self, unit_names, Issue, Str};

fn text_value(s: Str) -> Value {
    if s.raw {
        Value::Verbatim(s.text)
    } else {
        Value::Text(s.text)
    }
}

fn word(s: Str) -> Word {
    if s.raw {
        Word::Raw(s.text)
    } else {
        Word::Literal(s.text)
    }
}

fn argv(items: &[Dynamic]) -> Result<Value, Issue> {
    let words = items
        .iter()
        .map(|w| value::text(w).map(word))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(Word::Literal(first) | Word::Raw(first)) = words.first() {
        executable(first)?;
    }
    Ok(Value::Argv(words))
}

/// The program of a command, as systemd reads it: an absolute path, or a
/// bare name it looks up in its fixed search path; a relative path with a
/// slash is refused when the unit loads. Leading `@-:+!` prefixes and
/// quotes are not part of it.
fn executable(first: &str) -> Result<(), Issue> {
    let program = first
        .trim_start_matches(['@', '-', ':', '+', '!'])
        .trim_matches(['"', '\'']);
    if program.contains('/') && !program.starts_with('/') {
        return Err(Issue::new(format!(
            "{program:?} is a relative path; systemd runs only absolute paths or bare names"
        ))
        .help(format!(
            "write the full path, such as \"/usr/local/bin/{}\"",
            program.rsplit('/').next().unwrap_or(program)
        )));
    }
    Ok(())
}

/// One command: a string as written (systemd syntax) or an argv array.
fn command(v: &Dynamic) -> Result<Value, Issue> {
    if let Some(items) = value::array(v) {
        if items.iter().any(|i| i.is_array()) {
            return Err(Issue::new("expected one command, found an array of commands")
                .help("exec_start is one command; put extra commands in exec_start_pre or exec_start_post"));
        }
        return argv(&items);
    }
    let s = value::text(v)?;
    if s.text.trim().is_empty() {
        return Err(Issue::new("the command is empty"));
    }
    if let Some(first) = s.text.split_whitespace().next() {
        executable(first)?;
    }
    Ok(Value::Verbatim(s.text))
}

/// Several commands: a string, an array of strings, or an array of argvs.
fn commands(v: &Dynamic) -> Result<Vec<Value>, Issue> {
    match value::array(v) {
        Some(items) => {
            // ["/bin/rm", "-rf", "/x"] is three commands, the second one
            // "rf" with errors ignored: almost certainly a split argv.
            let flag = items.iter().skip(1).find_map(|i| {
                let s = i.read_lock::<rhai::ImmutableString>()?;
                (s.starts_with('-') && !s.contains(char::is_whitespace)).then(|| s.to_string())
            });
            if let Some(flag) = flag {
                return Err(Issue::new(format!(
                    "{flag:?} is not a command: an array of strings is several commands, one each"
                ))
                .help("for one command with arguments write an array of argvs: [[\"/bin/rm\", \"-rf\", \"/x\"]]"));
            }
            items
                .iter()
                .map(|item| match value::array(item) {
                    Some(words) => argv(&words),
                    None => command(item),
                })
                .collect()
        }
        None => Ok(vec![command(v)?]),
    }
}

fn list_or_nothing(names: Vec<String>) -> Vec<Value> {
    if names.is_empty() {
        Vec::new()
    } else {
        vec![Value::List(names)]
    }
}

/// `text` is an absolute path (after a `-` when `dash`; `~` counts when
/// `tilde`).
fn absolute(text: &str, dash: bool, tilde: bool) -> Result<(), Issue> {
    let body = if dash {
        text.strip_prefix('-').unwrap_or(text)
    } else {
        text
    };
    if body.starts_with('/') || (tilde && (body == "~" || body.starts_with("~/"))) {
        Ok(())
    } else {
        Err(Issue::new(format!("{text:?} is not an absolute path")))
    }
}

fn path(v: &Dynamic, dash: bool, tilde: bool) -> Result<Value, Issue> {
    let s = value::text(v)?;
    if !s.raw {
        absolute(&s.text, dash, tilde)?;
    }
    Ok(text_value(s))
}

fn escape_percent(s: Str) -> String {
    if s.raw {
        s.text
    } else {
        s.text.replace('%', "%%")
    }
}

/// A value as the user wrote it, for messages: strings quoted.
fn shown(v: &Dynamic) -> String {
    match value::text(v) {
        Ok(s) if v.is_string() => format!("{:?}", s.text),
        Ok(s) => s.text,
        Err(_) => value::type_name(v).to_string(),
    }
}

/// A socket address as systemd's `Listen*=` reads it: a port, an IPv4 or
/// bracketed IPv6 address with a port, an absolute path, or an abstract
/// `@name`. Checked here so that a typo is not a socket that fails at boot.
fn listen(v: &Dynamic) -> Result<Value, Issue> {
    if let Ok(port) = v.as_int() {
        if !(1..=65535).contains(&port) {
            return Err(Issue::new(format!("port {port} is out of range 1..=65535")));
        }
        return Ok(Value::Verbatim(port.to_string()));
    }
    let s = value::text(v)?;
    let t = s.text.as_str();
    let port_ok = |p: &str| p.parse::<u16>().is_ok_and(|p| p > 0);
    let ok = if s.raw {
        true
    } else if t.starts_with('/') || t.starts_with('@') {
        t.len() > 1
    } else if let Some(rest) = t.strip_prefix('[') {
        rest.split_once("]:")
            .is_some_and(|(a, p)| a.parse::<std::net::Ipv6Addr>().is_ok() && port_ok(p))
    } else if let Some((a, p)) = t.rsplit_once(':') {
        a.parse::<std::net::Ipv4Addr>().is_ok() && port_ok(p)
    } else {
        port_ok(t)
    };
    if !ok {
        return Err(Issue::new(format!("{t:?} is not a socket address"))
            .help("write a port (8080), \"127.0.0.1:8080\", \"[::1]:8080\" or an absolute path for an AF_UNIX socket"));
    }
    Ok(text_value(s))
}

fn check_token(s: &Str) -> Result<(), Issue> {
    if s.text.is_empty() || s.text.chars().any(char::is_whitespace) {
        return Err(Issue::new(format!(
            "{:?} must be one word without spaces",
            s.text
        )));
    }
    Ok(())
}

/// Converts one static key's value to the directive values it writes.
pub(crate) fn static_values(spec: &KeySpec, v: &Dynamic) -> Result<Vec<Value>, Issue> {
    let one = |x: Value| Ok(vec![x]);
    match spec.kind {
        Kind::Text => one(text_value(value::text(v)?)),
        Kind::Token => {
            let s = value::text(v)?;
            check_token(&s)?;
            one(text_value(s))
        }
        Kind::Tokens => {
            let mut items = Vec::new();
            for s in value::texts(v)? {
                for t in s.text.split_whitespace() {
                    items.push(if s.raw {
                        t.to_string()
                    } else {
                        t.replace('%', "%%")
                    });
                }
            }
            one(Value::List(items))
        }
        Kind::Lines => value::texts(v)?
            .into_iter()
            .map(|s| {
                if s.text.trim().is_empty() {
                    Err(Issue::new("empty value"))
                } else {
                    Ok(Value::Verbatim(s.text))
                }
            })
            .collect(),
        // No names, no directive: an empty `After=` would reset the list.
        Kind::Units => Ok(list_or_nothing(unit_names(v, None)?)),
        Kind::UnitsOf(t) => Ok(list_or_nothing(unit_names(v, Some(t))?)),
        Kind::UnitName | Kind::UnitNameOf(_) => {
            let of = match spec.kind {
                Kind::UnitNameOf(t) => Some(t),
                _ => None,
            };
            let names = unit_names(v, of)?;
            if names.len() != 1 {
                return Err(Issue::new("expected one unit name"));
            }
            one(Value::List(names))
        }
        Kind::Command => one(command(v)?),
        Kind::Commands => commands(v),
        Kind::Enum(allowed) => one(Value::Verbatim(value::one_of(v, allowed)?.to_string())),
        Kind::Duration => one(Value::Verbatim(value::duration(v)?.0)),
        Kind::Durations => match value::array(v) {
            Some(items) => items
                .iter()
                .map(|i| Ok(Value::Verbatim(value::duration(i)?.0)))
                .collect(),
            None => one(Value::Verbatim(value::duration(v)?.0)),
        },
        Kind::Resource(rk) => one(Value::Verbatim(
            crate::resource::resource(rk, v)?.render(rk),
        )),
        Kind::Int(min, max) => one(Value::Verbatim(value::integer(v, min, max)?.to_string())),
        Kind::Bool => one(Value::Verbatim(
            if value::boolean(v)? { "yes" } else { "no" }.into(),
        )),
        Kind::Path { dash, tilde } => one(path(v, dash, tilde)?),
        Kind::Paths => match value::array(v) {
            Some(items) => items.iter().map(|i| path(i, true, false)).collect(),
            None => one(path(v, true, false)?),
        },
        Kind::AbsPaths => value::texts(v)?
            .into_iter()
            .map(|s| absolute(&s.text, false, false).map(|()| text_value(s)))
            .collect(),
        Kind::PathList => {
            let mut items = Vec::new();
            for s in value::texts(v)? {
                let body = s.text.trim_start_matches(['-', '+']);
                if !body.starts_with('/') {
                    return Err(Issue::new(format!("{:?} is not an absolute path", s.text)));
                }
                items.push(escape_percent(s));
            }
            Ok(list_or_nothing(items))
        }
        Kind::RelDirs => {
            let mut items = Vec::new();
            for s in value::texts(v)? {
                let bad = s.text.starts_with('/')
                    || s.text
                        .split('/')
                        .any(|c| c.is_empty() || c == "." || c == "..");
                if bad {
                    return Err(Issue::new(format!(
                        "{:?} must be a relative path without \"..\" (systemd puts it under its base directory)",
                        s.text
                    ))
                    .help("state_directory: \"myapp\" becomes /var/lib/myapp"));
                }
                items.push(escape_percent(s));
            }
            Ok(list_or_nothing(items))
        }
        Kind::Stdio(words, prefixes) => {
            let s = value::text(v)?;
            let known = words.contains(&s.text.as_str())
                || prefixes.iter().any(|p| {
                    s.text.strip_prefix(p).is_some_and(|rest| {
                        !rest.is_empty() && (*p == "fd:" || rest.starts_with('/'))
                    })
                });
            if !known {
                let mut issue = Issue::new(format!(
                    "{:?} is not one of: {}, or {} followed by an absolute path ({} by a name)",
                    s.text,
                    words.join(", "),
                    prefixes[..prefixes.len() - 1].join(" "),
                    prefixes[prefixes.len() - 1],
                ));
                if let Some(c) = crate::names::closest(&s.text, words.iter().copied()) {
                    issue = issue.help(format!("did you mean {c:?}?"));
                }
                return Err(issue);
            }
            one(Value::Verbatim(s.text))
        }
        Kind::BoolOr(words) => match value::boolean(v) {
            Ok(b) => one(Value::Verbatim(if b { "yes" } else { "no" }.into())),
            Err(_) => match value::one_of(v, words) {
                Ok(w) => one(Value::Verbatim(w.into())),
                Err(hint) => Err(Issue {
                    message: format!(
                        "{} is not true, false, or one of: {}",
                        shown(v),
                        words.join(", ")
                    ),
                    ..hint
                }),
            },
        },
        Kind::Named(prefix) => {
            let mut items = Vec::new();
            for s in value::texts(v)? {
                for (i, t) in s.text.split_whitespace().enumerate() {
                    let body = if i == 0 {
                        t.strip_prefix('~').unwrap_or(t)
                    } else {
                        t
                    };
                    let ok = t == "none"
                        || body.strip_prefix(prefix).is_some_and(|rest| {
                            !rest.is_empty()
                                && rest.chars().all(|c| {
                                    c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'
                                })
                        });
                    if !ok {
                        let none = if prefix == "AF_" {
                            "; \"none\" for none"
                        } else {
                            ""
                        };
                        let mut issue = Issue::new(format!(
                            "{t:?} is not a {prefix}NAME (\"~\" in front of the first inverts the list{none})"
                        ));
                        if !t.contains('_') || !t.starts_with(prefix) {
                            let fixed = format!("{prefix}{}", body.to_ascii_uppercase());
                            issue = issue.help(format!("did you mean {fixed:?}?"));
                        }
                        return Err(issue);
                    }
                    items.push(t.to_string());
                }
            }
            match (items.is_empty(), prefix) {
                // `CapabilityBoundingSet=` with nothing is the empty set.
                (true, "CAP_") => one(Value::Verbatim(String::new())),
                (true, _) => Err(Issue::new("the list is empty").help("write \"none\" for none")),
                (false, _) => one(Value::List(items)),
            }
        }
        Kind::Mode => {
            let s = value::text(v)?;
            let ok = v.is_string()
                && (3..=4).contains(&s.text.len())
                && s.text.chars().all(|c| ('0'..='7').contains(&c));
            if !ok {
                return Err(Issue::new(format!("{} is not a file mode", shown(v)))
                    .help("write it as an octal string, such as \"0640\""));
            }
            one(Value::Verbatim(s.text))
        }
        Kind::Limit => {
            let s = value::text(v)?;
            let part_ok = |p: &str| {
                p == "infinity" || (p.parse::<u64>().is_ok()) || value::parse_size(p).is_ok()
            };
            let ok = !s.text.is_empty()
                && s.text.split(':').count() <= 2
                && s.text.split(':').all(part_ok);
            if !ok {
                return Err(
                    Issue::new(format!("{:?} is not a resource limit", s.text)).help(
                        "write a number, \"infinity\", a size such as \"64M\", or \"soft:hard\"",
                    ),
                );
            }
            one(Value::Verbatim(s.text))
        }
        Kind::Conditions { path: is_path } => {
            let items = match value::array(v) {
                Some(items) => items,
                None => vec![v.clone()],
            };
            items
                .iter()
                .map(|item| {
                    let s = match item.as_bool() {
                        Ok(b) => Str { text: if b { "yes" } else { "no" }.into(), raw: false },
                        Err(_) => value::text(item)?,
                    };
                    if s.text.trim().is_empty() {
                        return Err(Issue::new("empty condition"));
                    }
                    let body = s.text.trim_start_matches(['|', '!']);
                    if is_path && !body.starts_with('/') && !s.raw {
                        return Err(Issue::new(format!("{:?} is not an absolute path", s.text))
                            .help("\"!\" in front negates, \"|\" makes it one of several triggering conditions"));
                    }
                    Ok(text_value(s))
                })
                .collect()
        }
        Kind::Listen => {
            let items = match value::array(v) {
                Some(items) => items,
                None => vec![v.clone()],
            };
            items.iter().map(listen).collect()
        }
        Kind::MountOptions => {
            let parts = value::texts(v)?;
            if parts.iter().any(|p| p.text.trim().is_empty()) {
                return Err(Issue::new("empty mount option"));
            }
            let raw = parts.iter().any(|p| p.raw);
            let joined = parts
                .into_iter()
                .map(|p| p.text)
                .collect::<Vec<_>>()
                .join(",");
            one(text_value(Str { text: joined, raw }))
        }
        Kind::Env => {
            let Some(map) = v.read_lock::<Map>() else {
                return Err(Issue::new(format!(
                    "expected a map of variables, found {}",
                    value::type_name(v)
                ))
                .help("env: #{ RUST_LOG: \"info\", PORT: 8080 }"));
            };
            map.iter()
                .map(|(k, val)| Ok(Value::Env(k.to_string(), word(value::text(val)?))))
                .collect()
        }
        Kind::Raw | Kind::Runtime(_) | Kind::Name => Ok(Vec::new()),
    }
}

/// Reads a raw pass-through section: directive → string, number, bool,
/// `raw(..)` or an array of those (one line each).
/// Directives of a raw section: name and the values it writes.
pub(crate) type Directives = Vec<(String, Vec<Value>)>;

pub(crate) fn raw_section(v: &Dynamic) -> Result<Directives, (Option<String>, Issue)> {
    let Some(map) = v.read_lock::<Map>() else {
        return Err((
            None,
            Issue::new(format!(
                "expected a map of directives, found {}",
                value::type_name(v)
            ))
            .help("service_section: #{ LimitNOFILE: 65536 }"),
        ));
    };
    let mut out = Vec::new();
    for (k, val) in map.iter() {
        let one = |x: &Dynamic| -> Result<Value, Issue> {
            if let Ok(b) = x.as_bool() {
                return Ok(Value::Verbatim(if b { "yes" } else { "no" }.into()));
            }
            if x.is_fnptr() {
                return Err(Issue::new("closures are not supported in raw sections")
                    .help("use a static key, or compute the value before the declaration"));
            }
            Ok(Value::Verbatim(value::text(x)?.text))
        };
        let values = match value::array(val) {
            Some(items) => items.iter().map(one).collect::<Result<Vec<_>, _>>(),
            None => one(val).map(|x| vec![x]),
        }
        .map_err(|i| (Some(k.to_string()), i))?;
        out.push((k.to_string(), values));
    }
    Ok(out)
}

/// The generator makes a symlink named after each install target (or in
/// its `.wants/` directory), so each must be a plain unit name: `raw()`
/// may keep specifiers elsewhere, but here nothing expands them, and a `/`
/// would put a link outside the output directory.
pub(crate) fn install_target(name: &str) -> Result<(), Issue> {
    UnitName::parse(name).map(|_| ()).map_err(|e| {
        Issue::new(format!("{name:?} cannot be an install target: {e}")).help(
            "the generator creates this symlink itself, so write a plain unit name such as \"multi-user.target\" (specifiers such as %i are not expanded here)",
        )
    })
}
