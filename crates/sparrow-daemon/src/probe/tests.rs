//! Probes against real sockets on loopback and real processes.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;

/// A loopback HTTP server answering every request with `status` and `body`
/// after `delay`; returns its port.
async fn server(status: u16, body: &'static str, delay: Duration) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                tokio::time::sleep(delay).await;
                let head = String::from_utf8_lossy(&got).to_lowercase();
                let body = if head.contains("x-probe: yes") {
                    format!("{body} header-seen")
                } else if head.contains("host: vhost.example") {
                    format!("{body} vhost")
                } else if head.contains("x-big: yes") {
                    // More than a body check reads.
                    format!("{body}{}", "x".repeat(200 * 1024))
                } else {
                    body.to_string()
                };
                if head.matches("host:").count() != 1 {
                    return;
                }
                let resp = format!(
                    "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
            });
        }
    });
    port
}

fn http(port: u16, status: Option<u16>, body: Option<&str>, regex: Option<&str>) -> ProbeSpec {
    ProbeSpec::Http {
        url: format!("http://127.0.0.1:{port}/health?x=1"),
        status,
        body: body.map(str::to_string),
        body_regex: regex.map(str::to_string),
        headers: vec![("x-probe".into(), "yes".into())],
    }
}

fn prober() -> Prober {
    Prober::new(&HealthConfig::default())
}

#[tokio::test]
async fn http_probes_check_status_body_regex_and_send_headers() {
    let ok = server(200, "status: ok", Duration::ZERO).await;
    let bad = server(503, "down", Duration::ZERO).await;
    let p = prober();
    let t = Duration::from_secs(5);
    assert_eq!(p.probe(&http(ok, None, None, None), t).await.1, Ok(()));
    assert_eq!(
        p.probe(
            &http(
                ok,
                Some(200),
                Some("ok"),
                Some(r"^status: \w+ header-seen$")
            ),
            t
        )
        .await
        .1,
        Ok(())
    );
    let e = p
        .probe(&http(ok, Some(201), None, None), t)
        .await
        .1
        .unwrap_err();
    assert_eq!(e, "HTTP 200 (wanted 201)");
    let e = p
        .probe(&http(ok, None, Some("healthy"), None), t)
        .await
        .1
        .unwrap_err();
    assert!(
        e.contains("does not contain \"healthy\"") && e.contains("status: ok"),
        "{e}"
    );
    let e = p
        .probe(&http(ok, None, None, Some("^down$")), t)
        .await
        .1
        .unwrap_err();
    assert!(e.contains("does not match /^down$/"), "{e}");
    let e = p
        .probe(&http(bad, None, None, None), t)
        .await
        .1
        .unwrap_err();
    assert_eq!(e, "HTTP 503");
    // A body longer than what is read still passes on its first 64 KiB.
    let big = ProbeSpec::Http {
        url: format!("http://127.0.0.1:{ok}/"),
        status: Some(200),
        body: Some("status: ok".into()),
        body_regex: None,
        headers: vec![("X-Big".into(), "yes".into())],
    };
    assert_eq!(p.probe(&big, t).await.1, Ok(()));
    // A Host header of the definition's replaces the URL's (one Host line,
    // else the server hangs up), with a body check (hyper) and without.
    for body in [Some("vhost"), None] {
        let vhost = ProbeSpec::Http {
            url: format!("http://127.0.0.1:{ok}/"),
            status: None,
            body: body.map(str::to_string),
            body_regex: None,
            headers: vec![("Host".into(), "vhost.example".into())],
        };
        assert_eq!(p.probe(&vhost, t).await.1, Ok(()), "{body:?}");
    }
    let e = p
        .probe(&http(ok, None, None, Some("(")), t)
        .await
        .1
        .unwrap_err();
    assert!(e.contains("body_regex"), "{e}");
    // Nothing listening.
    let closed = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let e = p
        .probe(&http(closed, None, None, None), t)
        .await
        .1
        .unwrap_err();
    assert!(e.contains("cannot connect") && e.contains("refused"), "{e}");
}

