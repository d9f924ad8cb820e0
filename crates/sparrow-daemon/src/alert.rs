//! Alert delivery beyond the journal: a webhook and a command, as
//! configured in `[alerts]` ([`crate::config::AlertConfig`]).
//!
//! An alert is raised when a health check fails with the action "alert" or
//! a restart budget is spent; the journal always gets it (elsewhere). Here
//! it is POSTed as JSON to the webhook, with retries, and handed to the
//! command on stdin, both at once. Everything is async and bounded by the
//! configured timeouts: nothing waits on the loop's thread, and a command
//! that overstays is killed with its whole process group.

use sparrow_task::error_chain;
use std::fmt;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::str::FromStr;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::ChildStderr;
use tokio::time::Instant;

use crate::config::{AlertConfig, CommandConfig, WebhookConfig};

/// The longest wait between two webhook attempts.
pub const BACKOFF_CAP: Duration = Duration::from_secs(30);
/// Bytes of a command's stderr kept for the error (its end).
pub const STDERR_KEPT: usize = 2048;
/// The `source` field of the webhook's JSON.
pub const SOURCE: &str = "systemd-sparrowd";
/// How long stderr is still read after the command exited: enough to
/// collect what it wrote, not to wait on a background child holding it.
const STDERR_GRACE: Duration = Duration::from_millis(100);
/// The longest environment value passed to the command: the kernel
/// refuses a single string over 128 KiB, and the full text is on stdin.
const ENV_VALUE_MAX: usize = 4096;

/// One alert.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Alert {
    /// The unit, such as `web.service`.
    pub unit: String,
    /// The check's name, or what raised the alert (`restart-budget`).
    pub check: String,
    /// How bad it is.
    pub severity: Severity,
    /// For people.
    pub message: String,
    /// When it was raised, in milliseconds since the Unix epoch.
    pub wall_ms: u64,
    /// Consecutive failures that led to it.
    pub failures: u32,
}

/// How bad an alert is.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing.
    Info,
    /// Needs a look.
    Warning,
    /// Needs someone now.
    Critical,
}

impl Severity {
    /// The lowercase name, as in JSON and the environment.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = String;

    /// `info`, `warning` (or `warn`), `critical`, in any case.
    fn from_str(s: &str) -> Result<Severity, String> {
        match s.to_ascii_lowercase().as_str() {
            "info" => Ok(Severity::Info),
            "warning" | "warn" => Ok(Severity::Warning),
            "critical" => Ok(Severity::Critical),
            _ => Err(format!(
                "{s:?} is not a severity: write info, warning or critical"
            )),
        }
    }
}

/// The outcome of one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// `"webhook"` or `"command"`.
    pub channel: &'static str,
    /// The attempts it took, or why it failed (after how many attempts).
    pub result: Result<u32, String>,
}

/// Delivers alerts to the configured channels. Built once, at start and on
/// reload: it holds the HTTP client (TLS roots loaded once).
pub struct Deliverer {
    webhook: Option<Webhook>,
    command: Option<CommandConfig>,
}

/// A webhook ready to use: its URL parsed and headers built once.
struct Webhook {
    cfg: WebhookConfig,
    url: reqwest::Url,
    /// The URL's origin, for messages: paths and queries of webhooks often
    /// hold the secret (Slack's do), and messages go to the journal.
    shown: String,
    headers: HeaderMap,
    client: reqwest::Client,
}

impl fmt::Debug for Deliverer {
    /// Without the headers: they may hold credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Deliverer")
            .field("webhook", &self.webhook.as_ref().map(|w| &w.shown))
            .field("command", &self.command.as_ref().map(|c| &c.argv))
            .finish()
    }
}

