use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;

fn alert() -> Alert {
    Alert {
        unit: "web.service".into(),
        check: "http-ok".into(),
        severity: Severity::Critical,
        message: "GET / answered 503 three times".into(),
        wall_ms: 1_700_000_000_123,
        failures: 3,
    }
}

/// What the test receiver does with a request.
#[derive(Clone, Copy)]
enum Answer {
    Status(u16),
    /// Answers 200 after a while.
    Late(Duration),
    /// Keeps the connection open and says nothing.
    Silent,
}

/// A request the receiver got: head (lowercased), body, when.
struct Got {
    head: String,
    body: Vec<u8>,
    at: Instant,
}

/// A minimal HTTP/1.1 webhook receiver on 127.0.0.1. The nth connection
/// gets `answers[n]` (the last one repeats).
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Got>>>,
}

impl Receiver {
    async fn start(answers: Vec<Answer>) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let got = Arc::new(Mutex::new(Vec::new()));
        let log = got.clone();
        tokio::spawn(async move {
            for n in 0.. {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let answer = answers[n.min(answers.len() - 1)];
                tokio::spawn(serve(stream, answer, log.clone()));
            }
        });
        Receiver { url, got }
    }

    fn count(&self) -> usize {
        self.got.lock().unwrap().len()
    }
}

async fn serve(mut stream: TcpStream, answer: Answer, log: Arc<Mutex<Vec<Got>>>) {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    // The head, then as much body as Content-Length says.
    let (head, body) = loop {
        let Ok(n) = stream.read(&mut buf).await else {
            return;
        };
        if n == 0 {
            return;
        }
        data.extend_from_slice(&buf[..n]);
        let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map_or(0, |v| v.trim().parse().unwrap());
        if data.len() >= end + 4 + len {
            break (head, data[end + 4..end + 4 + len].to_vec());
        }
    };
    log.lock().unwrap().push(Got {
        head,
        body,
        at: Instant::now(),
    });
    let code = match answer {
        Answer::Status(code) => code,
        Answer::Late(d) => {
            tokio::time::sleep(d).await;
            200
        }
        Answer::Silent => {
            // Until the client gives up.
            while let Ok(n) = stream.read(&mut buf).await {
                if n == 0 {
                    break;
                }
            }
            return;
        }
    };
    let reply = format!("HTTP/1.1 {code} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    let _ = stream.write_all(reply.as_bytes()).await;
}

fn hook(url: &str, timeout_ms: u64, retries: u32, backoff_ms: u64) -> AlertConfig {
    AlertConfig {
        webhook: Some(WebhookConfig {
            url: url.into(),
            timeout: Duration::from_millis(timeout_ms),
            retries,
            backoff: Duration::from_millis(backoff_ms),
            headers: BTreeMap::from([("X-Token".to_string(), "abc".to_string())]),
        }),
        command: None,
    }
}

fn command(script: &str, args: &[&str], timeout_ms: u64) -> AlertConfig {
    let mut argv = vec!["/bin/sh".to_string(), "-c".into(), script.into()];
    argv.extend(args.iter().map(|a| a.to_string()));
    AlertConfig {
        webhook: None,
        command: Some(CommandConfig {
            argv,
            timeout: Duration::from_millis(timeout_ms),
        }),
    }
}

async fn deliver(cfg: AlertConfig) -> Vec<Delivery> {
    Deliverer::new(cfg).unwrap().deliver(&alert()).await
}

/// The one delivery's result.
async fn only(cfg: AlertConfig) -> Result<u32, String> {
    let mut d = deliver(cfg).await;
    assert_eq!(d.len(), 1, "{d:?}");
    d.remove(0).result
}

#[tokio::test]
async fn the_webhook_gets_the_alert_as_json() {
    let r = Receiver::start(vec![Answer::Status(200)]).await;
    let d = deliver(hook(&r.url, 2000, 3, 50)).await;
    assert_eq!(
        d,
        [Delivery {
            channel: "webhook",
            result: Ok(1)
        }]
    );
    let got = r.got.lock().unwrap();
    assert_eq!(got.len(), 1);
    assert!(
        got[0].head.starts_with("post /hook http/1.1"),
        "{}",
        got[0].head
    );
    assert!(got[0].head.contains("content-type: application/json"));
    assert!(got[0].head.contains("x-token: abc"));
    let json: serde_json::Value = serde_json::from_slice(&got[0].body).unwrap();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "unit": "web.service",
            "check": "http-ok",
            "severity": "critical",
            "message": "GET / answered 503 three times",
            "wall_ms": 1_700_000_000_123u64,
            "failures": 3,
            "host": host.trim(),
            "source": "systemd-sparrowd",
        })
    );
    // Read back as an Alert (host and source are extra fields).
    let back: Alert = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(back, alert());
}

