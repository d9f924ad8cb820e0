//! Rhai values to and from JSON: what task parameters and task state are.

use rhai::{Array, Dynamic, Map};
use serde_json::Value;

/// How deeply task parameters may nest (a script can build a map nested
/// without end in a loop; converting it must not exhaust the stack).
const MAX_DEPTH: usize = 128;

/// `v` as JSON; closures and other script-only values are refused by name.
pub fn to_json(v: &Dynamic) -> Result<Value, String> {
    to_json_at(v, 0)
}

fn to_json_at(v: &Dynamic, depth: usize) -> Result<Value, String> {
    if depth > MAX_DEPTH {
        return Err(format!(
            "values nested more than {MAX_DEPTH} levels cannot be passed to a task"
        ));
    }
    if v.is_unit() {
        return Ok(Value::Null);
    }
    if let Ok(b) = v.as_bool() {
        return Ok(Value::Bool(b));
    }
    if let Ok(i) = v.as_int() {
        return Ok(Value::from(i));
    }
    if let Ok(f) = v.as_float() {
        return Ok(serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number));
    }
    if let Ok(c) = v.as_char() {
        return Ok(Value::String(c.to_string()));
    }
    if v.is_string() {
        return Ok(Value::String(v.to_string()));
    }
    if let Some(a) = v.read_lock::<Array>() {
        return a
            .iter()
            .map(|x| to_json_at(x, depth + 1))
            .collect::<Result<_, _>>()
            .map(Value::Array);
    }
    if let Some(m) = v.read_lock::<Map>() {
        let mut out = serde_json::Map::new();
        for (k, v) in m.iter() {
            out.insert(k.to_string(), to_json_at(v, depth + 1)?);
        }
        return Ok(Value::Object(out));
    }
    Err(format!("a {} cannot be passed to a task", v.type_name()))
}

/// JSON as a Rhai value (integers stay integers).
pub fn from_json(v: Value) -> Dynamic {
    match v {
        Value::Null => Dynamic::UNIT,
        Value::Bool(b) => b.into(),
        Value::Number(n) => match n.as_i64() {
            Some(i) => i.into(),
            None => n.as_f64().unwrap_or(f64::NAN).into(),
        },
        Value::String(s) => s.into(),
        Value::Array(a) => Dynamic::from_array(a.into_iter().map(from_json).collect()),
        Value::Object(o) => {
            let m: Map = o
                .into_iter()
                .map(|(k, v)| (k.into(), from_json(v)))
                .collect();
            Dynamic::from_map(m)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let j = serde_json::json!({"a": [1, 2.5, "x", true, null], "b": {"c": -3}});
        assert_eq!(to_json(&from_json(j.clone())).unwrap(), j);
    }

    #[test]
    fn nesting_without_end_is_refused_not_a_crash() {
        let mut v = Dynamic::from(1_i64);
        // Past the limit (the depth a closure can reach in a loop is far
        // greater; this test's own stack bounds what it can build).
        for _ in 0..200 {
            v = Dynamic::from_array(vec![v]);
        }
        let e = to_json(&v).unwrap_err();
        assert!(e.contains("nested more than 128"), "{e}");
        let mut ok = Dynamic::from(1_i64);
        for _ in 0..128 {
            ok = Dynamic::from_array(vec![ok]);
        }
        assert!(to_json(&ok).is_ok());
    }

    #[test]
    fn closures_are_refused() {
        let e = to_json(&Dynamic::from(rhai::FnPtr::new("f").unwrap())).unwrap_err();
        assert!(e.contains("Fn"), "{e}");
    }
}
