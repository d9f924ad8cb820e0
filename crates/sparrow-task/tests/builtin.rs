//! The built-in plugins against real things: loopback servers started
//! here, closed ports, `/` and `/proc`, `lo`, temporary files, processes.
//!
//! Longer than 600 lines because every built-in's passing and failing
//! cases share the loopback servers and helpers at the top.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sparrow_task::builtin::{self, flags, notification, Call};
use sparrow_task::{Outcome, Status};

fn run(name: &str, params: Value) -> Outcome {
    run_until(name, params, None)
}

fn run_until(name: &str, params: Value, deadline: Option<Duration>) -> Outcome {
    let b = builtin::find(name).unwrap_or_else(|| panic!("no built-in {name}"));
    (b.run)(&Call {
        desc: "test desc",
        params: &params,
        deadline: deadline.map(|d| Instant::now() + d),
    })
}

fn stderr(o: &Outcome) -> String {
    o.stderr.join("\n")
}

/// Asserts a failure whose message contains each of `parts`.
fn assert_fails(o: &Outcome, parts: &[&str]) {
    assert_eq!(o.status, Status::TaskFailed(1), "{o:?}");
    let e = stderr(o);
    for p in parts {
        assert!(e.contains(p), "stderr {e:?} lacks {p:?}");
    }
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// An HTTP request as received: the head and the body.
fn read_request(s: &mut TcpStream) -> String {
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                break;
            }
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

fn response(status: &str, headers: &[(&str, &str)], body: &str) -> String {
    let mut r = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        r.push_str(&format!("{k}: {v}\r\n"));
    }
    r.push_str("\r\n");
    r.push_str(body);
    r
}

/// A loopback HTTP server answering each request with `respond(request)`;
/// the requests it got come out of the receiver.
fn serve(respond: impl Fn(&str) -> String + Send + 'static) -> (String, Receiver<String>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let req = read_request(&mut s);
            let _ = s.write_all(respond(&req).as_bytes());
            let _ = tx.send(req);
        }
    });
    (url, rx)
}

fn canned(status: &'static str, headers: &'static [(&str, &str)], body: &'static str) -> String {
    serve(move |_| response(status, headers, body)).0
}

#[test]
fn http_check_passes_with_body_regex_and_headers() {
    let (url, rx) = serve(|_| {
        response(
            "200 OK",
            &[("X-App", "sparrow-web/1")],
            "hello sparrow v1.25",
        )
    });
    let o = run(
        "http-check",
        json!({"url": format!("{url}/health"), "body": "sparrow", "regex": r"v\d+\.\d+",
               "headers": {"X-Token": "abc"}, "expect_headers": {"x-app": "sparrow-web"}, "timeout": "2s"}),
    );
    assert_eq!(o.status, Status::Passed, "{o:?}");
    assert_eq!(o.state["status"], 200);
    assert_eq!(o.state["ok"], true);
    assert_eq!(o.state["body_bytes"], 19);
    assert!(o.state["latency_ms"].as_f64().unwrap() >= 0.0);
    assert!(o.transcript[0].contains("GET http://") && o.transcript[0].contains("-> 200 in"));
    let req = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(req.starts_with("GET /health HTTP/1.1"), "{req}");
    assert!(req.to_ascii_lowercase().contains("x-token: abc"), "{req}");
}

#[test]
fn http_check_expected_status_and_methods() {
    let (url, rx) = serve(|req| {
        let method = req.split(' ').next().unwrap_or("").to_owned();
        response("404 Not Found", &[("X-Method", "seen")], &method)
    });
    let o = run("http-check", json!({"url": url, "status": 404}));
    assert_eq!(o.status, Status::Passed, "{o:?}");
    assert_eq!(o.state["status"], 404);
    let o = run(
        "http-check",
        json!({"url": url, "method": "post", "status": 404, "body": "POST"}),
    );
    assert_eq!(o.status, Status::Passed, "{o:?}");
    let o = run(
        "http-check",
        json!({"url": url, "method": "HEAD", "status": "404"}),
    );
    assert_eq!(o.status, Status::Passed, "{o:?}");
    assert_eq!(o.state["body_bytes"], 0);
    let methods: Vec<String> = rx
        .try_iter()
        .map(|r| r.split(' ').next().unwrap_or("").to_owned())
        .collect();
    assert_eq!(methods, vec!["GET", "POST", "HEAD"]);
}

