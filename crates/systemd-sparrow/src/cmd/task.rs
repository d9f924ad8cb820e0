//! `systemd-sparrow task run PATH|NAME [KEY=VALUE ...]` and `task list`:
//! Sparrow6-format tasks and plugins, run as Sparrow6's `s6 --task-run`
//! would, with its exit codes (the task's own, 2 for failed checks, 101
//! for a failed hook, 124 for a timeout).

use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use serde_json::{json, Map, Value};
use sparrow_task::runner::{Print, Silent, Sink};
use sparrow_task::search::{Listed, SearchPath};
use sparrow_task::{RunOptions, Status};

/// A task that could not be run at all: the message on stderr and, with
/// `--json`, one object on stdout all the same (exit 1).
fn could_not_run(message: &str, json: bool) -> u8 {
    eprintln!("systemd-sparrow: {message}");
    if json {
        let doc = json!({ "status": "error", "exit_code": 1, "error": message });
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    }
    1
}

/// The signal that interrupted `task run` (0: none).
static SIGNAL: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(sig: libc::c_int) {
    // Only async-signal-safe work: two atomic stores.
    SIGNAL.store(sig, Ordering::SeqCst);
    sparrow_task::exec::interrupt();
}

/// Ctrl-C and SIGTERM stop the task: scripts run in their own process
/// group, so the terminal's signal reaches only this process, which
/// passes it on by killing their group (and cleaning up after them).
fn forward_interrupts() {
    sparrow_task::exec::watch_interrupts();
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: a zeroed sigaction with a handler that only stores
        // atomics is valid; the old action is not needed.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
            // A second Ctrl-C takes the default action: if stopping the
            // task hangs, the user can still leave.
            sa.sa_flags = libc::SA_RESETHAND;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

/// `task run`; returns the exit status (1 when the task could not be run).
pub fn run(
    plugin: &str,
    params: &[String],
    json: bool,
    timeout: Option<Duration>,
    desc: Option<String>,
) -> u8 {
    let params = match parse_params(params) {
        Ok(p) => p,
        Err(e) => return could_not_run(&e.to_string(), json),
    };
    let opts = RunOptions {
        timeout,
        inherit_stdin: true,
        ..RunOptions::default()
    };
    let desc = desc.unwrap_or_else(|| plugin.to_string());
    forward_interrupts();
    // With --json the report is only in the final object, so that stdout
    // stays one parseable document.
    let mut sink: Box<dyn Sink> = if json {
        Box::new(Silent)
    } else {
        Box::new(Print)
    };
    let outcome = match sparrow_task::task_run(
        &SearchPath::from_env(),
        &desc,
        plugin,
        params,
        &opts,
        &mut *sink,
    ) {
        Ok(o) => o,
        Err(e) => return could_not_run(&e.to_string(), json),
    };
    let signal = SIGNAL.load(Ordering::SeqCst);
    let (status, code) = if signal != 0 {
        // The task's group was killed and its scratch directory removed;
        // exit as a process killed by that signal would report it.
        eprintln!("systemd-sparrow: interrupted; the task was stopped");
        ("interrupted", (128 + signal).clamp(0, 255))
    } else {
        let status = match outcome.status {
            Status::Passed => "passed",
            Status::TaskFailed(_) => "task-failed",
            Status::CheckFailed => "check-failed",
            Status::HookFailed(_) => "hook-failed",
            Status::TimedOut => "timed-out",
            Status::Unsupported(_) => "unsupported",
        };
        (status, outcome.status.exit_code())
    };
    if json {
        let doc = json!({
            "status": status,
            "exit_code": code,
            "state": outcome.state,
            "stdout": outcome.stdout,
            "stderr": outcome.stderr,
            "check_errors": outcome.check_errors,
            // Everything the run printed, the check report included.
            "transcript": outcome.transcript,
        });
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    }
    // Exit statuses are 0..=255 on Unix; anything else is a plain failure.
    u8::try_from(code).unwrap_or(1)
}

/// `KEY=VALUE` arguments as one parameter map (dotted keys nest).
fn parse_params(args: &[String]) -> Result<Value, String> {
    let mut map = Map::new();
    for arg in args {
        let Some((key, text)) = arg.split_once('=') else {
            return Err(format!("{arg:?}: parameters are KEY=VALUE"));
        };
        let parts: Vec<&str> = key.split('.').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(format!(
                "{arg:?}: empty key, or an empty part in a dotted key"
            ));
        }
        let value = serde_json::from_str::<Value>(text).unwrap_or_else(|_| text.into());
        let (last, path) = parts.split_last().unwrap_or((&"", &[]));
        let mut slot = &mut map;
        for (i, p) in path.iter().enumerate() {
            let next = slot
                .entry(p.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            slot = match next {
                Value::Object(m) => m,
                _ => {
                    return Err(format!(
                        "{arg:?}: {} is already set to a value, not a map",
                        parts[..=i].join(".")
                    ))
                }
            };
        }
        if slot.insert(last.to_string(), value).is_some() {
            return Err(format!("{arg:?}: {key} is set twice"));
        }
    }
    Ok(Value::Object(map))
}

/// `task list`.
pub fn list(json: bool) -> u8 {
    let listed = SearchPath::from_env().list();
    if json {
        let items: Vec<Value> = listed
            .iter()
            .map(|l| {
                json!({
                    "name": l.name,
                    "version": l.version,
                    "description": l.description,
                    "origin": l.origin.to_string(),
                    "shadowed": l.shadowed,
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&items).unwrap_or_default()
        );
        return 0;
    }
    if listed.is_empty() {
        println!("no plugins (searched: {})", shown_dirs());
        return 0;
    }
    print_table(&listed);
    0
}

fn shown_dirs() -> String {
    let sp = SearchPath::from_env();
    let dirs: Vec<String> = sp.dirs().iter().map(|d| d.display().to_string()).collect();
    if dirs.is_empty() {
        "no directories".into()
    } else {
        dirs.join(", ")
    }
}

fn print_table(listed: &[Listed]) {
    let rows: Vec<[String; 4]> = listed
        .iter()
        .map(|l| {
            let mut origin = l.origin.to_string();
            if l.shadowed {
                origin.push_str(" (shadowed)");
            }
            [
                l.name.clone(),
                l.version.clone().unwrap_or_else(|| "-".into()),
                origin,
                l.description.clone(),
            ]
        })
        .collect();
    let header = ["NAME", "VERSION", "ORIGIN", "DESCRIPTION"].map(String::from);
    let width = |i: usize| {
        rows.iter()
            .chain(std::iter::once(&header))
            .map(|r| r[i].chars().count())
            .max()
            .unwrap_or(0)
    };
    let (w0, w1, w2) = (width(0), width(1), width(2));
    for r in std::iter::once(&header).chain(&rows) {
        let line = format!("{:w0$}  {:w1$}  {:w2$}  {}", r[0], r[1], r[2], r[3]);
        println!("{}", line.trim_end());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Value, String> {
        parse_params(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn params_nest_on_dots_and_parse_as_json_when_they_can() {
        assert_eq!(
            p(&[
                "main.port=8080",
                "main.host=web",
                "on=true",
                "l=[1,2]",
                "s=\"80\"",
                "e="
            ])
            .unwrap(),
            json!({"main": {"port": 8080, "host": "web"}, "on": true, "l": [1, 2], "s": "80", "e": ""})
        );
        assert!(p(&["novalue"]).is_err());
        assert!(p(&["a..b=1"]).is_err());
        assert!(p(&["a=1", "a.b=2"]).unwrap_err().contains("not a map"));
        assert!(p(&["a=1", "a=2"]).unwrap_err().contains("twice"));
    }
}