#[tokio::test]
async fn server_errors_are_retried_with_doubling_waits() {
    let r = Receiver::start(vec![
        Answer::Status(500),
        Answer::Status(429),
        Answer::Status(200),
    ])
    .await;
    let start = Instant::now();
    assert_eq!(only(hook(&r.url, 2000, 3, 50)).await, Ok(3));
    let got = r.got.lock().unwrap();
    assert_eq!(got.len(), 3);
    let first = got[1].at - got[0].at;
    let second = got[2].at - got[1].at;
    assert!(first >= Duration::from_millis(50), "{first:?}");
    assert!(second >= Duration::from_millis(100), "{second:?}");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn a_silent_receiver_is_cut_at_the_timeout() {
    let r = Receiver::start(vec![Answer::Silent]).await;
    let start = Instant::now();
    let e = only(hook(&r.url, 200, 2, 20)).await.unwrap_err();
    let took = start.elapsed();
    assert!(e.contains("after 3 attempts"), "{e}");
    assert!(e.contains("no answer within 200ms"), "{e}");
    assert_eq!(r.count(), 3);
    // Three timeouts and waits of 20 and 40 ms.
    assert!(took >= Duration::from_millis(660), "{took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
}

#[tokio::test]
async fn a_client_error_is_not_retried() {
    let r = Receiver::start(vec![Answer::Status(404), Answer::Status(200)]).await;
    let e = only(hook(&r.url, 2000, 3, 10)).await.unwrap_err();
    assert!(e.contains("answered 404 Not Found"), "{e}");
    // The path (often the webhook's secret) stays out of messages.
    assert!(!e.contains("/hook"), "{e}");
    assert!(e.contains("attempt 1; not retried"), "{e}");
    assert_eq!(r.count(), 1);
}

#[tokio::test]
async fn a_refused_connection_is_retried() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/secret", listener.local_addr().unwrap());
    drop(listener);
    let e = only(hook(&url, 1000, 1, 10)).await.unwrap_err();
    assert!(e.contains("after 2 attempts"), "{e}");
    assert!(e.to_lowercase().contains("refused"), "{e}");
    assert!(!e.contains("/secret"), "{e}");
}

#[tokio::test]
async fn the_command_gets_json_on_stdin_and_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let script = r#"cat > "$1.json"; env | grep '^SPARROW_ALERT_' | sort > "$1.env""#;
    let r = only(command(script, &["sh", out.to_str().unwrap()], 5000)).await;
    assert_eq!(r, Ok(1));
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.with_extension("json")).unwrap()).unwrap();
    assert_eq!(json["unit"], "web.service");
    assert_eq!(json["severity"], "critical");
    assert_eq!(json["source"], "systemd-sparrowd");
    assert!(json["host"].is_string());
    assert_eq!(
        std::fs::read_to_string(out.with_extension("env")).unwrap(),
        "SPARROW_ALERT_CHECK=http-ok\n\
         SPARROW_ALERT_MESSAGE=GET / answered 503 three times\n\
         SPARROW_ALERT_SEVERITY=critical\n\
         SPARROW_ALERT_UNIT=web.service\n"
    );
}

#[tokio::test]
async fn a_failing_command_reports_its_status_and_stderr() {
    let e = only(command(
        "echo starting; echo 'no pager reachable' >&2; exit 3",
        &[],
        5000,
    ))
    .await
    .unwrap_err();
    assert_eq!(
        e,
        "command /bin/sh: exited with status 3; stderr: no pager reachable"
    );
    let e = only(command("kill -9 $$", &[], 5000)).await.unwrap_err();
    assert!(e.contains("killed by signal 9"), "{e}");
    let e = only(command("exec /nonexistent/pager", &[], 5000))
        .await
        .unwrap_err();
    assert!(
        e.contains("status 127") && e.contains("/nonexistent/pager"),
        "{e}"
    );
}

#[tokio::test]
async fn only_the_end_of_stderr_is_kept() {
    let script = "i=0; while [ $i -lt 500 ]; do echo line $i >&2; i=$((i+1)); done; exit 1";
    let e = only(command(script, &[], 5000)).await.unwrap_err();
    assert!(e.ends_with("line 499"), "{e}");
    assert!(e.contains("stderr: ..."), "{e}");
    assert!(!e.contains("line 1\n"), "{e}");
    assert!(e.len() < STDERR_KEPT + 100, "{}", e.len());
}

/// Whether `pid` is gone (or a zombie waiting for init).
fn gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z'),
    }
}