#[test]
fn http_check_fails_on_status_body_regex_and_headers() {
    let url = canned("503 Service Unavailable", &[], "down for maintenance");
    let o = run("http-check", json!({"url": url}));
    assert_fails(&o, &["status 503, expected a 2xx status"]);
    assert_eq!(o.state["status"], 503);
    assert_eq!(o.state["ok"], false);

    let url = canned("200 OK", &[("X-App", "other")], "all fine");
    let o = run("http-check", json!({"url": url, "status": 201}));
    assert_fails(&o, &["status 200, expected 201"]);
    let o = run("http-check", json!({"url": url, "body": "sparrow"}));
    assert_fails(&o, &["does not contain \"sparrow\"", "all fine"]);
    assert_eq!(o.state["status"], 200);
    let o = run("http-check", json!({"url": url, "regex": "^fine"}));
    assert_fails(&o, &["does not match /^fine/"]);
    let o = run(
        "http-check",
        json!({"url": url, "expect_headers": {"X-App": "sparrow"}}),
    );
    assert_fails(
        &o,
        &["response header `X-App` is \"other\", expected it to contain \"sparrow\""],
    );
    let o = run(
        "http-check",
        json!({"url": url, "expect_headers": {"X-Missing": "a"}}),
    );
    assert_fails(&o, &["no response header `X-Missing`"]);
}

#[test]
fn http_check_fails_on_a_closed_port() {
    let port = closed_port();
    let o = run(
        "http-check",
        json!({"url": format!("http://127.0.0.1:{port}/")}),
    );
    assert_fails(&o, &[&format!("GET http://127.0.0.1:{port}/")]);
    assert_eq!(o.state["ok"], false);
    assert!(o.state.get("status").is_none());
}

/// A server that accepts and never answers (for a few seconds).
fn silent_server() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", l.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in l.incoming().take(4) {
            held.push(s);
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_secs(10));
    });
    url
}

