//! `feature-flags`: the JSON object in a flags file, as state. Read-only
//! and fork-free, so generation may call it.
//!
//! | param | type | default |
//! |---|---|---|
//! | `file` | string (path) | [`DEFAULT_PATH`] |
//!
//! State: the file's object (`{"new_ui": true, ...}`); a missing file is
//! an empty map (no flags set). An unreadable file, invalid JSON or a
//! value other than an object fails, naming the file.

use std::io::ErrorKind;
use std::path::Path;

use serde_json::{Map, Value};

use super::params::{str_param, type_name};
use super::{Call, Fail, Report};
use crate::Outcome;

/// Where the flags are when no `file` is given.
pub const DEFAULT_PATH: &str = "/etc/systemd/sparrow/flags.json";

/// Runs `feature-flags` with [`DEFAULT_PATH`] as the default file.
pub fn run(call: &Call) -> Outcome {
    run_with_default(call, Path::new(DEFAULT_PATH))
}

/// Runs `feature-flags` with `default` as the file read when no `file`
/// parameter is given (tests point it at a temporary file).
pub fn run_with_default(call: &Call, default: &Path) -> Outcome {
    let mut r = Report::new("feature-flags");
    let res = super::params::as_map(call.params)
        .and_then(|p| super::params::check_known("feature-flags", &p).map(|()| p))
        .map_err(Fail::Failed)
        .and_then(|p| check(&p, default, &mut r));
    r.finish(res)
}

fn check(p: &Map<String, Value>, default: &Path, r: &mut Report) -> Result<(), Fail> {
    let path = str_param(p, "file")?.map_or(default, Path::new);
    let flags = read(path)?;
    match &flags {
        None => r.line(format!("{}: no such file, no flags set", path.display())),
        Some(m) => r.line(format!("{}: {} flags", path.display(), m.len())),
    }
    r.state = flags.unwrap_or_default();
    Ok(())
}

/// The flags in `path`; `None` when it does not exist.
pub fn read(path: &Path) -> Result<Option<Map<String, Value>>, String> {
    // Bounded, and never a FIFO (it would block generation).
    let text = match crate::limits::read(path, crate::limits::MAX_FILE) {
        Ok(t) => t,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    match serde_json::from_slice::<Value>(&text) {
        Ok(Value::Object(m)) => Ok(Some(m)),
        Ok(v) => Err(format!(
            "{} must hold a JSON object, it holds {}",
            path.display(),
            type_name(&v)
        )),
        Err(e) => Err(format!("{} is not valid JSON: {e}", path.display())),
    }
}
