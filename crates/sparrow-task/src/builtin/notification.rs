//! `notification`: sends a message to the journal, a webhook or a command.
//!
//! | param | type | default |
//! |---|---|---|
//! | `message` | string | required |
//! | `severity` | `info`, `warning` or `critical` | `warning` |
//! | `channel` (or `via`) | `journal`, `webhook` or `command` | `journal` |
//! | `url` | string, for `webhook` | required there |
//! | `command` | string (`sh -c`) or argv list, for `command` | required there |
//! | `timeout` | duration, for `webhook` and `command` | `5s`, `30s` |
//!
//! - `journal`: one datagram in the native protocol to [`JOURNAL_SOCKET`]
//!   with `MESSAGE`, `PRIORITY`, `SYSLOG_IDENTIFIER=systemd-sparrow`,
//!   `SPARROW_DESC`, `SPARROW_SEVERITY`. Without a journal (no socket, or
//!   nobody behind it) the message goes to stderr with a `<N>` priority
//!   prefix; state says so (`channel: stderr`, `fallback`).
//! - `webhook`: `POST url` with `{"message", "severity", "desc", "host"}`;
//!   a 2xx answer is delivery.
//! - `command`: runs it with `SPARROW_MESSAGE`, `SPARROW_SEVERITY` and
//!   `SPARROW_DESC` set; exit 0 is delivery.
//!
//! State: `delivered` (bool), `channel`; `status` (webhook), `exit_code`
//! (command), `fallback` (journal to stderr).

use std::io::{ErrorKind, Write};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::time::{Duration, Instant};

use reqwest::header::CONTENT_TYPE;
use reqwest::Url;
use serde_json::{json, Map, Value};

use super::command::{command_param, spawn};
use super::http::{chain, client, off_runtime};
use super::params::{req_str, str_param};
use super::{show, timeout_param, Call, Fail, Report};
use crate::exec::Exit;
use crate::Outcome;

/// journald's native protocol socket.
pub const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";
/// `SYSLOG_IDENTIFIER` of the journal entries.
const IDENTIFIER: &str = "systemd-sparrow";
/// Bytes of message sent at most: a datagram must fit the socket buffer.
const MESSAGE_MAX: usize = 64 * 1024;

/// Runs `notification` with the system's journal socket.
pub fn run(call: &Call) -> Outcome {
    run_with_journal(call, Path::new(JOURNAL_SOCKET))
}

/// Runs `notification` with `socket` as the journal socket (tests point it
/// at a socket of their own).
pub fn run_with_journal(call: &Call, socket: &Path) -> Outcome {
    let mut r = Report::new("notification");
    let res = super::params::as_map(call.params)
        .and_then(|p| super::params::check_known("notification", &p).map(|()| p))
        .map_err(Fail::Failed)
        .and_then(|p| notify(call, &p, socket, &mut r));
    r.finish(res)
}

/// The syslog priority of a severity.
fn priority(severity: &str) -> u8 {
    match severity {
        "critical" => 2,
        "warning" => 4,
        _ => 6,
    }
}

/// A journal datagram: `NAME=value\n`, or for a value with a newline
/// `NAME\n`, its length as 64-bit little endian, the value, `\n`.
pub fn journal_datagram(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in fields {
        out.extend_from_slice(name.as_bytes());
        if value.contains('\n') {
            out.push(b'\n');
            out.extend_from_slice(&(value.len() as u64).to_le_bytes());
        } else {
            out.push(b'=');
        }
        out.extend_from_slice(value.as_bytes());
        out.push(b'\n');
    }
    out
}

/// Sends one entry to the journal listening on `socket`.
pub fn journal_send(socket: &Path, fields: &[(&str, &str)]) -> std::io::Result<()> {
    let sock = UnixDatagram::unbound()?;
    sock.send_to(&journal_datagram(fields), socket).map(|_| ())
}

/// `s` cut to at most `max` bytes, on a character boundary.
fn cut(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned())
}

fn notify(call: &Call, p: &Map<String, Value>, socket: &Path, r: &mut Report) -> Result<(), Fail> {
    let message = req_str(p, "message")?;
    let severity = str_param(p, "severity")?.unwrap_or("warning");
    if !matches!(severity, "info" | "warning" | "critical") {
        return Err(format!(
            "parameter `severity` must be info, warning or critical, got {severity:?}"
        )
        .into());
    }
    let channel = match (str_param(p, "channel")?, str_param(p, "via")?) {
        (Some(c), Some(v)) if c != v => {
            return Err(format!("parameters `channel` ({c}) and `via` ({v}) disagree").into())
        }
        (Some(c), _) | (None, Some(c)) => c,
        (None, None) => "journal",
    };
    r.set("delivered", false);
    r.set("channel", channel);
    match channel {
        "journal" => to_journal(call, message, severity, socket, r),
        "webhook" => to_webhook(call, p, message, severity, r),
        "command" => to_command(call, p, message, severity, r),
        other => Err(format!(
            "parameter `channel` must be journal, webhook or command, got {other:?}"
        )
        .into()),
    }
}

