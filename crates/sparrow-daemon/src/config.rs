//! The daemon's configuration file (`/etc/systemd/sparrow/daemon.toml`,
//! or the path in `SYSTEMD_SPARROWD_CONFIG`): where alerts go besides the
//! journal, and how many health probes run at once. docs/daemon.md
//! ("Configuration file") is the user's copy of the keys below.
//!
//! A missing file means the defaults. Unknown keys are errors (a typo
//! must not silently turn a setting off), and every error names the file,
//! line and column. Values are checked while they are read, so a bad one
//! is reported where it is written.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

/// Where the file is read from when `SYSTEMD_SPARROWD_CONFIG` is not set.
pub const DEFAULT_PATH: &str = "/etc/systemd/sparrow/daemon.toml";
/// The environment variable that overrides [`DEFAULT_PATH`].
pub const PATH_ENV: &str = "SYSTEMD_SPARROWD_CONFIG";
/// Larger files are refused: a configuration this size is a mistake.
pub const MAX_SIZE: u64 = 1 << 20;
/// The longest timeout or backoff accepted.
pub const MAX_DURATION: Duration = Duration::from_secs(600);
/// The most webhook retries accepted.
pub const MAX_RETRIES: u32 = 10;
/// The most probes (of either kind) allowed in flight.
pub const MAX_CONCURRENCY: usize = 65536;

/// The whole file. Every table and key is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DaemonConfig {
    /// `[alerts]`: where alerts go besides the journal (nowhere else by
    /// default).
    pub alerts: AlertConfig,
    /// `[health]`: limits on health probes.
    pub health: HealthConfig,
}

/// `[alerts]`: the extra channels. Alerts always go to the journal; each
/// table present here adds a channel.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertConfig {
    /// `[alerts.webhook]`: POST each alert as JSON. Default: none.
    pub webhook: Option<WebhookConfig>,
    /// `[alerts.command]`: run a program for each alert. Default: none.
    pub command: Option<CommandConfig>,
}

/// `[alerts.webhook]`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// `url`: required; `http://` or `https://` with a host.
    #[serde(deserialize_with = "url")]
    pub url: String,
    /// `timeout`: per attempt, connecting to the end of the answer's
    /// headers. Default `5s`.
    #[serde(default = "webhook_timeout", deserialize_with = "timeout")]
    pub timeout: Duration,
    /// `retries`: attempts after the first, at most 10. Default `3`.
    #[serde(default = "retries_default", deserialize_with = "retries")]
    pub retries: u32,
    /// `backoff`: the wait before the first retry; it doubles for each
    /// next one, up to 30 s. Default `1s`.
    #[serde(default = "backoff_default", deserialize_with = "backoff")]
    pub backoff: Duration,
    /// `headers`: extra request headers (`Authorization`, ...). Default:
    /// none. `Host`, `Content-Length`, `Transfer-Encoding` and `Connection`
    /// are the client's to set and are refused.
    #[serde(default, deserialize_with = "headers")]
    pub headers: BTreeMap<String, String>,
}

impl fmt::Debug for WebhookConfig {
    /// Header values are left out: they are often credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("url", &self.url)
            .field("timeout", &self.timeout)
            .field("retries", &self.retries)
            .field("backoff", &self.backoff)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl WebhookConfig {
    /// A webhook to `url` with the default timeout, retries and backoff.
    pub fn new(url: impl Into<String>) -> WebhookConfig {
        WebhookConfig {
            url: url.into(),
            timeout: webhook_timeout(),
            retries: retries_default(),
            backoff: backoff_default(),
            headers: BTreeMap::new(),
        }
    }
}

/// `[alerts.command]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandConfig {
    /// `argv`: required; the program (an absolute path: no `PATH` lookup
    /// in a daemon) and its arguments, run without a shell.
    #[serde(deserialize_with = "argv")]
    pub argv: Vec<String>,
    /// `timeout`: after it the command and every process of its group are
    /// killed. Default `10s`.
    #[serde(default = "command_timeout", deserialize_with = "timeout")]
    pub timeout: Duration,
}