async fn wait_gone(pid: i32) -> bool {
    for _ in 0..100 {
        if gone(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test]
async fn a_command_over_its_time_is_killed_with_its_children() {
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    // A grandchild `sleep` (background) and the shell waiting on it.
    let script = r#"sleep 60 & echo $! > "$1"; echo waiting >&2; wait"#;
    let start = Instant::now();
    let e = only(command(script, &["sh", pids.to_str().unwrap()], 200))
        .await
        .unwrap_err();
    let took = start.elapsed();
    assert_eq!(
        e,
        "command /bin/sh: killed after the timeout of 200ms; stderr: waiting"
    );
    assert!(took >= Duration::from_millis(200), "{took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    let grandchild: i32 = std::fs::read_to_string(&pids)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(wait_gone(grandchild).await, "sleep {grandchild} survived");
}

#[tokio::test]
async fn a_child_left_holding_stderr_does_not_hold_the_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    let script = r#"sleep 30 & echo $! > "$1"; exit 0"#;
    let start = Instant::now();
    let r = only(command(script, &["sh", pids.to_str().unwrap()], 5000)).await;
    assert_eq!(r, Ok(1));
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    // Left alone (the command exited), so the test ends it.
    let pid: i32 = std::fs::read_to_string(&pids)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // SAFETY: signals a process this test started.
    unsafe { libc::kill(pid, libc::SIGKILL) };
}

#[tokio::test]
async fn webhook_and_command_run_at_once() {
    let r = Receiver::start(vec![Answer::Late(Duration::from_millis(500))]).await;
    let mut cfg = hook(&r.url, 3000, 0, 10);
    cfg.command = command("sleep 0.5", &[], 3000).command;
    let start = Instant::now();
    let d = deliver(cfg).await;
    let took = start.elapsed();
    assert_eq!(
        d,
        [
            Delivery {
                channel: "webhook",
                result: Ok(1)
            },
            Delivery {
                channel: "command",
                result: Ok(1)
            }
        ]
    );
    assert!(took < Duration::from_millis(900), "{took:?}");
}

#[tokio::test]
async fn nothing_configured_delivers_nothing() {
    let d = Deliverer::new(AlertConfig::default()).unwrap();
    assert!(d.is_empty());
    assert_eq!(d.deliver(&alert()).await, []);
}

#[test]
fn bad_configurations_built_in_code_are_refused() {
    let e = Deliverer::new(hook("ftp://x/", 1000, 0, 10)).unwrap_err();
    assert!(e.contains("http or https"), "{e}");
    let mut cfg = command("true", &[], 1000);
    cfg.command.as_mut().unwrap().argv[0] = "sh".into();
    assert!(Deliverer::new(cfg).unwrap_err().contains("absolute path"));
    let mut cfg = command("true", &[], 1000);
    cfg.command.as_mut().unwrap().argv.clear();
    assert!(Deliverer::new(cfg).unwrap_err().contains("empty"));
}

#[test]
fn severities_read_and_print() {
    for (s, v) in [
        ("info", Severity::Info),
        ("warning", Severity::Warning),
        ("warn", Severity::Warning),
        ("WARN", Severity::Warning),
        ("critical", Severity::Critical),
    ] {
        assert_eq!(s.parse::<Severity>(), Ok(v));
    }
    assert!("fatal"
        .parse::<Severity>()
        .unwrap_err()
        .contains("\"fatal\""));
    assert_eq!(Severity::Warning.to_string(), "warning");
    assert_eq!(serde_json::to_string(&Severity::Info).unwrap(), "\"info\"");
    let a = alert();
    let back: Alert = serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
    assert_eq!(back, a);
}

#[test]
fn environment_values_are_made_passable() {
    assert_eq!(env_value("a\0b"), "ab");
    let long = "é".repeat(ENV_VALUE_MAX);
    let v = env_value(&long);
    assert!(v.len() <= ENV_VALUE_MAX && v.len() > ENV_VALUE_MAX - 2);
    assert!(Path::new("/proc/sys/kernel/hostname").exists());
    assert!(!hostname().is_empty());
}

#[tokio::test]
async fn an_abandoned_delivery_kills_its_command() {
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    let script = r#"sleep 60 & echo $! > "$1"; wait"#;
    let d = Deliverer::new(command(script, &["sh", pids.to_str().unwrap()], 60_000)).unwrap();
    let a = alert();
    let cut = tokio::time::timeout(Duration::from_millis(300), d.deliver(&a)).await;
    assert!(cut.is_err(), "{cut:?}");
    let grandchild: i32 = std::fs::read_to_string(&pids)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(wait_gone(grandchild).await, "sleep {grandchild} survived");
}