impl Deliverer {
    /// Checks `cfg` (as [`crate::config::load`] does, for configurations
    /// built in code) and builds the HTTP client when a webhook is set.
    pub fn new(cfg: AlertConfig) -> Result<Deliverer, String> {
        let webhook = cfg.webhook.map(Webhook::new).transpose()?;
        if let Some(c) = &cfg.command {
            match c.argv.first() {
                Some(p) if p.starts_with('/') => {}
                Some(p) => return Err(format!("alert command {p:?}: not an absolute path")),
                None => return Err("alert command: `argv` is empty".into()),
            }
        }
        Ok(Deliverer {
            webhook,
            command: cfg.command,
        })
    }

    /// No channel besides the journal.
    pub fn empty() -> Deliverer {
        Deliverer {
            webhook: None,
            command: None,
        }
    }

    /// Whether any channel besides the journal is configured.
    pub fn is_empty(&self) -> bool {
        self.webhook.is_none() && self.command.is_none()
    }

    /// Sends `alert` to every configured channel at once and returns each
    /// channel's outcome (webhook first). Takes at most the channels'
    /// timeouts (and the webhook's backoff waits); never panics.
    pub async fn deliver(&self, alert: &Alert) -> Vec<Delivery> {
        let json = match serde_json::to_vec(&Payload {
            alert,
            host: hostname(),
            source: SOURCE,
        }) {
            Ok(j) => j,
            Err(e) => {
                let failed = |channel| Delivery {
                    channel,
                    result: Err(format!("cannot encode the alert: {e}")),
                };
                let mut out = Vec::new();
                out.extend(self.webhook.as_ref().map(|_| failed("webhook")));
                out.extend(self.command.as_ref().map(|_| failed("command")));
                return out;
            }
        };
        let hook = async {
            match &self.webhook {
                Some(w) => Some(Delivery {
                    channel: "webhook",
                    result: w.post(&json).await,
                }),
                None => None,
            }
        };
        let command = async {
            match &self.command {
                Some(c) => Some(Delivery {
                    channel: "command",
                    result: run_command(c, alert, &json).await.map(|()| 1),
                }),
                None => None,
            }
        };
        let (a, b) = tokio::join!(hook, command);
        a.into_iter().chain(b).collect()
    }
}

/// The JSON sent: the alert's fields, plus where it comes from.
#[derive(Serialize)]
struct Payload<'a> {
    #[serde(flatten)]
    alert: &'a Alert,
    host: String,
    source: &'static str,
}

/// The host's name, read for every alert (it may be set after the daemon
/// starts); a read of procfs, which does not block.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// Why a webhook attempt failed, and whether another may succeed.
enum Failure {
    Retry(String),
    Final(String),
}

