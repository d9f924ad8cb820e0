//! Declarations from the bridge as the native language's text.
//!
//! Each `task-run` becomes `task_run("desc", "plugin", #{ .. });` on the
//! line the Raku file declared it on (declarations on one line, e.g. from a
//! loop, share it), so that whatever the native checks report names the
//! Raku file's line. Keys stay as written (the key table reads kebab
//! case). What Raku has and the native language spells differently:
//!
//! - a sub (`{"$sub": {arity, line}}`) becomes a closure with as many
//!   parameters that calls `raku_sub(file, desc, keys, args)`: a resident
//!   Raku worker runs the sub itself (see [`crate::resident`]);
//! - a regex (`{"$regex": source}`) becomes its Rust translation, and under
//!   `body` (a health check's expectation) the key becomes `body_regex`;
//! - in `kernel-monitoring.psi`, an integer `threshold` or `window` is
//!   microseconds (the kernel's unit): it becomes `"Nus"`.

use std::fmt::Write;

use serde::Deserialize;
use serde_json::Value;

/// One `task-run` that declared something.
#[derive(Debug, Clone, Deserialize)]
pub struct Decl {
    /// The first argument: the unit's name (or a family instance's).
    pub desc: String,
    /// The second: `systemd`, an alias, or `systemd-FAMILY`.
    pub plugin: String,
    /// The parameter hash, as the shim wrote it.
    #[serde(default)]
    pub params: Value,
    /// The line of the call in the Raku file.
    pub line: usize,
}

/// Why a declaration has no native spelling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The Raku file's line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// How deeply values may nest (a generated text must stay parseable).
const MAX_DEPTH: usize = 64;

/// The native text for `decls`, in line order (stable: a loop's
/// declarations keep their order).
pub fn rhai_text(decls: &[Decl], file: &str) -> Result<String, Failure> {
    let mut sorted: Vec<&Decl> = decls.iter().collect();
    sorted.sort_by_key(|d| d.line);
    let mut out = String::new();
    let mut line = 1;
    for d in sorted {
        while line < d.line {
            out.push('\n');
            line += 1;
        }
        let fail = |message: String| Failure {
            line: d.line,
            message,
        };
        let params = match &d.params {
            Value::Null => "#{}".to_string(),
            p @ Value::Object(_) => {
                let mut path = Vec::new();
                value(
                    p,
                    &mut path,
                    &Place {
                        file,
                        desc: &d.desc,
                    },
                )
                .map_err(fail)?
            }
            other => {
                return Err(fail(format!(
                    "task-run {:?}: the third argument must be a hash (%( .. )), not {}",
                    d.desc,
                    kind(other)
                )))
            }
        };
        let _ = write!(
            out,
            "task_run({}, {}, {params}); ",
            string(&d.desc),
            string(&d.plugin)
        );
    }
    out.push('\n');
    Ok(out)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a hash",
    }
}

/// `path`'s keys in snake case, for context checks.
fn snake(k: &str) -> String {
    k.replace('-', "_")
}

fn in_psi(path: &[String]) -> bool {
    let n = path.len();
    n >= 4
        && matches!(
            snake(&path[n - 4]).as_str(),
            "kernel_monitoring" | "pressure"
        )
        && path[n - 3] == "psi"
        && matches!(path[n - 1].as_str(), "threshold" | "window")
}

/// The declaration a value belongs to.
struct Place<'a> {
    file: &'a str,
    desc: &'a str,
}

fn value(v: &Value, path: &mut Vec<String>, desc: &Place<'_>) -> Result<String, String> {
    if path.len() > MAX_DEPTH {
        return Err(format!(
            "values nested more than {MAX_DEPTH} levels deep cannot be translated"
        ));
    }
    Ok(match v {
        Value::Null => "()".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                if in_psi(path) {
                    string(&format!("{i}us"))
                } else {
                    i.to_string()
                }
            } else if let Some(f) = n.as_f64().filter(|f| f.is_finite()) {
                if n.is_u64() {
                    return Err(format!("{} is larger than the largest integer", n));
                }
                let s = f.to_string();
                if s.contains('.') {
                    s
                } else {
                    format!("{s}.0")
                }
            } else {
                return Err(format!("{n} is not a number the native language has"));
            }
        }
        Value::String(s) => string(s),
        Value::Array(items) => {
            let mut parts = Vec::with_capacity(items.len());
            for item in items {
                parts.push(value(item, path, desc)?);
            }
            format!("[{}]", parts.join(", "))
        }
        Value::Object(map) => {
            if let (1, Some(sub)) = (map.len(), map.get("$sub")) {
                return sub_closure(sub, path, desc);
            }
            if let (1, Some(Value::String(src))) = (map.len(), map.get("$regex")) {
                return regex(src, path);
            }
            let mut parts = Vec::with_capacity(map.len());
            for (k, item) in map {
                let mut key = k.clone();
                if k == "body" && matches!(item, Value::Object(m) if m.contains_key("$regex")) {
                    key = "body_regex".into();
                }
                path.push(k.clone());
                let text = value(item, path, desc);
                path.pop();
                parts.push(format!("{}: {}", string(&key), text?));
            }
            format!("#{{{}}}", parts.join(", "))
        }
    })
}

/// A closure calling the Raku sub at `path` of the declaration `desc`.
fn sub_closure(sub: &Value, path: &[String], at: &Place<'_>) -> Result<String, String> {
    let arity = sub["arity"].as_u64().unwrap_or(0);
    if arity > 4 {
        return Err(format!(
            "the sub at {} takes {arity} arguments; hooks and monitors pass at most one",
            path.join(".")
        ));
    }
    let params: Vec<String> = (0..arity).map(|i| format!("a{i}")).collect();
    let keys: Vec<String> = path.iter().map(|k| string(k)).collect();
    Ok(format!(
        "|{}| raku_sub({}, {}, [{}], [{}])",
        params.join(", "),
        string(at.file),
        string(at.desc),
        keys.join(", "),
        params.join(", ")
    ))
}

fn regex(src: &str, path: &[String]) -> Result<String, String> {
    sparrow_regex::translate(src)
        .map(|rust| string(&rust))
        .map_err(|e| {
            format!(
                "the regex /{src}/ at {} cannot be translated: {e}",
                path.join(".")
            )
        })
}

/// A native string literal: quotes, backslashes and control characters
/// escaped (nothing else in a double-quoted native string is special).
pub fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests;