#[test]
fn http_check_timeout_and_deadline() {
    let url = silent_server();
    let start = Instant::now();
    let o = run("http-check", json!({"url": url, "timeout": "300ms"}));
    assert_fails(&o, &["no answer within 300 ms"]);
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    let start = Instant::now();
    let o = run_until(
        "http-check",
        json!({"url": url, "timeout": 30}),
        Some(Duration::from_millis(300)),
    );
    assert_eq!(o.status, Status::TimedOut, "{o:?}");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn http_check_follows_at_most_five_redirects() {
    let (url, _rx) = serve(|req| {
        let path = req.split(' ').nth(1).unwrap_or("/").to_owned();
        match path
            .strip_prefix("/hop/")
            .and_then(|n| n.parse::<u32>().ok())
        {
            Some(n) if n > 0 => {
                response("302 Found", &[("Location", &format!("/hop/{}", n - 1))], "")
            }
            _ => response("200 OK", &[], "arrived"),
        }
    });
    let o = run(
        "http-check",
        json!({"url": format!("{url}/hop/5"), "body": "arrived"}),
    );
    assert_eq!(o.status, Status::Passed, "{o:?}");
    let o = run("http-check", json!({"url": format!("{url}/hop/6")}));
    assert_fails(&o, &["redirect"]);
}

#[test]
fn http_check_refuses_bad_params() {
    assert_fails(&run("http-check", json!({})), &["`url`", "required"]);
    assert_fails(
        &run("http-check", json!({"url": 5})),
        &["`url`", "a string", "a number"],
    );
    assert_fails(
        &run("http-check", json!({"url": "ftp://x/"})),
        &["http:// or https://"],
    );
    assert_fails(
        &run("http-check", json!({"url": "http://x/", "method": "PUT"})),
        &["`method`", "PUT"],
    );
    assert_fails(
        &run("http-check", json!({"url": "http://x/", "timeout": [1]})),
        &["`timeout`", "a duration"],
    );
    assert_fails(
        &run("http-check", json!({"url": "http://x/", "regex": "("})),
        &["`regex`"],
    );
    assert_fails(
        &run("http-check", json!({"url": "http://x/", "status": 99})),
        &["`status`"],
    );
    assert_fails(
        &run("http-check", json!([1])),
        &["parameters must be a map"],
    );
}

#[test]
fn tcp_check_connects_or_reports_the_refusal() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let o = run("tcp-check", json!({"port": port, "timeout": 2}));
    assert_eq!(o.status, Status::Passed, "{o:?}");
    assert_eq!(o.state["connected"], true);
    assert_eq!(o.state["address"], format!("127.0.0.1:{port}"));
    assert!(o.state["latency_ms"].is_number());
    let port = closed_port();
    let o = run(
        "tcp-check",
        json!({"host": "127.0.0.1", "port": port.to_string()}),
    );
    assert_fails(
        &o,
        &[&format!("cannot connect to 127.0.0.1:{port}"), "refused"],
    );
    assert_eq!(o.state["connected"], false);
    assert_fails(&run("tcp-check", json!({})), &["`port`", "required"]);
    assert_fails(
        &run("tcp-check", json!({"port": "http"})),
        &["`port`", "an integer"],
    );
    assert_fails(
        &run("tcp-check", json!({"port": 70000})),
        &["`port`", "70000"],
    );
}

#[test]
fn resource_monitor_reads_the_system() {
    let o = run(
        "resource-monitor",
        json!({"max_load_percent": 1e9, "min_available_memory": "1K"}),
    );
    assert_eq!(o.status, Status::Passed, "{o:?}");
    let s = &o.state;
    let total = s["memory_total"].as_u64().unwrap();
    assert!(total > 0 && s["memory_available"].as_u64().unwrap() <= total);
    assert!(s["memory_free"].as_u64().unwrap() <= total);
    let cpus = s["cpus"].as_u64().unwrap();
    assert!(cpus >= 1);
    let l1 = s["load1"].as_f64().unwrap();
    assert!((s["load_percent"].as_f64().unwrap() - l1 / cpus as f64 * 100.0).abs() < 0.01);
    assert!(s["load5"].is_number() && s["load15"].is_number());
    let has_psi = std::path::Path::new("/proc/pressure/memory").exists();
    assert_eq!(s.get("psi").is_some(), has_psi, "{s}");
    if has_psi {
        assert!(s["psi"]["memory"]["some"]["avg10"].is_number(), "{s}");
        assert!(s["psi"]["io"]["full"]["total"].is_u64(), "{s}");
    } else {
        assert!(s["psi_note"].is_string());
    }
}

#[test]
fn resource_monitor_fails_past_a_threshold() {
    let o = run(
        "resource-monitor",
        json!({"min_available_memory": "100000T"}),
    );
    assert_fails(&o, &["below min_available_memory"]);
    assert!(o.state["memory_total"].as_u64().unwrap() > 0);
    let o = run("resource-monitor", json!({"max_load_percent": -1}));
    assert_fails(&o, &["above max_load_percent -1"]);
    let o = run("resource-monitor", json!({"max_psi_memory_avg10": -1}));
    assert_fails(&o, &["max_psi_memory_avg10"]);
    let o = run("resource-monitor", json!({"max_psi_disk_avg10": 1}));
    assert_fails(&o, &["unknown parameter `max_psi_disk_avg10`"]);
    let o = run("resource-monitor", json!({"min_available_memory": "lots"}));
    assert_fails(&o, &["`min_available_memory`", "a size"]);
}

