//! `command`: runs a command in its own process group (killed whole on
//! timeout), capturing its output.
//!
//! | param | type | default |
//! |---|---|---|
//! | `command` | string (run by `sh -c`) or list (argv, no shell) | required |
//! | `env` | map name → value, added to the environment | |
//! | `cwd` | string | the caller's |
//! | `timeout` | duration | none (the caller's deadline) |
//! | `expect_exit` | integer | `0` |
//!
//! State: `exit_code` (int; 124 on timeout, 128+N for signal N), `stdout`
//! (string, lines joined by `\n`). Outcome `stdout`/`stderr`: its lines.

use std::process::{Command, Stdio};
use std::time::Instant;

use serde_json::{Map, Value};

use super::params::{duration_param, int_param, str_param, string_map, type_name};
use super::{budget, frame, millis, show, Call, Fail, Report};
use crate::exec::{self, Exit};
use crate::limits::Kept;
use crate::Outcome;

pub(crate) fn run(call: &Call) -> Outcome {
    frame("command", call, check)
}

/// `command`'s value as a [`Command`] and as shown in messages.
pub(crate) fn command_param(p: &Map<String, Value>) -> Result<(Command, String), String> {
    let expected = "a string (run by sh -c) or a non-empty list of strings (argv)";
    match p.get("command") {
        None | Some(Value::Null) => Err(format!("parameter `command` ({expected}) is required")),
        Some(Value::String(s)) => {
            let mut c = Command::new("sh");
            c.arg("-c").arg(s);
            Ok((c, s.clone()))
        }
        Some(Value::Array(items)) if !items.is_empty() => {
            let argv: Option<Vec<&str>> = items.iter().map(Value::as_str).collect();
            let argv = argv.ok_or_else(|| {
                format!("parameter `command` must be {expected}, got a list with a non-string")
            })?;
            let mut c = Command::new(argv[0]);
            c.args(&argv[1..]);
            let shown = argv
                .iter()
                .map(
                    |a| match a.contains(|c: char| c.is_whitespace() || c == '"') {
                        true => format!("{a:?}"),
                        false => (*a).to_owned(),
                    },
                )
                .collect::<Vec<_>>()
                .join(" ");
            Ok((c, shown))
        }
        Some(v) => Err(format!(
            "parameter `command` must be {expected}, got {}",
            type_name(v)
        )),
    }
}

/// Runs `cmd` (stdin from /dev/null) until `deadline`; stdout lines go
/// to `stdout`, as many as a run keeps (what is not kept is said in its
/// stderr).
pub(crate) fn spawn(
    mut cmd: Command,
    shown: &str,
    deadline: Option<Instant>,
    stdout: &mut Vec<String>,
) -> Result<exec::Ran, String> {
    cmd.stdin(Stdio::null());
    let mut kept = Kept::default();
    let mut keep = |l: String| {
        if kept.take(&l) {
            stdout.push(l)
        }
    };
    let mut ran =
        exec::run(cmd, deadline, &mut keep).map_err(|e| format!("cannot run `{shown}`: {e}"))?;
    kept.cut += ran.cut;
    ran.stderr.extend(kept.note());
    Ok(ran)
}

fn check(call: &Call, p: &Map<String, Value>, r: &mut Report) -> Result<(), Fail> {
    let (mut cmd, shown) = command_param(p)?;
    for (k, v) in string_map(p, "env")? {
        cmd.env(k, v);
    }
    if let Some(dir) = str_param(p, "cwd")? {
        // Checked here: a spawn error would not say it was the directory.
        if !std::path::Path::new(dir).is_dir() {
            return Err(format!("parameter `cwd`: {dir} is not a directory").into());
        }
        cmd.current_dir(dir);
    }
    let expect = match int_param(p, "expect_exit")? {
        Some(c) => i32::try_from(c)
            .map_err(|_| format!("parameter `expect_exit` must be an exit status, got {c}"))?,
        None => 0,
    };
    let (timeout, by_deadline) = budget(duration_param(p, "timeout")?, None, call.deadline)?;
    let start = Instant::now();
    let ran = spawn(cmd, &shown, timeout.map(|t| start + t), &mut r.stdout)?;
    let elapsed = start.elapsed();
    r.stderr = ran.stderr;
    let code = ran.exit.code();
    r.set("exit_code", code);
    r.set("stdout", r.stdout.join("\n"));
    let how = match ran.exit {
        Exit::Code(c) => format!("exit {c}"),
        Exit::Signal(s) => format!("killed by signal {s}"),
        Exit::TimedOut => "timed out".to_owned(),
    };
    r.line(format!("`{shown}` -> {how} in {} ms", millis(elapsed)));
    r.transcript.extend(r.stdout.iter().cloned());
    // Its stderr too: that is usually what explains a failure.
    if !r.stderr.is_empty() {
        r.transcript.push("[stderr]".to_owned());
        r.transcript.extend(r.stderr.iter().cloned());
    }
    match ran.exit {
        Exit::TimedOut => Err(Fail::TimedOut(format!(
            "`{shown}` did not end {}; its process group was killed",
            match (by_deadline, timeout) {
                (false, Some(t)) => format!("within {}", show(t)),
                _ => "before the deadline".to_owned(),
            }
        ))),
        _ if code == expect => Ok(()),
        _ => Err(Fail::Failed(format!(
            "`{shown}` ended with {how} (status {code}), expected exit {expect}"
        ))),
    }
}
