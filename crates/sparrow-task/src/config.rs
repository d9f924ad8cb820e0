//! A task's configuration: the defaults in its root (`config.yaml`, or
//! `config.json`), deep-merged with the caller's parameters as Sparrow6
//! merges them (maps merge key by key, the caller wins, arrays are
//! replaced), then `args` turned into a command-line string.

use std::path::Path;

use serde_json::{Map, Value};

use crate::TaskError;

/// Reads the defaults of the task rooted at `root` (an empty map when it
/// has none). `config.yaml` is Sparrow6's file; `config.json` is accepted
/// too (and a `config.raku` is refused: it would need Raku's EVAL).
pub fn defaults(root: &Path) -> Result<Value, TaskError> {
    for (name, yaml) in [
        ("config.yaml", true),
        ("config.yml", true),
        ("config.json", false),
    ] {
        let path = root.join(name);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(TaskError::Config(format!("{}: {e}", path.display()))),
        };
        let v: Value = if yaml {
            if text.trim().is_empty() {
                Value::Object(Map::new())
            } else {
                yaml_serde::from_str(&text)
                    .map_err(|e| TaskError::Config(format!("{}: {e}", path.display())))?
            }
        } else {
            serde_json::from_str(&text)
                .map_err(|e| TaskError::Config(format!("{}: {e}", path.display())))?
        };
        return match v {
            Value::Object(_) => Ok(v),
            Value::Null => Ok(Value::Object(Map::new())),
            other => Err(TaskError::Config(format!(
                "{}: the configuration must be a map, not {}",
                path.display(),
                kind(&other)
            ))),
        };
    }
    if root.join("config.raku").is_file() {
        return Err(TaskError::Config(format!(
            "{}: config.raku is not supported (write the defaults as config.yaml)",
            root.join("config.raku").display()
        )));
    }
    Ok(Value::Object(Map::new()))
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

/// `over` merged into `base`: maps key by key (recursively), anything else
/// (arrays included) replaced.
pub fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

/// Sparrow6's `args`: a list becomes one command-line string. Strings and
/// numbers stay as they are; a map gives `--key value` per entry (a key
/// starting with `-` as written, a value starting with `=` as `--key=value`);
/// a list gives `--flag` per element (or the element when it starts with `-`).
pub fn stringify_args(config: &mut Value) -> Result<(), TaskError> {
    let Some(Value::Array(items)) = config.get("args") else {
        return Ok(());
    };
    let mut words: Vec<String> = Vec::new();
    let flag = |k: &str| {
        if k.starts_with('-') {
            k.to_string()
        } else {
            format!("--{k}")
        }
    };
    for (n, item) in items.iter().enumerate() {
        match item {
            Value::String(s) => words.push(s.clone()),
            Value::Number(x) => words.push(x.to_string()),
            Value::Object(m) => {
                for (k, v) in m {
                    let v = scalar(v);
                    match v.trim_start().strip_prefix('=') {
                        Some(rest) => words.push(format!("{}={rest}", flag(k))),
                        None => {
                            words.push(flag(k));
                            words.push(v);
                        }
                    }
                }
            }
            Value::Array(flags) => {
                for f in flags {
                    words.push(flag(&scalar(f)));
                }
            }
            _ => {
                return Err(TaskError::Config(format!(
                    "args, element {n}, unsupported type"
                )))
            }
        }
    }
    if let Some(slot) = config.get_mut("args") {
        *slot = Value::String(words.join(" "));
    }
    Ok(())
}

/// A value as text, as Sparrow6 (Raku) stringifies it for bash and for
/// `args`: strings as they are, booleans `True`/`False` (so a bash task
/// written for Sparrow6 tests `[ "$(config debug)" = True ]`), null as
/// nothing, anything else as JSON.
pub fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        other => other.to_string(),
    }
}

/// The value at a dotted path (`main.foo`), as Sparrow6's bash `config`
/// prints it: lists as `(a b c)`, missing as empty, maps as JSON.
pub fn dotted(v: &Value, path: &str) -> String {
    let mut cur = v;
    for part in path.split('.') {
        match cur.get(part) {
            Some(next) => cur = next,
            None => return String::new(),
        }
    }
    match cur {
        Value::Array(items) => format!(
            "({})",
            items.iter().map(scalar).collect::<Vec<_>>().join(" ")
        ),
        other => scalar(other),
    }
}

/// Every dotted path of `v` (maps walked, lists and scalars are leaves, and
/// maps are entries too), for the bash helpers' lookup table.
pub fn flatten(v: &Value) -> Vec<(String, String)> {
    fn walk(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
        if let Value::Object(m) = v {
            for (k, child) in m {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                walk(&path, child, out);
            }
        }
        if !prefix.is_empty() {
            let shown = match v {
                Value::Array(items) => format!(
                    "({})",
                    items.iter().map(scalar).collect::<Vec<_>>().join(" ")
                ),
                other => scalar(other),
            };
            out.push((prefix.to_string(), shown));
        }
    }
    let mut out = Vec::new();
    walk("", v, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn maps_merge_and_the_caller_wins_and_lists_are_replaced() {
        let mut base = json!({"a": 1, "m": {"x": 1, "y": [1, 2]}, "l": [1, 2, 3]});
        merge(
            &mut base,
            json!({"m": {"y": [9], "z": true}, "l": [4], "b": "new"}),
        );
        assert_eq!(
            base,
            json!({"a": 1, "m": {"x": 1, "y": [9], "z": true}, "l": [4], "b": "new"})
        );
    }

    #[test]
    fn args_become_one_command_line() {
        // (A map's entries come in key order: Raku's hashes have none.)
        let mut c = json!({"args": ["run", 8, {"port": "80", "-v": "1", "mode": "=fast", "x": true}, ["verbose", "-q"]]});
        stringify_args(&mut c).unwrap();
        assert_eq!(
            c["args"],
            "run 8 -v 1 --mode=fast --port 80 --x True --verbose -q"
        );
        let mut bad = json!({"args": [true]});
        assert!(stringify_args(&mut bad)
            .unwrap_err()
            .to_string()
            .contains("element 0"));
    }

    #[test]
    fn dotted_paths_read_like_sparrow6s_json_var() {
        let c = json!({"main": {"foo": 1, "list": ["a", "b"], "on": true}, "s": "x y"});
        assert_eq!(dotted(&c, "main.foo"), "1");
        assert_eq!(dotted(&c, "main.on"), "True");
        assert_eq!(dotted(&c, "main.list"), "(a b)");
        assert_eq!(dotted(&c, "s"), "x y");
        assert_eq!(dotted(&c, "nope.deeper"), "");
        let flat = flatten(&c);
        assert!(flat.contains(&("main.list".into(), "(a b)".into())));
        assert!(flat.contains(&("main.foo".into(), "1".into())));
    }

    #[test]
    fn defaults_come_from_yaml_or_json() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(defaults(d.path()).unwrap(), json!({}));
        std::fs::write(d.path().join("config.json"), r#"{"a": 1}"#).unwrap();
        assert_eq!(defaults(d.path()).unwrap(), json!({"a": 1}));
        std::fs::write(d.path().join("config.yaml"), "a: 2\nb: [x]\n").unwrap();
        assert_eq!(defaults(d.path()).unwrap(), json!({"a": 2, "b": ["x"]}));
        std::fs::write(d.path().join("config.yaml"), "- not a map\n").unwrap();
        assert!(defaults(d.path())
            .unwrap_err()
            .to_string()
            .contains("must be a map"));
    }
}