/// `[health]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthConfig {
    /// `max_concurrent_probes`: HTTP and TCP probes in flight at once
    /// (1 to 65536). Default `4096`: each unit has at most one probe in
    /// flight, so below this many units with checks no probe ever waits
    /// behind a slow one (the daemon raises its soft descriptor limit to
    /// the hard one at start for this).
    #[serde(deserialize_with = "probes")]
    pub max_concurrent_probes: usize,
    /// `max_concurrent_exec`: exec probes (processes) running at once
    /// (1 to 65536). Default `16`.
    #[serde(deserialize_with = "exec")]
    pub max_concurrent_exec: usize,
}

impl Default for HealthConfig {
    fn default() -> HealthConfig {
        HealthConfig {
            max_concurrent_probes: 4096,
            max_concurrent_exec: 16,
        }
    }
}

fn webhook_timeout() -> Duration {
    Duration::from_secs(5)
}
fn retries_default() -> u32 {
    3
}
fn backoff_default() -> Duration {
    Duration::from_secs(1)
}
fn command_timeout() -> Duration {
    Duration::from_secs(10)
}

/// The path to read: `SYSTEMD_SPARROWD_CONFIG` when set and not empty,
/// else [`DEFAULT_PATH`].
pub fn path_from_env() -> PathBuf {
    match std::env::var_os(PATH_ENV) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(DEFAULT_PATH),
    }
}

/// Reads and checks the file at `path`. A missing file is the defaults;
/// anything else that is wrong is an error naming the file (and the line
/// and column when there is one).
pub fn load(path: &Path) -> Result<DaemonConfig, String> {
    let shown = path.display();
    // Non-blocking, regular files only: a FIFO or device at the path must
    // not hang or disturb the daemon's start.
    let file = match sparrow_source::read::open_regular(path) {
        Ok(f) => f,
        Err(e) if e.not_found => return Ok(DaemonConfig::default()),
        Err(e) => return Err(format!("{shown}: {}", e.reason)),
    };
    let mut bytes = Vec::new();
    file.take(MAX_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{shown}: cannot read: {e}"))?;
    if bytes.len() as u64 > MAX_SIZE {
        return Err(format!("{shown}: larger than {MAX_SIZE} bytes; refused"));
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        let good = e.utf8_error().valid_up_to();
        let head = std::str::from_utf8(&e.as_bytes()[..good]).unwrap_or_default();
        let (line, col) = line_col(head, good);
        format!("{shown}:{line}:{col}: not UTF-8 text")
    })?;
    parse(&text).map_err(|e| format!("{shown}{e}"))
}

/// Parses a file's text. The error starts with `:LINE:COL: ` when toml
/// knows where (so that the caller puts the file name first), else `: `.
fn parse(text: &str) -> Result<DaemonConfig, String> {
    toml::from_str(text).map_err(|e| {
        let msg = e.message().trim_end();
        match e.span() {
            Some(span) => {
                let (line, col) = line_col(text, span.start);
                format!(":{line}:{col}: {msg}")
            }
            None => format!(": {msg}"),
        }
    })
}

/// 1-based line and column (in characters) of byte offset `at`.
fn line_col(text: &str, at: usize) -> (usize, usize) {
    let at = at.min(text.len());
    // An offset inside a character (should not happen) counts from its start.
    let at = (0..=at)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[start..].chars().count() + 1)
}

// Field readers: each checks its value, so that toml reports the error at
// the value's position. One function per key name, for the message.

fn url<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    check_url(&s).map_err(de::Error::custom)?;
    Ok(s)
}

/// Whether `s` is an http(s) URL with a host.
pub(crate) fn check_url(s: &str) -> Result<reqwest::Url, String> {
    let u = reqwest::Url::parse(s).map_err(|e| format!("`url` {s:?} is not a URL: {e}"))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(format!(
            "`url` {s:?}: the scheme must be http or https, not {:?}",
            u.scheme()
        ));
    }
    if u.host_str().unwrap_or("").is_empty() {
        return Err(format!("`url` {s:?} has no host"));
    }
    Ok(u)
}

fn timeout<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    duration(d, "timeout")
}

fn backoff<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    duration(d, "backoff")
}

