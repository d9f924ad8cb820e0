//! A task's configuration: the defaults in its root (`config.yaml`, or
//! `config.json`), deep-merged with the caller's parameters as Sparrow6
//! merges them (maps merge key by key, the caller wins, arrays are
//! replaced), then `args` turned into a command-line string.

use std::path::Path;

use serde_json::{Map, Value};

use crate::limits::{self, MAX_NESTING};
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
        let bad = |e: &dyn std::fmt::Display| TaskError::Config(format!("{}: {e}", path.display()));
        let text = match limits::read(&path, limits::MAX_FILE) {
            Ok(t) => String::from_utf8(t).map_err(|e| bad(&e))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(bad(&e)),
        };
        let v: Value = if yaml {
            if text.trim().is_empty() {
                Value::Object(Map::new())
            } else if flow_depth(&text) > MAX_NESTING {
                return Err(bad(&format!(
                    "[ ] and {{ }} nest more than {MAX_NESTING} levels deep"
                )));
            } else {
                yaml_serde::from_str(&text).map_err(|e| bad(&e))?
            }
        } else {
            serde_json::from_str(&text).map_err(|e| bad(&e))?
        };
        return match v {
            Value::Object(_) => Ok(v),
            Value::Null => Ok(Value::Object(Map::new())),
            other => Err(TaskError::Config(format!(
                "{}: the configuration must be a map, not {}",
                path.display(),
                type_name(&other)
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

/// How deep YAML flow collections (`[ ]`, `{ }`) nest, at least: the
/// parser takes time quadratic in it before its own limit stops it, so a
/// deep one is refused first. Quotes and comments are skipped; a bracket
/// opens only where a node can start (as in YAML, `a[b` is plain text).
fn flow_depth(text: &str) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    let mut quote: Option<char> = None;
    let mut prev = '\n';
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if let Some(q) = quote {
            match c {
                '\\' if q == '"' => {
                    chars.next();
                }
                // '' is a quote inside single quotes.
                '\'' if q == '\'' && chars.peek() == Some(&'\'') => {
                    chars.next();
                }
                c if c == q => quote = None,
                _ => {}
            }
            prev = c;
            continue;
        }
        let at_start = prev.is_whitespace() || matches!(prev, '[' | '{' | ',' | ':' | '-' | '?');
        match c {
            '#' if prev.is_whitespace() => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
                prev = '\n';
                continue;
            }
            '\'' | '"' if at_start => quote = Some(c),
            '[' | '{' if at_start => {
                depth += 1;
                max = max.max(depth);
            }
            ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        prev = c;
    }
    max
}

/// Whether `v` nests more than `limit` levels (maps and lists); measured
/// without recursion, so any depth can be.
pub fn too_deep(v: &Value, limit: usize) -> bool {
    let mut stack = vec![(v, 0usize)];
    while let Some((v, d)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match v {
            Value::Array(a) => Box::new(a.iter()),
            Value::Object(m) => Box::new(m.values()),
            _ => continue,
        };
        if d == limit {
            return true;
        }
        stack.extend(children.map(|c| (c, d + 1)));
    }
    false
}

/// Drops `v` without recursion: dropping a value nested deeper than the
/// stack allows would overflow it.
pub fn dispose(v: Value) {
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        match v {
            Value::Array(a) => stack.extend(a),
            Value::Object(m) => stack.extend(m.into_iter().map(|(_, c)| c)),
            _ => {}
        }
    }
}

/// The JSON type of `v`, for messages.
pub(crate) fn type_name(v: &Value) -> &'static str {
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
    fn flow_depth_skips_quotes_comments_and_plain_text() {
        let text = "a: '[[[['\n# [[[[\nb: [x, {y: [1]}]\nc: x[y ]\nd: \"]]\\\"[[\"\n";
        assert_eq!(flow_depth(text), 3);
        assert_eq!(flow_depth("a: [[[]]]\nb: [[]]\n"), 3);
        let deep = json!([[[1]]]);
        assert!(too_deep(&deep, 2) && !too_deep(&deep, 3));
        assert!(!too_deep(&json!(1), 0));
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