#[test]
fn mount_check_root_and_proc() {
    let o = run("mount-check", json!({"path": "/proc", "fstype": "proc"}));
    assert_eq!(o.status, Status::Passed, "{o:?}");
    assert_eq!(o.state["mounted"], true);
    assert_eq!(o.state["fstype"], "proc");
    assert_eq!(o.state["source"], "proc");
    let o = run("mount-check", json!({"path": "/", "min_free": 1}));
    assert_eq!(o.status, Status::Passed, "{o:?}");
    assert!(o.state["total_bytes"].as_u64().unwrap() > 0);
    assert!(o.state["free_bytes"].as_u64().unwrap() <= o.state["total_bytes"].as_u64().unwrap());
    // Expecting the opposite of what statvfs said must fail.
    let ro = o.state["read_only"].as_bool().unwrap();
    let o = run("mount-check", json!({"path": "/", "writable": ro}));
    let expected = if ro {
        "it is read-only, expected writable"
    } else {
        "it is writable, expected read-only"
    };
    assert_fails(&o, &[expected]);
    let o = run("mount-check", json!({"path": "/", "writable": !ro}));
    assert_eq!(o.status, Status::Passed, "{o:?}");
}

#[test]
fn mount_check_failures() {
    let o = run("mount-check", json!({"path": "/proc", "fstype": "ext4"}));
    assert_fails(&o, &["/proc: its type is proc, expected ext4"]);
    assert_eq!(o.state["mounted"], true);
    let o = run("mount-check", json!({"path": "/", "min_free": "1000000T"}));
    assert_fails(&o, &["bytes free, expected at least", "min_free"]);
    let d = tempfile::tempdir().unwrap();
    let sub = d.path().join("not-a-mount");
    std::fs::create_dir(&sub).unwrap();
    let o = run("mount-check", json!({"path": sub}));
    assert_fails(&o, &["not-a-mount is not a mount point"]);
    assert_eq!(o.state["mounted"], false);
    let o = run("mount-check", json!({"path": "/no/such/mount/point"}));
    assert_fails(&o, &["/no/such/mount/point"]);
    assert_fails(
        &run("mount-check", json!({"path": "/", "writable": "maybe"})),
        &["`writable`", "a boolean"],
    );
}

#[test]
fn network_check_loopback_and_connections() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let open = format!("127.0.0.1:{}", l.local_addr().unwrap().port());
    let o = run(
        "network-check",
        json!({"interface": "lo", "connect": [open]}),
    );
    assert_eq!(o.status, Status::Passed, "{o:?}");
    assert_eq!(o.state["interface"]["up"], true);
    assert_eq!(o.state["interface"]["admin_up"], true);
    assert_eq!(o.state["connect"][&open]["connected"], true);

    let closed = format!("127.0.0.1:{}", closed_port());
    let o = run("network-check", json!({"connect": [open, closed]}));
    assert_fails(&o, &[&format!("cannot connect to {closed}")]);
    assert_eq!(o.state["connect"][&open]["connected"], true);
    assert_eq!(o.state["connect"][&closed]["connected"], false);

    let o = run("network-check", json!({"interface": "nosuch0"}));
    assert_fails(&o, &["interface nosuch0 does not exist"]);
    assert_eq!(o.state["interface"]["exists"], false);
    assert_fails(&run("network-check", json!({})), &["nothing to check"]);
    assert_fails(
        &run("network-check", json!({"connect": "localhost"})),
        &["`connect`", "host:port"],
    );
    assert_fails(
        &run("network-check", json!({"interface": "../lo"})),
        &["`interface`"],
    );
}

#[test]
fn network_check_default_route_matches_proc() {
    // Read independently: an up route to 0.0.0.0/0.
    let v4 = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
    let has_v4 = v4.lines().skip(1).any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.len() > 7
            && f[1] == "00000000"
            && f[7] == "00000000"
            && u32::from_str_radix(f[3], 16).is_ok_and(|x| x & 1 != 0)
    });
    let o = run("network-check", json!({"default_route": true}));
    assert_eq!(o.state["default_route"]["ipv4"], has_v4, "{o:?}");
    let present = o.state["default_route"]["present"].as_bool().unwrap();
    assert_eq!(present, has_v4 || o.state["default_route"]["ipv6"] == true);
    if present {
        assert_eq!(o.status, Status::Passed, "{o:?}");
    } else {
        assert_fails(&o, &["no default route"]);
    }
}

