//! Health probes: HTTP, TCP and exec, each cut at its timeout. They are
//! tasks on the daemon's runtime, so a thousand slow endpoints are a
//! thousand pending sockets, not a thousand blocked threads: the others go
//! on. In-flight network probes and exec probes are each bounded by a
//! semaphore (`[health]` in daemon.toml); a probe's timeout counts from
//! when it was asked for, so waiting for a permit cannot hide a hang.
//!
//! HTTP probes speak HTTP/1.1 over a fresh connection with hyper's
//! connection API (no pool, `Connection: close`): what monit and
//! Kubernetes do, and what shows that the service accepts connections.
//! `https://` goes through reqwest (rustls).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use crate::config::HealthConfig;
use crate::spec::ProbeSpec;

/// At most this much of a body is read for a body check.
pub const MAX_BODY: usize = 64 * 1024;
/// Failure messages quote at most this much of what was received.
const QUOTE: usize = 120;

/// Raises the soft limit on open descriptors to the hard one (systemd
/// gives services 1024 soft, 512K hard): every in-flight probe is a socket.
pub fn raise_nofile() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid struct we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// Runs probes.
pub struct Prober {
    net: Arc<Semaphore>,
    exec: Arc<Semaphore>,
    regexes: Mutex<HashMap<String, Result<regex::Regex, String>>>,
    targets: Mutex<HashMap<String, Result<Arc<Target>, String>>>,
    tls: Mutex<Option<reqwest::Client>>,
}

/// An HTTP URL taken apart once: a unit's probes reuse it (at a thousand
/// probes a second, parsing and formatting per probe showed in profiles).
struct Target {
    /// The host without IPv6 brackets, and its address when it is one.
    host: String,
    port: u16,
    addr: Option<std::net::SocketAddr>,
    /// `host[:port]` as the URL gives it (the `Host:` header).
    authority: String,
    /// `path[?query]`.
    path: String,
    /// The request when the definition adds no headers.
    plain: Vec<u8>,
    /// Set for `https://`, which reqwest speaks.
    tls: Option<reqwest::Url>,
}

impl Target {
    fn parse(url: &str) -> Result<Target, String> {
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("{url}: {e}"))?;
        let host = parsed.host_str().ok_or_else(|| format!("{url}: no host"))?;
        let port = parsed.port_or_known_default().unwrap_or(80);
        let path = match parsed.query() {
            Some(q) => format!("{}?{q}", parsed.path()),
            None => parsed.path().to_string(),
        };
        let authority = match parsed.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_string(),
        };
        let bare = host.trim_matches(['[', ']']).to_string();
        Ok(Target {
            addr: bare
                .parse::<std::net::IpAddr>()
                .ok()
                .map(|ip| (ip, port).into()),
            plain: request(&path, Some(&authority), &[]),
            host: host.to_string(),
            port,
            authority,
            path,
            tls: (parsed.scheme() == "https").then_some(parsed.clone()),
        })
    }

    /// A fresh connection to the target (a name is resolved each time).
    async fn connect(&self) -> Result<TcpStream, String> {
        let connected = match self.addr {
            Some(a) => TcpStream::connect(a).await,
            None => TcpStream::connect((self.host.as_str(), self.port)).await,
        };
        connected.map_err(|e| format!("cannot connect to {}:{}: {e}", self.host, self.port))
    }
}

impl Prober {
    /// A prober with `cfg`'s bounds.
    pub fn new(cfg: &HealthConfig) -> Prober {
        Prober {
            net: Arc::new(Semaphore::new(cfg.max_concurrent_probes)),
            exec: Arc::new(Semaphore::new(cfg.max_concurrent_exec)),
            regexes: Mutex::default(),
            targets: Mutex::default(),
            tls: Mutex::default(),
        }
    }

