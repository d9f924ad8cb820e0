//! Processes that try to outlive their deadline or hold the caller: the
//! deadline holds, the caller returns, what stays in the process group is
//! killed. (A process that leaves the group with setsid escapes the kill:
//! docs/tasks.md says so; the unit's cgroup is what holds it.)

use std::time::{Duration, Instant};

use serde_json::Value;
use sparrow_task::Status;

use crate::{said, shown, Task};

/// Processes (not zombies) whose command line contains `marker`.
fn running(marker: &str) -> Vec<i32> {
    // Unreadable /proc would make "nothing survived" pass: fail instead.
    let dir = std::fs::read_dir("/proc").expect("/proc is readable");
    dir.filter_map(Result::ok)
        .filter_map(|e| Some((e.file_name().to_str()?.parse::<i32>().ok()?, e.path())))
        .filter(|(_, p)| {
            let cmd = std::fs::read(p.join("cmdline")).unwrap_or_default();
            let stat = std::fs::read_to_string(p.join("stat")).unwrap_or_default();
            let zombie = stat
                .rsplit(')')
                .next()
                .is_some_and(|s| s.trim_start().starts_with('Z'));
            !zombie && String::from_utf8_lossy(&cmd).contains(marker)
        })
        .map(|(pid, _)| pid)
        .collect()
}

#[test]
fn a_double_forked_setsid_child_holding_the_pipes_does_not_hold_the_caller() {
    let t = Task::with(&[(
        "task.bash",
        "(setsid sleep 7.7731 &)\nsleep 0.2 # it has left the group by then\necho started\n",
    )]);
    let start = Instant::now();
    let o = t.run(Value::Null);
    assert_eq!(o.status, Status::Passed, "{}", shown(&o));
    assert_eq!(o.stdout, vec!["started"]);
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    // It left the process group, so it outlived the run (as documented);
    // it is ended here, not left behind by the test.
    let escaped = running("7.7731");
    assert_eq!(escaped.len(), 1, "{escaped:?}");
    for pid in escaped {
        // SAFETY: kill takes a pid and a signal.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

#[test]
fn a_task_ignoring_sigterm_and_closing_its_output_meets_the_deadline() {
    for script in [
        "trap '' TERM INT HUP\necho x\nwhile :; do sleep 0.1; done\n",
        "exec >&- 2>&-\nsleep 30\n",
        "trap 'echo trapped' EXIT TERM\nsleep 30 & sleep 30 & wait\n",
    ] {
        let t = Task::with(&[("task.bash", script)]);
        let start = Instant::now();
        let o = t.run_for(Duration::from_millis(300));
        let took = start.elapsed();
        assert_eq!(o.status, Status::TimedOut, "{script}: {}", shown(&o));
        assert_eq!(o.status.exit_code(), 124);
        assert!(said(&o, "task . timed out"), "{}", shown(&o));
        assert!(took < Duration::from_secs(3), "{script}: {took:?}");
    }
}

#[test]
fn a_fork_storm_is_killed_whole_at_the_deadline() {
    let t = Task::with(&[(
        "task.bash",
        "for i in $(seq 300); do sleep 9876.5 & done\nwhile :; do sleep 9876.5 & sleep 0.01; done\n",
    )]);
    let start = Instant::now();
    let o = t.run_for(Duration::from_millis(700));
    assert_eq!(o.status, Status::TimedOut, "{}", shown(&o));
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "{:?}",
        start.elapsed()
    );
    // SIGKILL to the group is delivered at once; give the exits a moment.
    let deadline = Instant::now() + Duration::from_secs(2);
    while !running("9876.5").is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(running("9876.5"), Vec::<i32>::new());
}

#[test]
fn a_sub_task_that_runs_itself_stops_at_the_depth_limit() {
    // Each level ran the next without end: the runner's stack overflowed
    // and the process (the daemon's evaluator, the CLI) aborted.
    let t = Task::with(&[
        ("hook.bash", "run_task again\n"),
        ("tasks/again/hook.bash", "run_task again\n"),
        ("task.bash", "echo never\n"),
    ]);
    let start = Instant::now();
    let o = t.run(Value::Null);
    assert_eq!(o.status, Status::HookFailed(1), "{}", shown(&o));
    assert_eq!(o.status.exit_code(), 101);
    assert!(
        said(
            &o,
            "task: again: sub-tasks nest more than 32 deep (does one run itself?)"
        ),
        "{}",
        shown(&o)
    );
    assert!(!o.stdout.contains(&"never".to_string()));
    assert!(start.elapsed() < Duration::from_secs(10));
}