fn to_journal(
    call: &Call,
    message: &str,
    severity: &str,
    socket: &Path,
    r: &mut Report,
) -> Result<(), Fail> {
    let text = cut(message, MESSAGE_MAX);
    if text.len() < message.len() {
        r.set("truncated", true);
    }
    let prio = priority(severity).to_string();
    let fields = [
        ("MESSAGE", text),
        ("PRIORITY", prio.as_str()),
        ("SYSLOG_IDENTIFIER", IDENTIFIER),
        ("SPARROW_DESC", call.desc),
        ("SPARROW_SEVERITY", severity),
    ];
    match journal_send(socket, &fields) {
        Ok(()) => {
            r.set("delivered", true);
            r.line(format!("{severity} -> journal: {}", first_line(text)));
            Ok(())
        }
        // No journal here (a container, early boot): stderr is the next
        // best place, and under systemd it reaches the journal anyway.
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::ConnectionRefused) => {
            let why = format!("no journal at {}: {e}", socket.display());
            let mut err = std::io::stderr().lock();
            let mut written = Ok(());
            for line in text.lines() {
                written = written
                    .and_then(|_| writeln!(err, "<{prio}>{IDENTIFIER}: {}: {line}", call.desc));
            }
            if let Err(w) = written {
                return Err(format!("{why}; writing to stderr failed too: {w}").into());
            }
            r.set("channel", "stderr");
            r.set("fallback", why.clone());
            r.set("delivered", true);
            r.line(format!(
                "{severity} -> stderr ({why}): {}",
                first_line(text)
            ));
            Ok(())
        }
        Err(e) => Err(format!("cannot write to the journal at {}: {e}", socket.display()).into()),
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

fn to_webhook(
    call: &Call,
    p: &Map<String, Value>,
    message: &str,
    severity: &str,
    r: &mut Report,
) -> Result<(), Fail> {
    let url_text = req_str(p, "url")?;
    let url = Url::parse(url_text)
        .map_err(|e| format!("parameter `url` is not a URL ({e}): {url_text}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("parameter `url` must be http:// or https://, got {url_text}").into());
    }
    let (timeout, by_deadline) = timeout_param(p, Duration::from_secs(5), call.deadline)?;
    let body =
        json!({"message": message, "severity": severity, "desc": call.desc, "host": hostname()})
            .to_string();
    let start = Instant::now();
    let sent = off_runtime(|| -> Result<u16, (bool, String)> {
        let c = client().map_err(|e| (false, e))?;
        let resp = c
            .post(url.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(body)
            .timeout(timeout)
            .send()
            .map_err(|e| (e.is_timeout(), chain(&e.without_url())))?;
        Ok(resp.status().as_u16())
    })?;
    match sent {
        Ok(status) => {
            r.set("status", status);
            r.line(format!(
                "{severity} -> POST {url} -> {status} in {} ms",
                super::millis(start.elapsed())
            ));
            if (200..300).contains(&status) {
                r.set("delivered", true);
                Ok(())
            } else {
                Err(format!("webhook POST {url} answered status {status}, expected 2xx").into())
            }
        }
        Err((true, _)) => {
            let msg = format!("webhook POST {url}: no answer within {}", show(timeout));
            Err(if by_deadline {
                Fail::TimedOut(msg)
            } else {
                Fail::Failed(msg)
            })
        }
        Err((false, e)) => Err(format!("webhook POST {url}: {e}").into()),
    }
}

fn to_command(
    call: &Call,
    p: &Map<String, Value>,
    message: &str,
    severity: &str,
    r: &mut Report,
) -> Result<(), Fail> {
    let (mut cmd, shown) = command_param(p)?;
    cmd.env("SPARROW_MESSAGE", message)
        .env("SPARROW_SEVERITY", severity)
        .env("SPARROW_DESC", call.desc);
    let (timeout, _) = timeout_param(p, Duration::from_secs(30), call.deadline)?;
    let start = Instant::now();
    let ran = spawn(cmd, &shown, Some(start + timeout), &mut r.stdout)?;
    r.stderr = ran.stderr;
    r.set("exit_code", ran.exit.code());
    r.line(format!(
        "{severity} -> `{shown}` -> status {} in {} ms",
        ran.exit.code(),
        super::millis(start.elapsed())
    ));
    match ran.exit {
        Exit::Code(0) => {
            r.set("delivered", true);
            Ok(())
        }
        Exit::TimedOut => Err(Fail::TimedOut(format!(
            "`{shown}` did not end within {}; its process group was killed",
            show(timeout)
        ))),
        e => Err(format!(
            "`{shown}` ended with status {}, the message may not be delivered",
            e.code()
        )
        .into()),
    }
}
