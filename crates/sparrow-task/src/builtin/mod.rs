//! Built-in plugins: run in-process (no fork), with the same interface as
//! a plugin directory: parameters in, an [`Outcome`] (status, state map,
//! output) out. An installed plugin of the same name shadows a built-in
//! (see [`crate::search`]).
//!
//! A failure is [`Status::TaskFailed`]`(1)` (or [`Status::TimedOut`] when
//! the caller's deadline ran out) with one human message in `stderr`; the
//! state holds what was measured either way. Wrong parameters fail the
//! same way, naming the parameter and the type it needs.
//!
//! Built-ins block the calling thread (network checks wait on sockets), so
//! async callers run them on a blocking thread.

use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use crate::{Outcome, Status};

mod command;
pub mod flags;
mod http;
pub use http::chain as error_chain;
mod mount;
mod network;
pub mod notification;
mod params;
mod resources;
mod tcp;

/// A plugin implemented in this crate.
pub struct Builtin {
    /// The plugin name (`http-check`).
    pub name: &'static str,
    /// One line for `task list`.
    pub description: &'static str,
    /// Reads local state only: allowed at generation time.
    pub read_only: bool,
    /// Runs it.
    pub run: fn(&Call) -> Outcome,
}

/// One call of a built-in.
pub struct Call<'a> {
    /// The caller's description (`task_run(desc, ..)`).
    pub desc: &'a str,
    /// The caller's parameters, a map.
    pub params: &'a Value,
    /// The call must end by then.
    pub deadline: Option<Instant>,
}

static ALL: [Builtin; 8] = [
    Builtin {
        name: "http-check",
        description: "HTTP(S) request: expected status, body substring or regex, headers",
        read_only: false,
        run: http::run,
    },
    Builtin {
        name: "tcp-check",
        description: "a TCP port accepts connections",
        read_only: false,
        run: tcp::run,
    },
    Builtin {
        name: "resource-monitor",
        description: "memory, load and pressure (PSI), with optional thresholds",
        read_only: false,
        run: resources::run,
    },
    Builtin {
        name: "mount-check",
        description: "a path is a mount point: type, writable, free space",
        read_only: false,
        run: mount::run,
    },
    Builtin {
        name: "network-check",
        description: "an interface is up, a default route exists, endpoints accept TCP",
        read_only: false,
        run: network::run,
    },
    Builtin {
        name: "notification",
        description: "sends a message to the journal, a webhook or a command",
        read_only: false,
        run: notification::run,
    },
    Builtin {
        name: "command",
        description: "runs a command (shell string or argv) under a timeout",
        read_only: false,
        run: command::run,
    },
    Builtin {
        name: "feature-flags",
        description: "reads feature flags from a JSON file",
        read_only: true,
        run: flags::run,
    },
];

/// Every built-in plugin.
pub fn all() -> &'static [Builtin] {
    &ALL
}

/// The built-in called `name`.
pub fn find(name: &str) -> Option<&'static Builtin> {
    all().iter().find(|b| b.name == name)
}

/// Why a built-in failed.
pub(crate) enum Fail {
    /// A check failed or the parameters are wrong.
    Failed(String),
    /// The caller's deadline passed.
    TimedOut(String),
}

impl From<String> for Fail {
    fn from(m: String) -> Fail {
        Fail::Failed(m)
    }
}

/// A built-in's outcome being made.
pub(crate) struct Report {
    name: &'static str,
    pub(crate) state: Map<String, Value>,
    pub(crate) stdout: Vec<String>,
    pub(crate) stderr: Vec<String>,
    pub(crate) transcript: Vec<String>,
}

impl Report {
    pub(crate) fn new(name: &'static str) -> Report {
        Report {
            name,
            state: Map::new(),
            stdout: Vec::new(),
            stderr: Vec::new(),
            transcript: Vec::new(),
        }
    }

    /// Sets a state key.
    pub(crate) fn set(&mut self, key: &str, value: impl Into<Value>) {
        self.state.insert(key.to_owned(), value.into());
    }

    /// Adds a transcript line, prefixed with the plugin's name.
    pub(crate) fn line(&mut self, text: impl AsRef<str>) {
        self.transcript
            .push(format!("{} {}", self.name, text.as_ref()));
    }

    /// The outcome of a body that returned `res`.
    pub(crate) fn finish(mut self, res: Result<(), Fail>) -> Outcome {
        let status = match res {
            Ok(()) => Status::Passed,
            Err(f) => {
                let (status, msg) = match f {
                    Fail::Failed(m) => (Status::TaskFailed(1), m),
                    Fail::TimedOut(m) => (Status::TimedOut, m),
                };
                let msg = format!("{}: {msg}", self.name);
                self.transcript.push(format!("{msg} [FAILED]"));
                self.stderr.push(msg);
                status
            }
        };
        Outcome {
            status,
            state: Value::Object(self.state),
            stdout: self.stdout,
            stderr: self.stderr,
            check_errors: 0,
            transcript: self.transcript,
        }
    }
}

/// A built-in's body: checks, filling the report.
pub(crate) type Body = fn(&Call, &Map<String, Value>, &mut Report) -> Result<(), Fail>;

/// Runs `body` and makes the outcome: the common frame of every built-in.
pub(crate) fn frame(name: &'static str, call: &Call, body: Body) -> Outcome {
    let mut r = Report::new(name);
    let res = params::as_map(call.params)
        .and_then(|p| params::check_known(name, &p).map(|()| p))
        .map_err(Fail::Failed)
        .and_then(|p| body(call, &p, &mut r));
    r.finish(res)
}

/// How long a step may take: `requested` (or `default`) cut to what is
/// left before the deadline. The flag says the deadline is what limits it,
/// so running out of time is [`Fail::TimedOut`] rather than a failed check.
pub(crate) fn budget(
    requested: Option<Duration>,
    default: Option<Duration>,
    deadline: Option<Instant>,
) -> Result<(Option<Duration>, bool), Fail> {
    let wanted = requested.or(default);
    let Some(d) = deadline else {
        return Ok((wanted, false));
    };
    let left = d.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(Fail::TimedOut(
            "the deadline passed before it started".into(),
        ));
    }
    Ok(match wanted {
        Some(w) if w <= left => (Some(w), false),
        _ => (Some(left), true),
    })
}

/// The `timeout` parameter (or `default`) as [`budget`] cuts it: the
/// built-ins that always have a time limit.
pub(crate) fn timeout_param(
    p: &Map<String, Value>,
    default: Duration,
    deadline: Option<Instant>,
) -> Result<(Duration, bool), Fail> {
    let requested = params::duration_param(p, "timeout")?;
    let (timeout, by_deadline) = budget(requested, Some(default), deadline)?;
    Ok((timeout.unwrap_or(default), by_deadline))
}

/// Milliseconds as a float with 0.1 ms precision, for state and messages.
pub(crate) fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 10_000.0).round() / 10.0
}

/// A duration as written in messages (`300 ms`, `5 s`).
pub(crate) fn show(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{} s", (d.as_secs_f64() * 100.0).round() / 100.0)
    }
}