#[tokio::test]
async fn a_hanging_endpoint_is_cut_at_the_timeout_and_others_are_not_delayed() {
    raise_nofile();
    let slow = server(200, "ok", Duration::from_secs(3600)).await;
    let fast = server(200, "ok", Duration::ZERO).await;
    let p = std::sync::Arc::new(prober());
    let start = Instant::now();
    // A thousand hanging probes in flight, more than the default bound on
    // in-flight network probes...
    let mut hung = Vec::new();
    for _ in 0..1000 {
        let p = p.clone();
        hung.push(tokio::spawn(async move {
            p.probe(&http(slow, None, None, None), Duration::from_millis(1500))
                .await
        }));
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    // ... and a probe of a healthy endpoint still answers at once.
    let (ms, r) = p
        .probe(&http(fast, None, None, None), Duration::from_secs(5))
        .await;
    assert_eq!(r, Ok(()));
    assert!(ms < 500, "a healthy probe took {ms} ms behind hanging ones");
    for h in hung {
        let (ms, r) = h.await.unwrap();
        assert!(r.unwrap_err().contains("no answer within 1500 ms"));
        assert!(ms < 3000, "{ms}");
    }
    assert!(start.elapsed() < Duration::from_secs(10));
}

/// Whether `pid` is gone within two seconds.
fn gone(pid: i32) -> bool {
    (0..100).any(|_| {
        // SAFETY: signal 0 only checks for existence.
        let dead = unsafe { libc::kill(pid, 0) } != 0;
        if !dead {
            std::thread::sleep(Duration::from_millis(20));
        }
        dead
    })
}

#[tokio::test]
async fn tcp_and_exec_probes() {
    let p = prober();
    let t = Duration::from_secs(5);
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let tcp = |port| ProbeSpec::Tcp {
        host: "127.0.0.1".into(),
        port,
    };
    assert_eq!(p.probe(&tcp(port), t).await.1, Ok(()));
    drop(l);
    assert!(p
        .probe(&tcp(port), t)
        .await
        .1
        .unwrap_err()
        .contains("cannot connect to 127.0.0.1"));

    let exec = |s: &str| ProbeSpec::Exec(vec!["/bin/sh".into(), "-c".into(), s.into()]);
    assert_eq!(p.probe(&exec("exit 0"), t).await.1, Ok(()));
    let e = p
        .probe(&exec("echo 'disk full' >&2; exit 3"), t)
        .await
        .1
        .unwrap_err();
    assert_eq!(e, "/bin/sh exited with status 3: disk full");
    // A hanging command is cut, with what it started.
    let d = tempfile::tempdir().unwrap();
    let pidfile = d.path().join("pid");
    let script = format!("sleep 60 & echo $! > {}; wait", pidfile.display());
    let start = Instant::now();
    let e = p
        .probe(&exec(&script), Duration::from_millis(300))
        .await
        .1
        .unwrap_err();
    assert!(e.contains("no answer within 300 ms"), "{e}");
    assert!(start.elapsed() < Duration::from_secs(5));
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(gone(pid), "the command's child {pid} outlived the probe");
    // Endless stderr: only its tail is kept, and it fails promptly.
    let start = Instant::now();
    let e = p
        .probe(
            &exec("head -c 50000000 /dev/zero | tr '\\0' e >&2; echo LAST >&2; exit 1"),
            t,
        )
        .await
        .1
        .unwrap_err();
    assert!(
        e.ends_with("LAST") && e.len() < 400,
        "{}",
        &e[..e.len().min(300)]
    );
    assert!(start.elapsed() < Duration::from_secs(5));
    // A command that exits 0 but leaves a child holding stderr passes, and
    // the child is killed with the group.
    let bg = d.path().join("bg");
    let script = format!("sleep 60 & echo $! > {}; exit 0", bg.display());
    assert_eq!(p.probe(&exec(&script), t).await.1, Ok(()));
    let pid: i32 = std::fs::read_to_string(&bg)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(gone(pid), "the probe's background child {pid} outlived it");
    // Not looked up in PATH.
    let e = p
        .probe(&ProbeSpec::Exec(vec!["true".into()]), t)
        .await
        .1
        .unwrap_err();
    assert!(e.contains("not an absolute path"), "{e}");
    let e = p
        .probe(&ProbeSpec::Exec(vec!["/nonexistent".into()]), t)
        .await
        .1
        .unwrap_err();
    assert!(e.contains("cannot run /nonexistent"), "{e}");
}

/// A server that answers every connection with `reply` (after reading the
/// request's head when `read` is set) and closes.
async fn raw(reply: &'static [u8], read: bool) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            if read {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
            }
            let _ = s.write_all(reply).await;
        }
    });
    port
}

#[tokio::test]
async fn status_only_probes_refuse_what_is_not_an_http_answer() {
    let p = prober();
    let t = Duration::from_secs(5);
    let ok = raw(b"HTTP/1.1 204 No Content\r\nX-A: b\r\n\r\n", true).await;
    assert_eq!(p.probe(&http(ok, Some(204), None, None), t).await.1, Ok(()));
    let garbage = raw(b"SSH-2.0-OpenSSH_9.2\r\n\r\n", true).await;
    let e = p
        .probe(&http(garbage, None, None, None), t)
        .await
        .1
        .unwrap_err();
    assert!(e.contains("not an HTTP answer"), "{e}");
    let silent = raw(b"", true).await;
    let e = p
        .probe(&http(silent, None, None, None), t)
        .await
        .1
        .unwrap_err();
    assert!(e.contains("closed without an answer"), "{e}");
    let cut = raw(b"HTTP/1.1 200 OK\r\nContent-Le", true).await;
    let e = p
        .probe(&http(cut, None, None, None), t)
        .await
        .1
        .unwrap_err();
    assert!(e.contains("in the middle of the answer's head"), "{e}");
}

#[test]
fn a_url_is_taken_apart_once_as_the_request_needs_it() {
    let t = Target::parse("http://127.0.0.1:8080/health?deep=1").unwrap();
    assert_eq!(t.addr, Some("127.0.0.1:8080".parse().unwrap()));
    assert_eq!(t.path, "/health?deep=1");
    assert_eq!(
        String::from_utf8(t.plain.clone()).unwrap(),
        "GET /health?deep=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: systemd-sparrowd\r\nConnection: close\r\n\r\n"
    );
    assert!(t.tls.is_none());
    // The default port is not in Host:; an IPv6 literal connects without brackets.
    let t = Target::parse("http://[::1]/").unwrap();
    assert_eq!(t.addr, Some("[::1]:80".parse().unwrap()));
    assert_eq!(t.authority, "[::1]");
    // A name is resolved at each probe, not once.
    let t = Target::parse("http://localhost:9/x").unwrap();
    assert_eq!((t.addr, t.host.as_str(), t.port), (None, "localhost", 9));
    assert!(Target::parse("https://example.org/").unwrap().tls.is_some());
    assert!(Target::parse("not a url").is_err());
    assert!(Target::parse("unix:/run/x.sock").is_err());
}