#[test]
fn notification_via_command_writes_a_file() {
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("note");
    let o = run(
        "notification",
        json!({"message": "disk full", "severity": "critical", "via": "command",
               "command": format!("printf '%s|%s|%s' \"$SPARROW_SEVERITY\" \"$SPARROW_MESSAGE\" \"$SPARROW_DESC\" > '{}'", f.display())}),
    );
    assert_eq!(o.status, Status::Passed, "{o:?}");
    assert_eq!(o.state["delivered"], true);
    assert_eq!(o.state["channel"], "command");
    assert_eq!(
        std::fs::read_to_string(&f).unwrap(),
        "critical|disk full|test desc"
    );

    let o = run(
        "notification",
        json!({"message": "m", "channel": "command", "command": ["sh", "-c", "exit 3"]}),
    );
    assert_fails(&o, &["status 3"]);
    assert_eq!(o.state["delivered"], false);
    assert_eq!(o.state["exit_code"], 3);
}

#[test]
fn notification_via_webhook_posts_json() {
    let (url, rx) = serve(|_| response("200 OK", &[], ""));
    let o = run(
        "notification",
        json!({"message": "it broke\ntwice", "channel": "webhook", "url": format!("{url}/hook")}),
    );
    assert_eq!(o.status, Status::Passed, "{o:?}");
    assert_eq!(o.state["delivered"], true);
    assert_eq!(o.state["status"], 200);
    let req = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(req.starts_with("POST /hook HTTP/1.1"), "{req}");
    assert!(
        req.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{req}"
    );
    let body = &req[req.find("\r\n\r\n").unwrap() + 4..];
    let got: Value = serde_json::from_str(body).unwrap();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(
        got,
        json!({"message": "it broke\ntwice", "severity": "warning", "desc": "test desc", "host": host.trim()})
    );

    let url = canned("500 Internal Server Error", &[], "");
    let o = run(
        "notification",
        json!({"message": "m", "channel": "webhook", "url": url}),
    );
    assert_fails(&o, &["answered status 500"]);
    assert_eq!(o.state["delivered"], false);
    let o = run(
        "notification",
        json!({"message": "m", "channel": "webhook", "url": format!("http://127.0.0.1:{}/", closed_port())}),
    );
    assert_fails(&o, &["webhook POST"]);
}

#[test]
fn notification_to_a_journal_socket_uses_the_native_format() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("socket");
    let sock = UnixDatagram::bind(&path).unwrap();
    let params = json!({"message": "line one\nline two", "severity": "info"});
    let call = Call {
        desc: "test desc",
        params: &params,
        deadline: None,
    };
    let o = notification::run_with_journal(&call, &path);
    assert_eq!(o.status, Status::Passed, "{o:?}");
    assert_eq!(o.state["channel"], "journal");
    assert_eq!(o.state["delivered"], true);
    let mut buf = vec![0u8; 65536];
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let n = sock.recv(&mut buf).unwrap();
    let mut want = b"MESSAGE\n".to_vec();
    want.extend_from_slice(&17u64.to_le_bytes());
    want.extend_from_slice(b"line one\nline two\n");
    want.extend_from_slice(
        b"PRIORITY=6\nSYSLOG_IDENTIFIER=systemd-sparrow\nSPARROW_DESC=test desc\nSPARROW_SEVERITY=info\n",
    );
    assert_eq!(
        String::from_utf8_lossy(&buf[..n]),
        String::from_utf8_lossy(&want)
    );
    assert_eq!(&buf[..n], &want[..]);

    // No journal: stderr, and the state says so.
    let gone = d.path().join("missing");
    let o = notification::run_with_journal(&call, &gone);
    assert_eq!(o.status, Status::Passed, "{o:?}");
    assert_eq!(o.state["channel"], "stderr");
    assert!(
        o.state["fallback"].as_str().unwrap().contains("missing"),
        "{o:?}"
    );
}

