//! Reading a built-in's parameters: each accessor names the parameter and
//! the expected type in its error, so a wrong configuration fails with a
//! message the user can act on instead of a panic.
//!
//! Values from `config.yaml` or a Sparrow6 caller often arrive as strings
//! (`port: "8080"`), so numbers and booleans are also accepted as strings.

use std::time::Duration;

use serde_json::{Map, Value};

/// The parameters as a map (`null` is an empty map).
pub(crate) fn as_map(params: &Value) -> Result<Map<String, Value>, String> {
    match params {
        Value::Null => Ok(Map::new()),
        Value::Object(m) => Ok(m.clone()),
        other => Err(format!(
            "parameters must be a map, got {}",
            type_name(other)
        )),
    }
}

pub(crate) use crate::config::type_name;

/// `name`'s value, `None` when absent or `null`.
fn get<'a>(p: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    p.get(name).filter(|v| !v.is_null())
}

fn wrong(name: &str, expected: &str, got: &Value) -> String {
    format!(
        "parameter `{name}` must be {expected}, got {} ({got})",
        type_name(got)
    )
}

/// An optional string parameter.
pub(crate) fn str_param<'a>(
    p: &'a Map<String, Value>,
    name: &str,
) -> Result<Option<&'a str>, String> {
    match get(p, name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(v) => Err(wrong(name, "a string", v)),
    }
}

/// A required string parameter.
pub(crate) fn req_str<'a>(p: &'a Map<String, Value>, name: &str) -> Result<&'a str, String> {
    str_param(p, name)?.ok_or_else(|| format!("parameter `{name}` (a string) is required"))
}

/// An optional boolean (`true`/`false`, or the strings `true`, `yes`, `1`,
/// `false`, `no`, `0`).
pub(crate) fn bool_param(p: &Map<String, Value>, name: &str) -> Result<Option<bool>, String> {
    match get(p, name) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(v @ Value::String(s)) => match s.to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" => Ok(Some(true)),
            "false" | "no" | "0" => Ok(Some(false)),
            _ => Err(wrong(name, "a boolean", v)),
        },
        Some(v) => Err(wrong(name, "a boolean", v)),
    }
}

/// An optional integer (a number or a string of digits).
pub(crate) fn int_param(p: &Map<String, Value>, name: &str) -> Result<Option<i64>, String> {
    match get(p, name) {
        None => Ok(None),
        Some(v @ Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| wrong(name, "an integer", v)),
        Some(v @ Value::String(s)) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| wrong(name, "an integer", v)),
        Some(v) => Err(wrong(name, "an integer", v)),
    }
}

/// An optional number (a number or a numeric string).
pub(crate) fn num_param(p: &Map<String, Value>, name: &str) -> Result<Option<f64>, String> {
    let n = match get(p, name) {
        None => return Ok(None),
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        Some(_) => None,
    };
    match (n, get(p, name)) {
        (Some(n), _) if n.is_finite() => Ok(Some(n)),
        (_, Some(v)) => Err(wrong(name, "a number", v)),
        (_, None) => Ok(None),
    }
}

/// An optional duration: a number of seconds (`5`, `0.3`) or a string with
/// a unit (`500ms`, `5s`, `2m`, `1h`; a bare number string is seconds).
pub(crate) fn duration_param(
    p: &Map<String, Value>,
    name: &str,
) -> Result<Option<Duration>, String> {
    let expected = "a duration (seconds, or a string like \"500ms\", \"5s\", \"2m\")";
    match get(p, name) {
        None => Ok(None),
        Some(v @ Value::Number(n)) => n
            .as_f64()
            .and_then(seconds)
            .map(Some)
            .ok_or_else(|| wrong(name, expected, v)),
        Some(v @ Value::String(s)) => parse_duration(s)
            .map(Some)
            .ok_or_else(|| wrong(name, expected, v)),
        Some(v) => Err(wrong(name, expected, v)),
    }
}

fn seconds(s: f64) -> Option<Duration> {
    // Also refuses NaN and values too large for a Duration.
    Duration::try_from_secs_f64(s).ok()
}