impl Webhook {
    fn new(cfg: WebhookConfig) -> Result<Webhook, String> {
        let url = crate::config::check_url(&cfg.url).map_err(|e| format!("alert webhook: {e}"))?;
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for (name, value) in &cfg.headers {
            let n = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("alert webhook: {name:?} is not a header name"))?;
            let mut v = HeaderValue::from_str(value)
                .map_err(|_| format!("alert webhook: the value of header {name:?} is not valid"))?;
            // Kept out of debug output.
            v.set_sensitive(true);
            headers.insert(n, v);
        }
        let client = reqwest::Client::builder()
            // A webhook that redirects is misconfigured (and a POST
            // redirected becomes a GET): report it instead.
            .redirect(reqwest::redirect::Policy::none())
            // Alerts are rare: a pooled connection would mostly be a stale
            // one, costing an attempt; each attempt connects afresh.
            .pool_max_idle_per_host(0)
            .user_agent(concat!("systemd-sparrowd/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                format!(
                    "alert webhook: cannot make the HTTP client: {}",
                    error_chain(&e)
                )
            })?;
        Ok(Webhook {
            cfg,
            shown: url.origin().ascii_serialization(),
            url,
            headers,
            client,
        })
    }

    /// POSTs `body` until it is taken, a failure is final, or the retries
    /// are spent; the waits double from `backoff` up to [`BACKOFF_CAP`].
    async fn post(&self, body: &[u8]) -> Result<u32, String> {
        let attempts = self.cfg.retries.saturating_add(1);
        let mut wait = self.cfg.backoff.min(BACKOFF_CAP);
        let mut last = String::new();
        for attempt in 1..=attempts {
            match self.attempt(body).await {
                Ok(()) => return Ok(attempt),
                Err(Failure::Final(why)) => {
                    return Err(format!(
                        "webhook {}: {why} (attempt {attempt}; not retried)",
                        self.shown
                    ))
                }
                Err(Failure::Retry(why)) => last = why,
            }
            if attempt < attempts {
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(BACKOFF_CAP);
            }
        }
        Err(format!(
            "webhook {}: failed after {attempts} attempt{}; last: {last}",
            self.shown,
            if attempts == 1 { "" } else { "s" }
        ))
    }

    async fn attempt(&self, body: &[u8]) -> Result<(), Failure> {
        let sent = self
            .client
            .post(self.url.clone())
            .headers(self.headers.clone())
            .timeout(self.cfg.timeout)
            .body(body.to_vec())
            .send()
            .await;
        match sent {
            Ok(answer) => {
                let status = answer.status();
                if status.is_success() {
                    Ok(())
                } else if status.is_server_error()
                    || status == reqwest::StatusCode::TOO_MANY_REQUESTS
                {
                    Err(Failure::Retry(format!("answered {status}")))
                } else {
                    Err(Failure::Final(format!("answered {status}")))
                }
            }
            Err(e) if e.is_timeout() => Err(Failure::Retry(format!(
                "no answer within {}",
                show(self.cfg.timeout)
            ))),
            // Without the URL, which may hold a secret (see `shown`).
            Err(e) if e.is_builder() => Err(Failure::Final(error_chain(&e.without_url()))),
            // Refused, reset, closed early, TLS: the network's, worth again.
            Err(e) => Err(Failure::Retry(error_chain(&e.without_url()))),
        }
    }
}