    /// Runs `probe` within `timeout` (from now, permit wait included);
    /// returns how long it took and whether it passed. `Closure` probes
    /// are not run here (the evaluators run them).
    pub async fn probe(&self, probe: &ProbeSpec, timeout: Duration) -> (u64, Result<(), String>) {
        let start = Instant::now();
        let sem = match probe {
            ProbeSpec::Exec(_) => &self.exec,
            _ => &self.net,
        };
        let work = async {
            let _permit = sem
                .acquire()
                .await
                .map_err(|_| "the daemon is stopping".to_string())?;
            match probe {
                ProbeSpec::Http {
                    url,
                    status,
                    body,
                    body_regex,
                    headers,
                } => {
                    let want = Want {
                        status: *status,
                        body: body.as_deref(),
                        regex: match body_regex {
                            Some(r) => Some(self.regex(r)?),
                            None => None,
                        },
                    };
                    self.http(url, headers, &want).await
                }
                ProbeSpec::Tcp { host, port } => TcpStream::connect((host.as_str(), *port))
                    .await
                    .map(|s| {
                        // Accepted is all a tcp probe asks: reset, no TIME_WAIT.
                        let _ = s.set_zero_linger();
                    })
                    .map_err(|e| format!("cannot connect to {host}:{port}: {e}")),
                // Rare and large: boxed, so the common probe's future
                // (moved into its task) stays small.
                ProbeSpec::Exec(argv) => Box::pin(exec(argv)).await,
                ProbeSpec::Closure => Err("a check closure runs in the evaluators".into()),
            }
        };
        let result = match tokio::time::timeout(timeout, work).await {
            Ok(r) => r,
            Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
        };
        (start.elapsed().as_millis() as u64, result)
    }

    fn target(&self, url: &str) -> Result<Arc<Target>, String> {
        let mut cache = self.targets.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(t) = cache.get(url) {
            return t.clone();
        }
        if cache.len() > 4096 {
            cache.clear();
        }
        let t = Target::parse(url).map(Arc::new);
        cache.insert(url.to_string(), t.clone());
        t
    }

    fn regex(&self, pattern: &str) -> Result<regex::Regex, String> {
        let mut cache = self.regexes.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() > 4096 {
            cache.clear();
        }
        cache
            .entry(pattern.to_string())
            .or_insert_with(|| {
                regex::RegexBuilder::new(pattern)
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|e| format!("body_regex {pattern:?}: {e}"))
            })
            .clone()
    }

    async fn http(
        &self,
        url: &str,
        headers: &[(String, String)],
        want: &Want<'_>,
    ) -> Result<(), String> {
        let target = self.target(url)?;
        if let Some(tls) = &target.tls {
            return Box::pin(self.https(tls.clone(), headers, want)).await;
        }
        let stream = target.connect().await?;
        // Closed with a reset once the answer is in (as HAProxy's checks
        // are): no FIN exchange and no TIME_WAIT entry per probe, which at
        // a thousand probes a second is most of the kernel's work. (No
        // TCP_NODELAY: the request is one write, which Nagle never holds.)
        let _ = stream.set_zero_linger();
        // The URL's `Host:`, unless the definition's replaces it (virtual hosts).
        let own_host = headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host"));
        let authority = (!own_host).then_some(target.authority.as_str());
        if want.body.is_none() && want.regex.is_none() {
            // The common probe, status only: one write, one read of the
            // head, parsed with httparse.
            let code = if headers.is_empty() {
                status_only(stream, &target.plain).await?
            } else {
                status_only(stream, &request(&target.path, authority, headers)).await?
            };
            return want.judge(code, None);
        }
        // Rare and large: boxed, so the common probe's future stays small.
        Box::pin(with_body(stream, &target.path, authority, headers, want)).await
    }

    async fn https(
        &self,
        url: reqwest::Url,
        headers: &[(String, String)],
        want: &Want<'_>,
    ) -> Result<(), String> {
        let client = {
            let mut c = self.tls.lock().unwrap_or_else(|p| p.into_inner());
            match &*c {
                Some(c) => c.clone(),
                None => {
                    // As the http probe: no pool, no redirects, no proxy
                    // from the environment.
                    let built = reqwest::Client::builder()
                        .pool_max_idle_per_host(0)
                        .redirect(reqwest::redirect::Policy::none())
                        .no_proxy()
                        .user_agent("systemd-sparrowd")
                        .build()
                        .map_err(|e| format!("HTTPS client: {e}"))?;
                    *c = Some(built.clone());
                    built
                }
            }
        };
        let mut req = client.get(url);
        for (k, v) in headers {
            req = req.header(k.as_str(), v.as_str());
        }
        // Without the URL: its path or query may hold a secret, and this
        // message goes to the journal, status and alerts.
        let res = req
            .send()
            .await
            .map_err(|e| format!("HTTPS: {}", e.without_url()))?;
        let code = res.status().as_u16();
        let body = if want.body.is_some() || want.regex.is_some() {
            let mut got = Vec::new();
            let mut res = res;
            while let Some(chunk) = res
                .chunk()
                .await
                .map_err(|e| format!("HTTPS body: {}", e.without_url()))?
            {
                got.extend_from_slice(&chunk);
                if got.len() >= MAX_BODY {
                    got.truncate(MAX_BODY);
                    break;
                }
            }
            Some(Bytes::from(got))
        } else {
            None
        };
        want.judge(code, body.as_deref())
    }
}

