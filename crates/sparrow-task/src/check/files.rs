//! The files a check leaves for `code:`/`generator:` blocks, which read
//! them through the helpers (`matched()`, `captures()`, `streams()`,
//! `streams_array()`), in Sparrow6's layout under the cache root.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{json, Value};

use super::context::{Capture, Item};
use crate::TaskError;

fn sid(s: usize) -> Value {
    if s == 0 {
        Value::Null
    } else {
        json!(s)
    }
}

/// A context item as Sparrow6 stores it in `streams.json`: the line, what
/// was captured from it, where it is and what follows.
fn item(i: &Item, data: &[String]) -> Value {
    let next = (i.index + 1 < data.len()).then_some(i.index + 1);
    json!({
        "data": data.get(i.index).map(String::as_str).unwrap_or(""),
        "captures": i.caps,
        "index": i.index,
        "next": next,
        "stream-id": sid(i.sid),
    })
}

/// Writes `matched.txt`, `captures.json`, `streams.json` and
/// `streams-array.json`.
pub(crate) fn write(
    dir: &Path,
    data: &[String],
    captures: &[Capture],
    matched: &[usize],
    streams: &BTreeMap<usize, Vec<Item>>,
) -> Result<(), TaskError> {
    let matched: Vec<&str> = matched
        .iter()
        .filter_map(|&i| data.get(i).map(String::as_str))
        .collect();
    let caps: Vec<Value> = captures
        .iter()
        .map(|c| json!({ "data": c.data, "index": c.index, "stream-id": sid(c.sid) }))
        .collect();
    let by_id: serde_json::Map<String, Value> = streams
        .iter()
        .map(|(k, v)| {
            let items = v.iter().map(|i| item(i, data)).collect();
            (k.to_string(), Value::Array(items))
        })
        .collect();
    // Per stream (BTreeMap order is the numeric order of the ids, as
    // Sparrow6 sorts them), each layer's captures.
    let array: Vec<Value> = streams
        .values()
        .map(|v| Value::Array(v.iter().map(|i| json!(i.caps)).collect()))
        .collect();
    // For bash, which cannot read JSON: one line per capture record.
    let mut caps_txt = String::new();
    for c in captures {
        caps_txt.push_str(&c.data.join("\t"));
        caps_txt.push('\n');
    }
    let files = [
        ("matched.txt", matched.join("\n").into_bytes()),
        ("captures.txt", caps_txt.into_bytes()),
        ("captures.json", Value::Array(caps).to_string().into_bytes()),
        (
            "streams.json",
            Value::Object(by_id).to_string().into_bytes(),
        ),
        (
            "streams-array.json",
            Value::Array(array).to_string().into_bytes(),
        ),
    ];
    for (name, bytes) in files {
        std::fs::write(dir.join(name), bytes).map_err(TaskError::io(format!("writing {name}")))?;
    }
    Ok(())
}
