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
        Some(items) => items
            .iter()
            .map(|item| match value::array(item) {
                Some(words) => argv(&words),
                None => command(item),
            })
            .collect(),
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

fn path(v: &Dynamic, dash: bool, tilde: bool) -> Result<Value, Issue> {
    let s = value::text(v)?;
    let body = if dash {
        s.text.strip_prefix('-').unwrap_or(&s.text)
    } else {
        &s.text
    };
    let ok = body.starts_with('/') || (tilde && (body == "~" || body.starts_with("~/"))) || s.raw;
    if !ok {
        return Err(Issue::new(format!("{:?} is not an absolute path", s.text)));
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
        Kind::UnitName => {
            let names = unit_names(v, None)?;
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