/// An HTTP exchange whose body is judged, with hyper's client connection.
async fn with_body(
    stream: TcpStream,
    path: &str,
    authority: Option<&str>,
    headers: &[(String, String)],
    want: &Want<'_>,
) -> Result<(), String> {
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| format!("HTTP: {e}"))?;
    let mut req = hyper::Request::get(path)
        .header(hyper::header::USER_AGENT, "systemd-sparrowd")
        .header(hyper::header::CONNECTION, "close");
    if let Some(a) = authority {
        req = req.header(hyper::header::HOST, a);
    }
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let req = req
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("HTTP request: {e}"))?;
    let exchange = async {
        let res = sender
            .send_request(req)
            .await
            .map_err(|e| format!("HTTP: {e}"))?;
        let code = res.status().as_u16();
        let body = if want.body.is_some() || want.regex.is_some() {
            // The first MAX_BODY bytes are judged; the rest is not read.
            let mut body = res.into_body();
            let mut got = Vec::new();
            while got.len() < MAX_BODY {
                match body.frame().await {
                    None => break,
                    Some(Ok(f)) => {
                        if let Ok(data) = f.into_data() {
                            got.extend_from_slice(&data);
                        }
                    }
                    Some(Err(e)) => return Err(format!("HTTP {code}: reading the body: {e}")),
                }
            }
            got.truncate(MAX_BODY);
            Some(Bytes::from(got))
        } else {
            None
        };
        Ok((code, body))
    };
    tokio::pin!(conn, exchange);
    // The connection future does the I/O of the exchange: poll both.
    let (code, body) = tokio::select! {
        r = &mut exchange => r?,
        c = &mut conn => {
            c.map_err(|e| format!("HTTP: {e}"))?;
            exchange.await?
        }
    };
    want.judge(code, body.as_deref())
}

/// A GET request's bytes. Header lines were checked when the definition was
/// (an HTTP token, a value without control characters), and a URL's path
/// and query are percent-encoded: nothing here can add a line.
fn request(path: &str, authority: Option<&str>, headers: &[(String, String)]) -> Vec<u8> {
    use std::fmt::Write;
    let mut r = String::with_capacity(128 + path.len());
    let _ = write!(r, "GET {path} HTTP/1.1\r\n");
    if let Some(a) = authority {
        let _ = write!(r, "Host: {a}\r\n");
    }
    r.push_str("User-Agent: systemd-sparrowd\r\nConnection: close\r\n");
    for (k, v) in headers {
        let _ = write!(r, "{k}: {v}\r\n");
    }
    r.push_str("\r\n");
    r.into_bytes()
}

/// The head of an answer may be this long.
const MAX_HEAD: usize = 16 * 1024;

/// Sends `req` and reads the answer's head: its status code, once the head
/// is complete and well formed.
async fn status_only(mut stream: TcpStream, req: &[u8]) -> Result<u16, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream
        .write_all(req)
        .await
        .map_err(|e| format!("HTTP: sending the request: {e}"))?;
    let mut buf = Vec::with_capacity(1024);
    loop {
        if buf.len() == buf.capacity() {
            if buf.len() >= MAX_HEAD {
                return Err(format!(
                    "HTTP: the answer's head is longer than {MAX_HEAD} bytes"
                ));
            }
            buf.reserve(buf.len());
        }
        let n = stream
            .read_buf(&mut buf)
            .await
            .map_err(|e| format!("HTTP: {e}"))?;
        if n == 0 {
            return Err(if buf.is_empty() {
                "HTTP: the connection was closed without an answer".into()
            } else {
                "HTTP: the connection was closed in the middle of the answer's head".into()
            });
        }
        let mut headers = [httparse::EMPTY_HEADER; 100];
        let mut res = httparse::Response::new(&mut headers);
        match res.parse(&buf) {
            Ok(httparse::Status::Complete(_)) => {
                return res.code.ok_or_else(|| "HTTP: no status code".to_string())
            }
            Ok(httparse::Status::Partial) => {}
            Err(e) => return Err(format!("HTTP: not an HTTP answer ({e})")),
        }
    }
}