/// A duration: a systemd time span (`"500ms"`, `"5s"`, `"2min"`) or an
/// integer of seconds; more than 0 and at most [`MAX_DURATION`].
fn duration<'de, D: Deserializer<'de>>(d: D, key: &'static str) -> Result<Duration, D::Error> {
    struct V(&'static str);
    impl Visitor<'_> for V {
        type Value = Duration;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            write!(f, "`{}` as a duration such as \"5s\" or \"500ms\"", self.0)
        }
        fn visit_i64<E: de::Error>(self, n: i64) -> Result<Duration, E> {
            let secs = u64::try_from(n)
                .map_err(|_| E::custom(format!("`{}` must be more than 0, not {n}", self.0)))?;
            in_range(self.0, Duration::from_secs(secs), &n.to_string())
        }
        fn visit_u64<E: de::Error>(self, n: u64) -> Result<Duration, E> {
            in_range(self.0, Duration::from_secs(n), &n.to_string())
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<Duration, E> {
            let usec = sparrow_lang::value::parse_timespan(s).map_err(|i| {
                E::custom(format!(
                    "`{}`: {}; write it as \"500ms\", \"5s\" or \"2min\"",
                    self.0, i.message
                ))
            })?;
            in_range(self.0, Duration::from_micros(usec), &format!("{s:?}"))
        }
    }
    fn in_range<E: de::Error>(key: &str, d: Duration, shown: &str) -> Result<Duration, E> {
        if d.is_zero() {
            Err(E::custom(format!(
                "`{key}` must be more than 0, not {shown}"
            )))
        } else if d > MAX_DURATION {
            Err(E::custom(format!(
                "`{key}` must be at most 10min, not {shown}"
            )))
        } else {
            Ok(d)
        }
    }
    d.deserialize_any(V(key))
}

fn retries<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let n = i64::deserialize(d)?;
    match u32::try_from(n) {
        Ok(n) if n <= MAX_RETRIES => Ok(n),
        _ => Err(de::Error::custom(format!(
            "`retries` must be 0 to {MAX_RETRIES}, not {n}"
        ))),
    }
}

fn probes<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    concurrency(d, "max_concurrent_probes")
}

fn exec<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    concurrency(d, "max_concurrent_exec")
}

fn concurrency<'de, D: Deserializer<'de>>(d: D, key: &str) -> Result<usize, D::Error> {
    let n = i64::deserialize(d)?;
    match usize::try_from(n) {
        Ok(n) if (1..=MAX_CONCURRENCY).contains(&n) => Ok(n),
        _ => Err(de::Error::custom(format!(
            "`{key}` must be 1 to {MAX_CONCURRENCY}, not {n}"
        ))),
    }
}

fn argv<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let argv = Vec::<String>::deserialize(d)?;
    let Some(program) = argv.first() else {
        return Err(de::Error::custom(
            "`argv` is empty; it needs at least the program",
        ));
    };
    if !program.starts_with('/') {
        return Err(de::Error::custom(format!(
            "`argv`: the program {program:?} must be an absolute path (the daemon does not search PATH)"
        )));
    }
    // A NUL cannot reach exec; say so now rather than at the first alert.
    if argv.iter().any(|a| a.contains('\0')) {
        return Err(de::Error::custom("`argv` must not contain NUL characters"));
    }
    Ok(argv)
}

/// Headers the HTTP client sets itself; overriding them breaks requests.
const RESERVED_HEADERS: &[&str] = &["host", "content-length", "transfer-encoding", "connection"];

fn headers<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    let map = BTreeMap::<String, String>::deserialize(d)?;
    for (name, value) in &map {
        if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(de::Error::custom(format!(
                "`headers`: {name:?} is not a header name"
            )));
        }
        if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            return Err(de::Error::custom(format!(
                "`headers`: {name:?} is set by the daemon and cannot be configured"
            )));
        }
        if reqwest::header::HeaderValue::from_str(value).is_err() {
            return Err(de::Error::custom(format!(
                "`headers`: the value of {name:?} must be printable text on one line"
            )));
        }
    }
    Ok(map)
}

#[cfg(test)]
mod tests;
