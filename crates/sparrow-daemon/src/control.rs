//! The control socket: a root-only Unix socket speaking one JSON object per
//! line each way. `systemd-sparrow status|eval|reload` are its clients.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sparrow_policy::Prop;

/// Where the daemon listens unless told otherwise.
pub const DEFAULT_SOCKET: &str = "/run/systemd-sparrow/control.sock";
/// Overrides the socket path (daemon and clients).
pub const SOCKET_ENV: &str = "SYSTEMD_SPARROW_CONTROL";

/// The socket path to use.
pub fn socket_path() -> PathBuf {
    std::env::var_os(SOCKET_ENV).map_or_else(|| PathBuf::from(DEFAULT_SOCKET), PathBuf::from)
}

/// A request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Request {
    /// The daemon's view of all units, or of one.
    Status {
        /// One unit, or all.
        #[serde(default)]
        unit: Option<String>,
    },
    /// Evaluate a unit's closures now and say what would change, without applying.
    Eval {
        /// The unit.
        unit: String,
    },
    /// Re-read the definitions.
    Reload,
    /// Forget a unit's spent restart budget.
    Reset {
        /// The unit.
        unit: String,
    },
}

/// A response.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// Whether the request succeeded.
    pub ok: bool,
    /// Why not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// For `status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    /// For `eval`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval: Option<EvalReport>,
    /// For `reload`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl Response {
    /// A failure.
    pub fn error(msg: impl Into<String>) -> Response {
        Response {
            ok: false,
            error: Some(msg.into()),
            ..Response::default()
        }
    }
}

/// The daemon as a whole.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DaemonStatus {
    /// Its PID.
    pub pid: u32,
    /// `system bus`, `private socket` or `disconnected`.
    pub bus: String,
    /// How many times definitions were loaded.
    pub generation: u64,
    /// Units it manages.
    pub managed: usize,
    /// Live changes in the last minute, and the cap.
    pub changes_last_minute: usize,
    /// The daemon-wide cap per minute.
    pub max_changes_per_minute: usize,
    /// Evaluations, failed ones, and ones stopped by a limit.
    pub evaluations: u64,
    /// Failed evaluations.
    pub errors: u64,
    /// Evaluations stopped by the wall-clock or operation limit.
    pub slow: u64,
    /// Evaluations postponed because every worker was busy.
    pub postponed: u64,
    /// Live changes made since the daemon started.
    #[serde(default)]
    pub applied: u64,
    /// Problems with definitions (one line each).
    pub problems: Vec<String>,
    /// The resident Raku workers of the evaluators (Raku definitions' subs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub raku_workers: Vec<RakuWorker>,
}

/// One evaluator's resident Raku worker.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RakuWorker {
    /// Which evaluator (0-based).
    pub evaluator: usize,
    /// Starts, calls, the last failure.
    #[serde(flatten)]
    pub health: sparrow_raku::resident::Health,
}

/// One decision about one property.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// The property.
    pub prop: Prop,
    /// What the closure asked for (as systemd will report it).
    pub desired: String,
    /// What systemd reported.
    pub live: String,
    /// `apply`, `same`, `below threshold (...)`, `dwell (...)`, `unit cap`, `daemon cap`.
    pub verdict: String,
}

/// The last evaluation of a unit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvalRecord {
    /// When (wall clock, ms since the epoch).
    pub at_ms: u64,
    /// How long the closures took (µs).
    pub took_us: u64,
    /// The error, if it failed (file:line:col: message).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What was decided per property.
    pub decisions: Vec<Decision>,
}

/// A change the daemon made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    /// When (wall clock, ms since the epoch).
    pub at_ms: u64,
    /// The property.
    pub prop: Prop,
    /// Before.
    pub old: String,
    /// What systemd reports now.
    pub new: String,
    /// Why.
    pub reason: String,
}

/// One managed unit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitStatus {
    /// The unit.
    pub unit: String,
    /// Its definition, `file:line`.
    pub definition: String,
    /// Its ActiveState as last seen.
    pub active_state: String,
    /// The runtime features its definition asks for.
    #[serde(default)]
    pub features: Vec<String>,
    /// Evaluation interval (ms).
    pub interval_ms: u64,
    /// Milliseconds until the next evaluation, when it is scheduled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_eval_in_ms: Option<u64>,
    /// The last evaluation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_eval: Option<EvalRecord>,
    /// Recent changes, newest last.
    pub applied: Vec<Applied>,
    /// Live values as last read.
    pub live: BTreeMap<Prop, String>,
    /// Evaluations, failures, limit hits.
    pub evaluations: u64,
    /// Failed evaluations.
    pub errors: u64,
    /// Evaluations stopped by a limit.
    pub slow: u64,
    /// Why the unit is no longer evaluated (its evaluation took an
    /// evaluator process down), until the definitions are re-read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quarantined: Option<String>,
    /// Its health check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthStatus>,
    /// Its kernel watches and responses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<KernelStatus>,
    /// Its pattern monitor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<PatternStatus>,
}

/// A unit's pattern monitor (`monitor.pattern_check`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatternStatus {
    /// How often it runs without a change (ms).
    pub interval_ms: u64,
    /// The files whose changes run it.
    pub watch: Vec<String>,
    /// Runs since the daemon started, and failed runs.
    pub runs: u64,
    /// Failed runs.
    pub errors: u64,
    /// When it last ran (wall-clock ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run_ms: Option<u64>,
    /// What came of the last run.
    pub last_outcome: String,
    /// The environment the unit runs with now (from the drop-in), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<BTreeMap<String, String>>,
    /// Restarts it made to change the environment.
    pub restarts: u64,
}