#[test]
fn notification_refuses_bad_params() {
    assert_fails(&run("notification", json!({})), &["`message`", "required"]);
    assert_fails(
        &run(
            "notification",
            json!({"message": "m", "severity": "urgent"}),
        ),
        &["`severity`", "urgent"],
    );
    assert_fails(
        &run("notification", json!({"message": "m", "channel": "pager"})),
        &["`channel`", "pager"],
    );
    assert_fails(
        &run(
            "notification",
            json!({"message": "m", "channel": "webhook"}),
        ),
        &["`url`", "required"],
    );
    assert_fails(
        &run(
            "notification",
            json!({"message": "m", "channel": "command"}),
        ),
        &["`command`", "required"],
    );
}

#[test]
fn command_exit_status_and_output() {
    let o = run("command", json!({"command": "true"}));
    assert_eq!(o.status, Status::Passed, "{o:?}");
    assert_eq!(o.state["exit_code"], 0);
    let o = run("command", json!({"command": "false"}));
    assert_fails(&o, &["`false` ended with exit 1", "expected exit 0"]);
    assert_eq!(o.state["exit_code"], 1);
    let o = run("command", json!({"command": ["false"], "expect_exit": 1}));
    assert_eq!(o.status, Status::Passed, "{o:?}");

    let o = run("command", json!({"command": "echo a; echo b >&2; echo c"}));
    assert_eq!(o.stdout, vec!["a", "c"]);
    assert_eq!(o.state["stdout"], "a\nc");
    assert_eq!(o.stderr, vec!["b"]);
    let o = run(
        "command",
        json!({"command": ["printf", "%s\\n", "x y", "$HOME"]}),
    );
    assert_eq!(o.stdout, vec!["x y", "$HOME"]);

    let d = tempfile::tempdir().unwrap();
    let dir = d.path().canonicalize().unwrap();
    let o = run(
        "command",
        json!({"command": "echo $FOO; pwd", "env": {"FOO": "bar"}, "cwd": dir}),
    );
    assert_eq!(o.stdout, vec!["bar".to_owned(), dir.display().to_string()]);
}

#[test]
fn command_timeout_kills_the_group() {
    let d = tempfile::tempdir().unwrap();
    let pidfile = d.path().join("pid");
    let start = Instant::now();
    let o = run(
        "command",
        json!({"command": format!("sleep 5 & echo $! > '{}'; wait", pidfile.display()), "timeout": 0.3}),
    );
    let took = start.elapsed();
    assert_eq!(o.status, Status::TimedOut, "{o:?}");
    assert_eq!(o.state["exit_code"], 124);
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert!(stderr(&o).contains("did not end within 300 ms"), "{o:?}");
    // The background sleep went with the group: gone, or a zombie
    // waiting for a reaper (a container's init may not reap).
    let pid = std::fs::read_to_string(&pidfile).unwrap();
    let stat = format!("/proc/{}/stat", pid.trim());
    let gone = (0..100).any(|_| {
        let dead = std::fs::read_to_string(&stat).map_or(true, |s| {
            s.rsplit(')')
                .next()
                .is_some_and(|r| r.trim_start().starts_with('Z'))
        });
        if !dead {
            std::thread::sleep(Duration::from_millis(10));
        }
        dead
    });
    assert!(gone, "the background sleep {pid} survived");
}

#[test]
fn command_refuses_bad_params() {
    assert_fails(&run("command", json!({})), &["`command`", "required"]);
    assert_fails(
        &run("command", json!({"command": 42})),
        &["`command`", "a number"],
    );
    assert_fails(&run("command", json!({"command": []})), &["`command`"]);
    assert_fails(
        &run("command", json!({"command": "true", "cwd": "/no/such/dir"})),
        &["`cwd`", "/no/such/dir"],
    );
    assert_fails(
        &run("command", json!({"command": ["/no/such/program"]})),
        &["cannot run `/no/such/program`"],
    );
}

