//! `http-check`: an HTTP(S) request whose answer must have the expected
//! status, body and headers.
//!
//! | param | type | default |
//! |---|---|---|
//! | `url` | string, `http://` or `https://` | required |
//! | `method` | `GET`, `HEAD` or `POST` | `GET` |
//! | `status` | integer | any 2xx |
//! | `body` | string the body must contain | |
//! | `regex` | Rust regex the body must match | |
//! | `headers` | map name → value, sent | |
//! | `expect_headers` | map name → substring of the response header | |
//! | `timeout` | duration | `5s` |
//!
//! State: `status` (int, when an answer came), `latency_ms` (float, until
//! the body was read), `body_bytes` (int), `ok` (bool).

use std::error::Error;
use std::io::Read;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Url};
use serde_json::{Map, Value};

use super::params::{int_param, req_str, str_param, string_map};
use super::{frame, millis, show, timeout_param, Call, Fail, Report};
use crate::Outcome;

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Bytes of the body kept for `body` and `regex` (the rest is counted).
const BODY_KEPT: usize = 16 << 20;
/// Redirects followed at most.
const MAX_REDIRECTS: usize = 5;

/// The process's HTTP client (connection pool, TLS roots loaded once);
/// timeouts are set per request.
pub(crate) fn client() -> Result<&'static Client, String> {
    static CLIENT: OnceLock<Result<Client, String>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            Client::builder()
                .redirect(reqwest::redirect::Policy::limited(MAX_REDIRECTS))
                .user_agent(concat!("systemd-sparrow/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| format!("cannot make the HTTP client: {}", chain(&e)))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// An error with its causes (`error sending request: connection refused`);
/// the daemon's alert webhook reports its errors the same way.
pub fn chain(e: &dyn Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = c.source();
    }
    s
}

/// Runs `f` on a thread of its own: reqwest's blocking client refuses to
/// run on a thread driving an async runtime, and built-ins may be called
/// from one.
pub(crate) fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> Result<T, String> {
    std::thread::scope(|s| s.spawn(f).join()).map_err(|_| "the HTTP client panicked".to_owned())
}

pub(crate) fn run(call: &Call) -> Outcome {
    frame("http-check", call, check)
}

/// What came back.
struct Answer {
    status: u16,
    headers: HeaderMap,
    /// The first [`BODY_KEPT`] bytes.
    body: Vec<u8>,
    body_bytes: u64,
}

fn check(call: &Call, p: &Map<String, Value>, r: &mut Report) -> Result<(), Fail> {
    let url_text = req_str(p, "url")?;
    let url = Url::parse(url_text)
        .map_err(|e| format!("parameter `url` is not a URL ({e}): {url_text}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("parameter `url` must be http:// or https://, got {url_text}").into());
    }
    let method = match str_param(p, "method")?
        .map(str::to_ascii_uppercase)
        .as_deref()
    {
        None | Some("GET") => Method::GET,
        Some("HEAD") => Method::HEAD,
        Some("POST") => Method::POST,
        Some(m) => {
            return Err(format!("parameter `method` must be GET, HEAD or POST, got {m}").into())
        }
    };
    let want_status = match int_param(p, "status")? {
        Some(s) if (100..=599).contains(&s) => Some(s as u16),
        Some(s) => {
            return Err(
                format!("parameter `status` must be an HTTP status (100-599), got {s}").into(),
            )
        }
        None => None,
    };
    let want_body = str_param(p, "body")?;
    let want_regex = match str_param(p, "regex")? {
        Some(re) => Some(
            regex::Regex::new(re)
                .map_err(|e| format!("parameter `regex` is not a valid regex: {e}"))?,
        ),
        None => None,
    };
    let mut send = HeaderMap::new();
    for (k, v) in string_map(p, "headers")? {
        let name = HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| format!("parameter `headers`: `{k}` is not a header name"))?;
        let value = HeaderValue::from_str(&v).map_err(|_| {
            format!("parameter `headers`: the value of `{k}` is not a header value")
        })?;
        send.append(name, value);
    }
    let expect_headers = string_map(p, "expect_headers")?;
    let (timeout, by_deadline) = timeout_param(p, DEFAULT_TIMEOUT, call.deadline)?;

    r.set("ok", false);
    let what = format!("{method} {url}");
    let start = Instant::now();
    let got = off_runtime(|| fetch(method.clone(), url.clone(), send, timeout))?;
    let elapsed = start.elapsed();
    r.set("latency_ms", millis(elapsed));
    let a = match got {
        Ok(a) => a,
        Err(e) if e.timeout => {
            r.line(format!("{what} -> no answer within {}", show(timeout)));
            let msg = format!("{what}: no answer within {}", show(timeout));
            return Err(if by_deadline {
                Fail::TimedOut(msg)
            } else {
                Fail::Failed(msg)
            });
        }
        Err(e) => {
            r.line(format!("{what} -> error"));
            return Err(Fail::Failed(format!("{what}: {}", e.text)));
        }
    };
    r.set("status", a.status);
    r.set("body_bytes", a.body_bytes);
    r.line(format!(
        "{what} -> {} in {} ms ({} bytes)",
        a.status,
        millis(elapsed),
        a.body_bytes
    ));

    let mut wrong = Vec::new();
    match want_status {
        Some(s) if s != a.status => wrong.push(format!("status {}, expected {s}", a.status)),
        None if !(200..300).contains(&a.status) => {
            wrong.push(format!("status {}, expected a 2xx status", a.status))
        }
        _ => {}
    }
    for (name, part) in &expect_headers {
        let values: Vec<String> = a
            .headers
            .get_all(name.as_str())
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect();
        if values.is_empty() {
            wrong.push(format!("no response header `{name}`"));
        } else if !values.iter().any(|v| v.contains(part.as_str())) {
            wrong.push(format!(
                "response header `{name}` is {:?}, expected it to contain {part:?}",
                values.join(", ")
            ));
        }
    }
    let body = String::from_utf8_lossy(&a.body);
    if let Some(want) = want_body {
        if !body.contains(want) {
            wrong.push(format!(
                "the body does not contain {want:?} (it starts {:?})",
                start_of(&body)
            ));
        }
    }
    if let Some(re) = &want_regex {
        if !re.is_match(&body) {
            wrong.push(format!(
                "the body does not match /{}/ (it starts {:?})",
                re.as_str(),
                start_of(&body)
            ));
        }
    }
    if wrong.is_empty() {
        r.set("ok", true);
        Ok(())
    } else {
        Err(Fail::Failed(format!("{what}: {}", wrong.join("; "))))
    }
}

fn start_of(body: &str) -> String {
    body.chars().take(80).collect()
}

/// Why no answer came.
struct NoAnswer {
    /// Time ran out.
    timeout: bool,
    /// The error and its causes.
    text: String,
}

impl From<reqwest::Error> for NoAnswer {
    fn from(e: reqwest::Error) -> NoAnswer {
        NoAnswer {
            timeout: e.is_timeout(),
            // The URL is in the message already.
            text: chain(&e.without_url()),
        }
    }
}

fn fetch(
    method: Method,
    url: Url,
    headers: HeaderMap,
    timeout: Duration,
) -> Result<Answer, NoAnswer> {
    let client = client().map_err(|text| NoAnswer {
        timeout: false,
        text,
    })?;
    let mut resp = client
        .request(method, url)
        .headers(headers)
        .timeout(timeout)
        .send()?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let mut body = Vec::new();
    let mut body_bytes = 0u64;
    let mut chunk = [0u8; 16384];
    loop {
        match resp.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                body_bytes += n as u64;
                let room = BODY_KEPT.saturating_sub(body.len()).min(n);
                body.extend_from_slice(&chunk[..room]);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                // A body read error wraps reqwest's (a timeout, say).
                let timeout = e.kind() == std::io::ErrorKind::TimedOut
                    || e.get_ref()
                        .and_then(|i| i.downcast_ref::<reqwest::Error>())
                        .is_some_and(reqwest::Error::is_timeout);
                return Err(NoAnswer {
                    timeout,
                    text: format!("reading the body: {}", chain(&e)),
                });
            }
        }
    }
    Ok(Answer {
        status,
        headers,
        body,
        body_bytes,
    })
}