/// A duration as written in the configuration (`5s`, `200ms`).
fn show(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// Kills a command's process group when dropped while armed: on a timeout,
/// and when the delivery is abandoned (its future dropped). Disarmed once
/// the leader is reaped, since the group's number may then be reused.
struct Group {
    pgid: Option<i32>,
}

impl Group {
    fn kill(&mut self) {
        if let Some(pgid) = self.pgid {
            // SAFETY: kill(2) with a negative pid signals a process group;
            // the leader is not reaped yet, so the group is still ours.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
        }
    }
    fn disarm(&mut self) {
        self.pgid = None;
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs the alert command: the JSON on stdin, the alert's fields in the
/// environment, stdout discarded, the end of stderr kept for the error.
async fn run_command(cmd: &CommandConfig, alert: &Alert, json: &[u8]) -> Result<(), String> {
    let Some((program, args)) = cmd.argv.split_first() else {
        return Err("command: `argv` is empty".into());
    };
    let mut child = tokio::process::Command::new(program)
        .args(args)
        // The daemon's own systemd protocol variables: a command that
        // inherited them could speak (or read sockets) as the daemon.
        .env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_PID")
        .env_remove("WATCHDOG_USEC")
        .env_remove("LISTEN_PID")
        .env_remove("LISTEN_FDS")
        .env_remove("LISTEN_FDNAMES")
        .env("SPARROW_ALERT_UNIT", env_value(&alert.unit))
        .env("SPARROW_ALERT_CHECK", env_value(&alert.check))
        .env("SPARROW_ALERT_SEVERITY", alert.severity.as_str())
        .env("SPARROW_ALERT_MESSAGE", env_value(&alert.message))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        // Its own group, so that a timeout kills what it started too.
        .process_group(0)
        // Only the leader: `group` (dropped first) takes the rest.
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("command {program}: cannot start: {e}"))?;
    let mut group = Group {
        pgid: child.id().and_then(|p| i32::try_from(p).ok()),
    };

    let stdin = child.stdin.take();
    let mut stderr = child.stderr.take();
    // A command that does not read its stdin is not an error: the write
    // fails or stays pending, and is dropped once the command is done.
    let feed = async move {
        if let Some(mut w) = stdin {
            let _ = w.write_all(json).await;
        }
    };
    tokio::pin!(feed);
    let mut fed = false;
    let mut tail = Tail::default();
    let mut buf = [0u8; 4096];
    let mut stop = Instant::now() + cmd.timeout;
    let mut status: Option<std::io::Result<ExitStatus>> = None;

    while status.is_none() || stderr.is_some() {
        tokio::select! {
            () = &mut feed, if !fed => fed = true,
            r = child.wait(), if status.is_none() => {
                group.disarm();
                status = Some(r);
                stop = Instant::now() + STDERR_GRACE;
            }
            n = read_some(&mut stderr, &mut buf) => match n {
                Some(n) if n > 0 => tail.push(&buf[..n]),
                _ => stderr = None,
            },
            () = tokio::time::sleep_until(stop) => {
                if status.is_some() {
                    // Exited; something it left behind holds stderr open.
                    break;
                }
                group.kill();
                // SIGKILL is prompt, except in an uninterruptible sleep:
                // then tokio reaps the leader later and we return now.
                if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_secs(5), child.wait()).await {
                    group.disarm();
                }
                return Err(format!(
                    "command {program}: killed after the timeout of {}{}",
                    show(cmd.timeout),
                    tail.show()
                ));
            }
        }
    }

    match status {
        Some(Ok(s)) if s.success() => Ok(()),
        Some(Ok(s)) => Err(format!("command {program}: {}{}", describe(s), tail.show())),
        Some(Err(e)) => Err(format!("command {program}: cannot wait for it: {e}")),
        None => Err(format!("command {program}: lost")),
    }
}

/// Reads from stderr while it is open; pending forever once it is closed,
/// so that the `select!` branch goes quiet.
async fn read_some(stderr: &mut Option<ChildStderr>, buf: &mut [u8]) -> Option<usize> {
    match stderr {
        Some(r) => r.read(buf).await.ok(),
        None => std::future::pending().await,
    }
}

/// `exited with status 3`, `killed by signal 9`.
fn describe(s: ExitStatus) -> String {
    match (s.code(), s.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => format!("ended with {s}"),
    }
}

/// An environment value: no NUL (exec cannot pass one) and not longer than
/// [`ENV_VALUE_MAX`] bytes.
fn env_value(s: &str) -> String {
    let mut v: String = s.chars().filter(|&c| c != '\0').collect();
    if v.len() > ENV_VALUE_MAX {
        let mut end = ENV_VALUE_MAX;
        while !v.is_char_boundary(end) {
            end -= 1;
        }
        v.truncate(end);
    }
    v
}

/// The last [`STDERR_KEPT`] bytes of a stream.
#[derive(Default)]
struct Tail {
    bytes: Vec<u8>,
    cut: bool,
}

impl Tail {
    fn push(&mut self, more: &[u8]) {
        self.bytes.extend_from_slice(more);
        // Trimmed in steps, so that a chatty command is not a copy per read.
        if self.bytes.len() > 2 * STDERR_KEPT {
            let drop = self.bytes.len() - STDERR_KEPT;
            self.bytes.drain(..drop);
            self.cut = true;
        }
    }

    /// `; stderr: ...`, or nothing when it wrote nothing.
    fn show(&self) -> String {
        let start = self.bytes.len().saturating_sub(STDERR_KEPT);
        let text = String::from_utf8_lossy(&self.bytes[start..]);
        let text = text.trim();
        if text.is_empty() {
            return String::new();
        }
        let more = if self.cut || start > 0 { "..." } else { "" };
        format!("; stderr: {more}{text}")
    }
}

#[cfg(test)]
mod tests;