#[test]
fn feature_flags_from_files() {
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("flags.json");
    std::fs::write(&f, r#"{"new_ui": true, "limit": 3}"#).unwrap();
    let o = run("feature-flags", json!({"file": f}));
    assert_eq!(o.status, Status::Passed, "{o:?}");
    assert_eq!(o.state, json!({"new_ui": true, "limit": 3}));

    let params = json!({});
    let call = Call {
        desc: "d",
        params: &params,
        deadline: None,
    };
    let o = flags::run_with_default(&call, &f);
    assert_eq!(o.state, json!({"new_ui": true, "limit": 3}));
    let o = flags::run_with_default(&call, &d.path().join("absent.json"));
    assert_eq!(o.status, Status::Passed, "{o:?}");
    assert_eq!(o.state, json!({}));

    std::fs::write(&f, "{not json").unwrap();
    let o = run("feature-flags", json!({"file": f}));
    assert_fails(&o, &[&f.display().to_string(), "is not valid JSON"]);
    std::fs::write(&f, "[1, 2]").unwrap();
    let o = run("feature-flags", json!({"file": f}));
    assert_fails(&o, &["must hold a JSON object", "a list"]);
    let o = run("feature-flags", json!({"file": d.path()}));
    assert_fails(&o, &["cannot read"]);
}

#[test]
fn the_registry_lists_every_builtin() {
    let names: Vec<&str> = builtin::all().iter().map(|b| b.name).collect();
    assert_eq!(
        names,
        [
            "http-check",
            "tcp-check",
            "resource-monitor",
            "mount-check",
            "network-check",
            "notification",
            "command",
            "feature-flags"
        ]
    );
    assert!(builtin::find("feature-flags").unwrap().read_only);
    assert!(!builtin::find("command").unwrap().read_only);
    assert!(builtin::find("nope").is_none());
}

#[test]
fn misspelled_parameters_are_refused_with_a_suggestion() {
    for (plugin, params, want) in [
        (
            "http-check",
            serde_json::json!({"url": "http://127.0.0.1:1/", "stauts": 500}),
            "http-check has no parameter `stauts` (did you mean `status`?)",
        ),
        (
            "mount-check",
            serde_json::json!({"path": "/", "min_fre": "1T"}),
            "(did you mean `min_free`?)",
        ),
        (
            "command",
            serde_json::json!({"command": "true", "expected_exit": 3}),
            "(did you mean `expect_exit`?)",
        ),
        (
            "network-check",
            serde_json::json!({"interface": "lo", "default-route": true}),
            "(did you mean `default_route`?)",
        ),
        (
            "feature-flags",
            serde_json::json!({"path": "/x"}),
            "feature-flags has no parameter `path`",
        ),
    ] {
        let b = sparrow_task::builtin::find(plugin).unwrap();
        let o = (b.run)(&sparrow_task::builtin::Call {
            desc: "t",
            params: &params,
            deadline: None,
        });
        assert_eq!(o.status, sparrow_task::Status::TaskFailed(1), "{plugin}");
        assert!(
            o.stderr.join("\n").contains(want),
            "{plugin}: {:?}",
            o.stderr
        );
    }
}

#[test]
fn command_shows_its_stderr_in_the_report() {
    let b = sparrow_task::builtin::find("command").unwrap();
    let params = serde_json::json!({"command": "echo out; echo why >&2; exit 3"});
    let o = (b.run)(&sparrow_task::builtin::Call {
        desc: "t",
        params: &params,
        deadline: None,
    });
    assert_eq!(o.status, sparrow_task::Status::TaskFailed(1));
    let at = o.transcript.iter().position(|l| l == "[stderr]").unwrap();
    assert_eq!(o.transcript[at + 1], "why", "{:?}", o.transcript);
}
