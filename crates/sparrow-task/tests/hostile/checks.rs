//! `task.check` files that try to crash, hang or outlast the deadline:
//! enormous or deeply nested regexes, generators without end, blocks that
//! never end, `source:` files that are FIFOs or devices, huge check lists.

use std::time::{Duration, Instant};

use serde_json::Value;
use sparrow_task::limits::MAX_BLOCKS;
use sparrow_task::{Status, TaskError};

use crate::{mkfifo, said, shown, Task};

fn check_error(t: &Task) -> String {
    match t.try_run(t.opts()) {
        Err(TaskError::Check(m)) => m,
        Err(e) => panic!("another error: {e}"),
        Ok(o) => panic!("it ran: {}", shown(&o)),
    }
}

#[test]
fn deeply_nested_or_enormous_regexes_are_an_error_not_a_crash() {
    // 5,000 nested groups overflowed the translator's stack (an abort).
    let t = Task::with(&[("task.bash", "echo hi\n")]);
    for pat in [
        format!("{}a{}", "[".repeat(20_000), "]".repeat(20_000)),
        format!("{}a{}", "(".repeat(5_000), ")".repeat(5_000)),
        "$<x>=".repeat(10_000) + "a",
    ] {
        t.file("task.check", &format!("hi\nregexp: {pat}\n"));
        let m = check_error(&t);
        assert!(m.contains("task.check:2:9: regexp: too complex"), "{m}");
    }
    t.file(
        "task.check",
        &format!("regexp: {}\n", "a".repeat(2_000_000)),
    );
    let start = Instant::now();
    let m = check_error(&t);
    assert!(m.contains("regexp: longer than 64 KiB"), "{m}");
    assert!(start.elapsed() < Duration::from_secs(2));
    // Nested, but within reason: it works.
    t.file(
        "task.check",
        &format!("regexp: {}hi{}\n", "[".repeat(100), "]".repeat(100)),
    );
    let o = t.run(Value::Null);
    assert_eq!(o.status, Status::Passed, "{}", shown(&o));
}

#[test]
fn a_source_that_is_a_fifo_or_a_device_is_an_error_not_a_hang() {
    let t = Task::with(&[("task.bash", "echo hi\n")]);
    let fifo = t.root().join("fifo");
    mkfifo(&fifo);
    for (path, what) in [
        (fifo.display().to_string(), "a FIFO"),
        ("/dev/zero".into(), "a device"),
    ] {
        t.file("task.check", &format!("hi\nsource: {path}\nx\n"));
        let m = check_error(&t);
        assert!(m.contains(&format!("source: {path}: {what}")), "{m}");
    }
    // A file with a bad byte is read, not refused.
    t.file("data", "one\n\u{e9}\n");
    std::fs::write(t.root().join("data"), b"one\n\xff two\n").unwrap();
    t.file(
        "task.check",
        &format!(
            "source: {}\none\n\u{fffd} two\n",
            t.root().join("data").display()
        ),
    );
    let o = t.run(Value::Null);
    assert_eq!(o.status, Status::Passed, "{}", shown(&o));
}

#[test]
fn a_task_check_that_is_a_fifo_is_an_error_not_skipped() {
    let t = Task::with(&[("task.bash", "echo hi\n")]);
    mkfifo(&t.root().join("task.check"));
    let m = check_error(&t);
    assert!(m.contains("task.check: a FIFO"), "{m}");
}

#[test]
fn a_generator_fanning_out_stops_at_the_block_limit() {
    // Each generator prints ten more, four levels deep (within the depth
    // limit): 1,111 processes, 11,111 with one more level, and no deadline
    // to stop them.
    let gen = |next: &str| {
        format!("generator: <<G\n!bash\nmapfile -t l < \"$root_dir/{next}\"\nfor i in {{1..10}}; do printf '%s\\n' \"${{l[@]}}\"; done\nG\n")
    };
    let t = Task::with(&[
        ("task.bash", "echo hi\n"),
        ("task.check", &gen("g1")),
        ("g1", &gen("g2")),
        ("g2", &gen("g3")),
        ("g3", &gen("g4")),
        ("g4", "note: leaf\n"),
    ]);
    let start = Instant::now();
    let m = check_error(&t);
    assert!(
        m.contains(&format!("more than {MAX_BLOCKS} code and generator blocks")),
        "{m}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(15),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn checks_and_blocks_end_at_the_deadline() {
    // 100,000 checks over 20,000 lines (two billion line tests): the
    // evaluation ignored the deadline, which only bound the scripts.
    let mut check = String::new();
    for i in 0..100_000 {
        check.push_str(&format!("regexp: ^ {i} x $\n"));
    }
    let t = Task::with(&[("task.bash", "seq 20000\n"), ("task.check", &check)]);
    let start = Instant::now();
    let o = t.run_for(Duration::from_millis(700));
    assert_eq!(o.status, Status::TimedOut, "{}", shown(&o));
    // The file is read (and its 100,000 regexes compiled) before the task
    // runs: the deadline passes there, and the task never starts.
    assert!(said(&o, "task.check timed out"), "{}", shown(&o));
    assert!(!said(&o, "[task run:"), "{}", shown(&o));
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );

    // A code block that never ends: killed, and the run timed out (it
    // was reported as the block failing with 124).
    let t = Task::with(&[
        ("task.bash", "echo hi\n"),
        ("task.check", "hi\ncode: <<X\n!bash\nsleep 30\nX\n"),
    ]);
    let start = Instant::now();
    let o = t.run_for(Duration::from_millis(400));
    assert_eq!(o.status, Status::TimedOut, "{}", shown(&o));
    assert!(start.elapsed() < Duration::from_secs(4));
}