/// What an HTTP answer must be.
struct Want<'a> {
    status: Option<u16>,
    body: Option<&'a str>,
    regex: Option<regex::Regex>,
}

impl Want<'_> {
    /// Kubernetes' rule when no status is given: 200 to 399 passes.
    fn judge(&self, code: u16, body: Option<&[u8]>) -> Result<(), String> {
        match self.status {
            Some(s) if s != code => return Err(format!("HTTP {code} (wanted {s})")),
            None if !(200..400).contains(&code) => return Err(format!("HTTP {code}")),
            _ => {}
        }
        let text = String::from_utf8_lossy(body.unwrap_or_default());
        let quote = || -> String { text.chars().take(QUOTE).collect() };
        if let Some(b) = self.body {
            if !text.contains(b) {
                return Err(format!(
                    "HTTP {code}: the body does not contain {b:?} (got {:?})",
                    quote()
                ));
            }
        }
        if let Some(r) = &self.regex {
            if !r.is_match(&text) {
                return Err(format!(
                    "HTTP {code}: the body does not match /{}/ (got {:?})",
                    r.as_str(),
                    quote()
                ));
            }
        }
        Ok(())
    }
}

/// An exec probe: exit 0 passes. Its own process group, killed whole when
/// the probe is cut (the future is dropped at the timeout) or when
/// something it left behind still holds its stderr after it exited.
async fn exec(argv: &[String]) -> Result<(), String> {
    use tokio::io::AsyncReadExt;
    if !argv[0].starts_with('/') {
        return Err(format!("{:?} is not an absolute path", argv[0]));
    }
    let mut cmd = tokio::process::Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", argv[0]))?;
    let mut guard = Group(child.id().map(|p| p as i32));
    let mut stderr = child.stderr.take();
    // The tail of stderr only: a command may print without end.
    let tail = Arc::new(Mutex::new(Vec::<u8>::new()));
    let keep = tail.clone();
    let reader = tokio::spawn(async move {
        let Some(err) = stderr.as_mut() else { return };
        let mut buf = [0u8; 4096];
        while let Ok(n) = err.read(&mut buf).await {
            if n == 0 {
                break;
            }
            let mut t = keep.lock().unwrap_or_else(|p| p.into_inner());
            t.extend_from_slice(&buf[..n]);
            if t.len() > 2 * STDERR_TAIL {
                let cut = t.len() - STDERR_TAIL;
                t.drain(..cut);
            }
        }
    });
    let status = child
        .wait()
        .await
        .map_err(|e| format!("{}: {e}", argv[0]))?;
    // A moment for the rest of stderr; a process it left behind that holds
    // stderr open (still in its group) is killed with the group.
    if tokio::time::timeout(Duration::from_millis(100), reader)
        .await
        .is_ok()
    {
        guard.0 = None;
    }
    drop(guard);
    if status.success() {
        return Ok(());
    }
    let err = {
        let t = tail.lock().unwrap_or_else(|p| p.into_inner());
        String::from_utf8_lossy(&t).into_owned()
    };
    let tail: String = err
        .trim_end()
        .chars()
        .rev()
        .take(QUOTE)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let how = match status.code() {
        Some(c) => format!("exited with status {c}"),
        None => "was killed by a signal".to_string(),
    };
    Err(if tail.is_empty() {
        format!("{} {how}", argv[0])
    } else {
        format!("{} {how}: {tail}", argv[0])
    })
}

/// Kills a probe's process group when dropped, unless cleared.
struct Group(Option<i32>);

impl Drop for Group {
    fn drop(&mut self) {
        if let Some(g) = self.0 {
            // SAFETY: kill(2) on a process group we created; no memory is touched.
            unsafe {
                libc::kill(-g, libc::SIGKILL);
            }
        }
    }
}

/// Bytes of an exec probe's stderr kept for its failure message.
const STDERR_TAIL: usize = 2048;

#[cfg(test)]
mod tests;
