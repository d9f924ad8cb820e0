//! The parent side against shell children: replies, deaths, deadlines, progress.
use super::*;

/// A shell child for tests of the parent side: the role (`argv[1]`)
/// is the path of a script file, which `sh` runs.
fn sh(script: &str) -> Worker {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let path = std::env::temp_dir().join(format!(
        "sparrow-isolate-test-{}-{}.sh",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&path, script).unwrap();
    Worker::spawn(
        Path::new("/bin/sh"),
        path.to_str().unwrap(),
        Limits::default(),
    )
    .unwrap()
}

#[test]
fn replies_are_read_line_by_line() {
    let mut w = sh("read line; echo \"[1]\"; echo '\"two\"'; read more");
    w.send(&"go", Duration::from_secs(5)).unwrap();
    let one: Vec<u32> = w.recv(Duration::from_secs(5)).unwrap();
    let two: String = w.recv(Duration::from_secs(5)).unwrap();
    assert_eq!((one, two.as_str()), (vec![1], "two"));
}

#[test]
fn attachments_arrive_as_they_were_sent_even_in_pieces() {
    // Newlines inside the attachment are bytes, not line ends; the reply
    // after it comes in a later write.
    let mut w =
        sh(r#"printf '@9\na\n"b"\n\\c\n'; sleep 0.1; printf '[1]\n'; echo '"plain"'; read x"#);
    let (one, bytes): (Vec<u32>, Vec<u8>) = w.recv_with(Duration::from_secs(5)).unwrap();
    assert_eq!((one, bytes.as_slice()), (vec![1], &b"a\n\"b\"\n\\c\n"[..]));
    let (two, none): (String, Vec<u8>) = w.recv_with(Duration::from_secs(5)).unwrap();
    assert_eq!((two.as_str(), none.len()), ("plain", 0));
}

#[test]
fn a_bad_attachment_header_is_a_protocol_failure() {
    let mut w = sh("printf '@x1\\nz[1]\\n'; read x");
    let e = w.recv::<Vec<u32>>(Duration::from_secs(5)).unwrap_err();
    assert!(matches!(e, Failure::Protocol(_)), "{e}");
}

#[test]
fn an_attachment_header_that_never_ends_fails_at_once() {
    let mut w = sh("printf '@'; head -c 200000 /dev/zero | tr '\\0' 7; read x");
    let start = Instant::now();
    let e = w.recv::<u32>(Duration::from_secs(5)).unwrap_err();
    assert!(matches!(e, Failure::Protocol(_)), "{e}");
    assert!(start.elapsed() < Duration::from_secs(4));
}

#[test]
fn try_recv_returns_what_has_arrived_without_waiting() {
    let mut w = sh("echo 1; echo 2; read x");
    let first: u32 = w.recv(Duration::from_secs(5)).unwrap();
    // The second line came in the same write or comes right after.
    let mut second = None;
    for _ in 0..500 {
        second = w.try_recv::<u32>().unwrap();
        if second.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!((first, second), (1, Some(2)));
    assert_eq!(w.try_recv::<u32>().unwrap(), None);
}

#[test]
fn a_silent_child_is_killed_at_its_deadline() {
    let mut w = sh("sleep 30");
    let start = Instant::now();
    let e = w.recv::<u32>(Duration::from_millis(200)).unwrap_err();
    assert!(matches!(e, Failure::TimedOut(_)), "{e}");
    assert!(start.elapsed() < Duration::from_secs(5));
    // It is gone: no zombie, no survivor.
    // SAFETY: kill with signal 0 only checks for existence.
    assert_ne!(unsafe { libc::kill(w.pid() as i32, 0) }, 0);
}

#[test]
fn a_death_says_how() {
    let mut w = sh("echo 'thread main has overflowed its stack' >&2; kill -ABRT $$");
    let Failure::Died(d) = w.recv::<u32>(Duration::from_secs(5)).unwrap_err() else {
        panic!("expected a death");
    };
    assert_eq!(d.signal, Some(libc::SIGABRT));
    assert!(d.to_string().contains("overflowed the stack"), "{d}");

    let mut w = sh("echo 'memory allocation of 1099511627776 bytes failed' >&2; kill -ABRT $$");
    let e = w
        .recv::<u32>(Duration::from_secs(5))
        .unwrap_err()
        .to_string();
    assert!(e.contains("ran out of memory (limit 256 MiB)"), "{e}");

    let mut w = sh("kill -SEGV $$");
    let e = w
        .recv::<u32>(Duration::from_secs(5))
        .unwrap_err()
        .to_string();
    assert_eq!(e, "crashed (SIGSEGV)");

    let mut w = sh("echo oops >&2; exit 3");
    let e = w
        .recv::<u32>(Duration::from_secs(5))
        .unwrap_err()
        .to_string();
    assert_eq!(e, "exited unexpectedly with status 3: oops");
}

#[test]
fn garbage_is_a_protocol_failure() {
    let mut w = sh("echo 'not json'; sleep 30");
    let e = w.recv::<u32>(Duration::from_secs(5)).unwrap_err();
    assert!(matches!(e, Failure::Protocol(_)), "{e}");
}

#[test]
fn the_memory_limit_applies_to_the_child() {
    let mut w = sh("ulimit -v; read x");
    let kib: String = {
        // `ulimit -v` prints a bare number, which is valid JSON.
        let n: u64 = w.recv(Duration::from_secs(5)).unwrap();
        n.to_string()
    };
    assert_eq!(kib, (Limits::default().memory / 1024).to_string());
}

/// Writes step `n` to the progress file from a shell (at offset 0).
fn step(n: u8) -> String {
    format!("printf '\\{n:03o}\\000\\000\\000\\000\\000\\000\\000' | dd of=/proc/self/fd/3 conv=notrunc status=none")
}

#[test]
fn a_batch_may_take_long_while_it_makes_progress() {
    // 5 steps of 100 ms: 500 ms in all, more than twice the stall limit.
    let steps: Vec<String> = (1..=5).map(|i| format!("{}; sleep 0.1", step(i))).collect();
    let mut w = sh(&format!("read x; {}; echo 5; read y", steps.join("; ")));
    w.send(&"go", Duration::from_secs(5)).unwrap();
    let start = Instant::now();
    let n: u32 = w.recv_progress(Duration::from_millis(250)).unwrap();
    assert_eq!(n, 5);
    assert!(start.elapsed() >= Duration::from_millis(400));
    assert_eq!(w.progress(), 5);
}

#[test]
fn a_batch_that_stops_making_progress_is_stopped_at_its_step() {
    let mut w = sh(&format!("read x; {}; {}; sleep 30", step(1), step(2)));
    w.send(&"go", Duration::from_secs(5)).unwrap();
    let start = Instant::now();
    let e = w
        .recv_progress::<u32>(Duration::from_millis(200))
        .unwrap_err();
    assert!(matches!(e, Failure::TimedOut(_)), "{e}");
    assert!(start.elapsed() < Duration::from_secs(5));
    // The step it was on when it stalled.
    assert_eq!(w.progress(), 2);
}