/// Parses `500ms`, `5s`, `2m`, `1h`, `1.5s` or `5` (seconds): the crate's
/// one duration reader, as `task_timeout` and the CLI read durations.
pub(crate) fn parse_duration(s: &str) -> Option<Duration> {
    crate::parse_duration(s).ok()
}

/// An optional size in bytes: a number, or a string with a binary unit
/// (`512M`, `1G`, `64K`, `2T`, also `512MB`, `512MiB`; a bare number
/// string is bytes).
pub(crate) fn size_param(p: &Map<String, Value>, name: &str) -> Result<Option<u64>, String> {
    let expected = "a size (bytes, or a string like \"512M\", \"1G\")";
    match get(p, name) {
        None => Ok(None),
        Some(v @ Value::Number(n)) => match (n.as_u64(), n.as_f64()) {
            (Some(b), _) => Ok(Some(b)),
            (None, Some(f)) if f >= 0.0 && f.is_finite() => Ok(Some(f as u64)),
            _ => Err(wrong(name, expected, v)),
        },
        Some(v @ Value::String(s)) => parse_size(s)
            .map(Some)
            .ok_or_else(|| wrong(name, expected, v)),
        Some(v) => Err(wrong(name, expected, v)),
    }
}

/// Parses `512M`, `1G`, `1.5G`, `64K`, `2T`, `100` (bytes); units are
/// powers of 1024, as systemd reads them.
pub(crate) fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let unit = unit.trim().to_ascii_uppercase();
    let unit = unit
        .strip_suffix("IB")
        .or_else(|| unit.strip_suffix('B'))
        .unwrap_or(&unit);
    let shift = match unit {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return None,
    };
    let bytes = n * (1u64 << shift) as f64;
    (bytes.is_finite() && bytes < u64::MAX as f64).then_some(bytes as u64)
}

/// An optional map of strings (`headers: {Accept: text/plain}`); numbers
/// and booleans are taken as their text.
pub(crate) fn string_map(
    p: &Map<String, Value>,
    name: &str,
) -> Result<Vec<(String, String)>, String> {
    match get(p, name) {
        None => Ok(Vec::new()),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| match scalar_text(v) {
                Some(t) => Ok((k.clone(), t)),
                None => Err(format!(
                    "parameter `{name}`: the value of `{k}` must be a string, got {}",
                    type_name(v)
                )),
            })
            .collect(),
        Some(v) => Err(wrong(name, "a map of strings", v)),
    }
}

/// An optional string or list of strings (`connect: "h:1"` or `[..]`).
pub(crate) fn str_list(p: &Map<String, Value>, name: &str) -> Result<Vec<String>, String> {
    let expected = "a string or a list of strings";
    match get(p, name) {
        None => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(v @ Value::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| wrong(name, expected, v))
            })
            .collect(),
        Some(v) => Err(wrong(name, expected, v)),
    }
}

/// A scalar's text (`"a"`, `1`, `true`), `None` for lists, maps and null.
pub(crate) fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The parameters each built-in reads: anything else is refused, so a
/// misspelled check (`stauts=500`) fails instead of silently passing.
fn accepted(plugin: &str) -> &'static [&'static str] {
    match plugin {
        "http-check" => &[
            "url",
            "method",
            "status",
            "body",
            "regex",
            "headers",
            "expect_headers",
            "timeout",
        ],
        "tcp-check" => &["host", "port", "timeout"],
        "resource-monitor" => &["max_load_percent", "min_available_memory"],
        "mount-check" => &["path", "fstype", "writable", "min_free"],
        "network-check" => &["interface", "default_route", "connect", "timeout"],
        "notification" => &[
            "message", "severity", "channel", "via", "url", "command", "timeout",
        ],
        "command" => &["command", "env", "cwd", "timeout", "expect_exit"],
        "feature-flags" => &["file"],
        _ => &[],
    }
}

/// Refuses parameters `plugin` does not read, naming the closest one.
pub(crate) fn check_known(plugin: &str, p: &Map<String, Value>) -> Result<(), String> {
    let names = accepted(plugin);
    for k in p.keys() {
        // resource-monitor's PSI thresholds are a family, checked there.
        if names.contains(&k.as_str())
            || (plugin == "resource-monitor" && k.starts_with("max_psi_"))
        {
            continue;
        }
        let near = names
            .iter()
            .map(|n| (distance(k, n), *n))
            .filter(|(d, _)| *d <= 3)
            .min();
        let hint = near.map_or(String::new(), |(_, n)| format!(" (did you mean `{n}`?)"));
        return Err(format!(
            "{plugin} has no parameter `{k}`{hint}; it takes {}",
            names.join(", ")
        ));
    }
    Ok(())
}