/// A unit's kernel watches (PSI triggers, `memory.events`) and responses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelStatus {
    /// Each watch, armed or not.
    pub watches: Vec<WatchStatus>,
    /// Responses called (`pressure_response` and/or the strategy).
    pub responses: u64,
    /// Responses that failed.
    pub errors: u64,
    /// Signals that came while a response ran or too soon after one, and
    /// were folded into the next.
    pub coalesced: u64,
    /// The last response: when, for which event, and what came of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_response: Option<ResponseRecord>,
}

/// One kernel watch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchStatus {
    /// `cpu some 150 ms / 2 s`, `memory.events`.
    pub what: String,
    /// The file it watches, when known.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub file: String,
    /// `armed`, `waiting for the unit's cgroup`, `not armed (the unit is
    /// not active)`, or `unavailable: REASON`.
    pub state: String,
    /// What was changed to make the kernel accept it (rounding).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Times it fired since the daemon started.
    pub fired: u64,
    /// When it last fired (wall-clock ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_fired_ms: Option<u64>,
}

/// The outcome of one kernel response.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseRecord {
    /// When it was called (wall-clock ms).
    pub at_ms: u64,
    /// The event type (`cpu-pressure`, `memory-high`, ...).
    pub event: String,
    /// `3 properties returned`, `nothing to change`, or the error.
    pub outcome: String,
}

/// A unit's health check.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthStatus {
    /// `http`, `tcp`, `exec` or `check`.
    pub check: String,
    /// `unknown`, `healthy` or `unhealthy`.
    pub state: String,
    /// Failures in a row.
    pub failures: u32,
    /// Successes in a row.
    pub successes: u32,
    /// The last failure's reason, until a probe passes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// How long the last probe took.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_latency_ms: Option<u64>,
    /// When the next probe starts (none while one runs or the unit is not active).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_probe_in_ms: Option<u64>,
    /// Probes started since the daemon started.
    pub probes: u64,
    /// Restarts it made since the daemon started.
    pub restarts: u64,
    /// Restarts counted in the budget's window now.
    pub restarts_in_window: u32,
    /// The budget: at most this many restarts ...
    pub budget_max: u32,
    /// ... within this window.
    pub budget_window_ms: u64,
    /// Spent: no restarts until healthy again or `systemd-sparrow reset`.
    pub budget_exhausted: bool,
    /// Why the check closure is not called any more (it took its evaluator
    /// process down), until the definitions are read again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quarantined: Option<String>,
}

/// `status`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// The daemon.
    pub daemon: DaemonStatus,
    /// Its units.
    pub units: Vec<UnitStatus>,
}

/// `eval`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvalReport {
    /// The unit.
    pub unit: String,
    /// How long the closures took (µs).
    pub took_us: u64,
    /// The error, if it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What would be decided per property; nothing is applied.
    pub decisions: Vec<Decision>,
}

/// Why a control request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// Nothing listens on the socket (or it may not be opened).
    #[error("cannot reach systemd-sparrowd at {}: {source} (is it running? systemctl status systemd-sparrowd)", path.display())]
    Unreachable {
        /// The socket.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The request could not be sent, and nothing came back.
    #[error("cannot send the request to systemd-sparrowd: {0}")]
    Send(std::io::Error),
    /// Reading the answer failed (or timed out).
    #[error("no answer from systemd-sparrowd: {0}")]
    NoAnswer(std::io::Error),
    /// The daemon closed the connection without a word.
    #[error("systemd-sparrowd closed the connection without answering")]
    Closed,
    /// The answer was not a response.
    #[error("bad answer from systemd-sparrowd: {0}")]
    BadAnswer(serde_json::Error),
}

/// Sends one request and waits (up to `timeout`) for the response.
pub fn request(path: &Path, req: &Request, timeout: Duration) -> Result<Response, ControlError> {
    let stream = std::os::unix::net::UnixStream::connect(path).map_err(|source| {
        ControlError::Unreachable {
            path: path.to_path_buf(),
            source,
        }
    })?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .map_err(ControlError::Send)?;
    let mut line = serde_json::to_string(req).map_err(ControlError::BadAnswer)?;
    line.push('\n');
    // The daemon may answer (and close) before reading, e.g. to refuse a
    // user: then the write fails, but its answer is there to read.
    let written = (&stream).write_all(line.as_bytes());
    let mut reply = String::new();
    BufReader::new(&stream)
        .read_line(&mut reply)
        .map_err(ControlError::NoAnswer)?;
    if reply.is_empty() {
        return Err(match written {
            Err(e) => ControlError::Send(e),
            Ok(()) => ControlError::Closed,
        });
    }
    serde_json::from_str(&reply).map_err(ControlError::BadAnswer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_have_a_small_stable_wire_format() {
        let r = Request::Status {
            unit: Some("web.service".into()),
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"cmd":"status","unit":"web.service"}"#
        );
        assert_eq!(
            serde_json::from_str::<Request>(r#"{"cmd":"status"}"#).unwrap(),
            Request::Status { unit: None }
        );
        assert_eq!(
            serde_json::from_str::<Request>(r#"{"cmd":"reload"}"#).unwrap(),
            Request::Reload
        );
        assert!(serde_json::from_str::<Request>(r#"{"cmd":"format-disk"}"#).is_err());
        let resp = Response::error("nope");
        assert_eq!(
            serde_json::to_string(&resp).unwrap(),
            r#"{"ok":false,"error":"nope"}"#
        );
    }
}