/// Edit distance (insertions, deletions, substitutions), for suggestions.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        as_map(&v).unwrap()
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("5s"), Some(Duration::from_secs(5)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("7"), Some(Duration::from_secs(7)));
        assert_eq!(parse_duration("5 s"), Some(Duration::from_secs(5)));
        assert_eq!(parse_duration("5x"), None);
        assert_eq!(parse_duration("ms"), None);
        assert_eq!(parse_duration("-1s"), None);
        let p = map(json!({"a": 0.3, "b": "2m", "c": true, "d": -1}));
        assert_eq!(
            duration_param(&p, "a").unwrap(),
            Some(Duration::from_millis(300))
        );
        assert_eq!(
            duration_param(&p, "b").unwrap(),
            Some(Duration::from_secs(120))
        );
        let e = duration_param(&p, "c").unwrap_err();
        assert!(e.contains("`c`") && e.contains("a duration"), "{e}");
        assert!(duration_param(&p, "d").is_err());
        assert_eq!(duration_param(&p, "absent").unwrap(), None);
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512M"), Some(512 << 20));
        assert_eq!(parse_size("1G"), Some(1 << 30));
        assert_eq!(parse_size("1GiB"), Some(1 << 30));
        assert_eq!(parse_size("64kb"), Some(64 << 10));
        assert_eq!(parse_size("1.5K"), Some(1536));
        assert_eq!(parse_size("100"), Some(100));
        assert_eq!(parse_size("1Q"), None);
        assert_eq!(parse_size(""), None);
        let p = map(json!({"a": 4096, "b": "1G", "c": [1], "d": -5}));
        assert_eq!(size_param(&p, "a").unwrap(), Some(4096));
        assert_eq!(size_param(&p, "b").unwrap(), Some(1 << 30));
        let e = size_param(&p, "c").unwrap_err();
        assert!(
            e.contains("`c`") && e.contains("a size") && e.contains("a list"),
            "{e}"
        );
        assert!(size_param(&p, "d").is_err());
    }

    #[test]
    fn scalars_and_required() {
        let p = map(json!({"s": "x", "n": 7, "ns": "8", "b": "yes", "f": 1.5, "o": {}}));
        assert_eq!(req_str(&p, "s").unwrap(), "x");
        let e = req_str(&p, "missing").unwrap_err();
        assert!(e.contains("`missing`") && e.contains("required"), "{e}");
        let e = req_str(&p, "n").unwrap_err();
        assert!(
            e.contains("must be a string") && e.contains("a number"),
            "{e}"
        );
        assert_eq!(int_param(&p, "n").unwrap(), Some(7));
        assert_eq!(int_param(&p, "ns").unwrap(), Some(8));
        assert!(int_param(&p, "f").is_err());
        assert_eq!(num_param(&p, "f").unwrap(), Some(1.5));
        assert!(num_param(&p, "o").is_err());
        assert_eq!(bool_param(&p, "b").unwrap(), Some(true));
        assert!(bool_param(&p, "s").is_err());
        assert!(as_map(&json!([1])).is_err());
        assert!(as_map(&Value::Null).unwrap().is_empty());
    }

    #[test]
    fn maps_and_lists() {
        let p =
            map(json!({"h": {"A": "1", "B": 2}, "bad": {"A": [1]}, "l": ["a", "b"], "one": "c"}));
        assert_eq!(
            string_map(&p, "h").unwrap(),
            vec![("A".into(), "1".into()), ("B".into(), "2".into())]
        );
        assert!(string_map(&p, "bad").unwrap_err().contains("`A`"));
        assert_eq!(str_list(&p, "l").unwrap(), vec!["a", "b"]);
        assert_eq!(str_list(&p, "one").unwrap(), vec!["c"]);
        assert!(str_list(&p, "h").is_err());
    }
}
