//! A failing task ends the run with its own exit code (Sparrow6's
//! `exit($exit-code)`), its stderr shown; a run past its deadline is killed
//! with everything it started.

use std::time::{Duration, Instant};

use sparrow_task::{Options, Status};

use crate::{plain, shown, Task};

#[test]
fn a_failing_task_in_every_language_gives_its_exit_code_and_stderr() {
    let cases = [
        ("task.bash", "echo out-line\necho err-line >&2\nexit 7\n", 7),
        (
            "task.py",
            "import sys\nprint('out-line')\nsys.stderr.write('err-line\\n')\nsys.exit(5)\n",
            5,
        ),
        (
            "task.pl",
            "print \"out-line\\n\";\nprint STDERR \"err-line\\n\";\nexit 6;\n",
            6,
        ),
        (
            "task.rb",
            "puts 'out-line'\n$stderr.puts 'err-line'\nexit 9\n",
            9,
        ),
    ];
    for (file, code, status) in cases {
        let t = Task::with(&[(file, code)]);
        let o = t.run_opts(Options {
            name: "failing one".into(),
            ..t.opts()
        });
        assert_eq!(
            o.status,
            Status::TaskFailed(status),
            "{file}: {}",
            shown(&o)
        );
        assert_eq!(o.status.exit_code(), status);
        assert_eq!(o.stdout, vec!["out-line"], "{file}");
        assert_eq!(o.stderr, vec!["err-line"], "{file}");
        assert_eq!(
            plain(&o),
            vec![
                format!("[task run: {file} - failing one]"),
                "[task stdout]".into(),
                "out-line".into(),
                "[task stderr]".into(),
                "err-line".into(),
                format!("task exit status: {status}"),
                "task failing one FAILED".into(),
            ],
            "{file}"
        );
    }
}

#[test]
fn an_exception_is_exit_status_1_with_its_traceback_as_stderr() {
    let t = Task::with(&[("task.py", "raise ValueError('boom')\n")]);
    let o = t.run();
    assert_eq!(o.status, Status::TaskFailed(1), "{}", shown(&o));
    assert_eq!(
        o.stderr.first().map(String::as_str),
        Some("Traceback (most recent call last):")
    );
    assert_eq!(
        o.stderr.last().map(String::as_str),
        Some("ValueError: boom")
    );
}

fn pid_in(t: &Task, file: &str) -> libc::pid_t {
    std::fs::read_to_string(t.root().join(file))
        .unwrap_or_else(|e| panic!("{file}: {e}"))
        .trim()
        .parse()
        .unwrap()
}

/// Whether `pid` is still a live process (a zombie waiting for its reaper
/// is dead).
fn alive(pid: libc::pid_t) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    if unsafe { libc::kill(pid, 0) } != 0 {
        return false;
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat.rsplit(')').next().unwrap_or("").trim_start();
    !(state.starts_with('Z') || state.starts_with('X') || stat.is_empty())
}

fn dies_soon(pid: libc::pid_t) -> bool {
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        if !alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn a_task_past_the_deadline_is_killed_with_its_background_children() {
    let t = Task::with(&[(
        "task.bash",
        "echo $$ > \"$root_dir/main.pid\"\nsleep 30 &\necho $! > \"$root_dir/bg.pid\"\necho started\nsleep 30\necho never\n",
    )]);
    let start = Instant::now();
    let o = t.run_opts(Options {
        timeout: Some(Duration::from_millis(500)),
        ..t.opts()
    });
    let took = start.elapsed();
    assert_eq!(o.status, Status::TimedOut, "{}", shown(&o));
    assert_eq!(o.status.exit_code(), 124);
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(took >= Duration::from_millis(450), "took {took:?}");
    assert_eq!(o.stdout, vec!["started"]);
    assert_eq!(
        plain(&o).last().map(String::as_str),
        Some("task . timed out")
    );
    let bg = pid_in(&t, "bg.pid");
    let main = pid_in(&t, "main.pid");
    assert!(dies_soon(bg), "the background sleep {bg} survived");
    assert!(dies_soon(main), "the task's shell {main} survived");
}

#[test]
fn a_hook_past_the_deadline_ends_the_run_before_the_task() {
    let t = Task::with(&[
        ("hook.bash", "sleep 30\n"),
        ("task.bash", "touch \"$root_dir/ran\"\n"),
    ]);
    let start = Instant::now();
    let o = t.run_opts(Options {
        timeout: Some(Duration::from_millis(300)),
        ..t.opts()
    });
    assert_eq!(o.status, Status::TimedOut, "{}", shown(&o));
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(!t.root().join("ran").exists());
    assert_eq!(plain(&o), vec!["hook . timed out"]);
}

#[test]
fn a_perl_task_runs_once() {
    // A deliberate departure: Sparrow6's run-perl-task ran the script twice
    // (once synchronously, its output dropped, then again).
    let t = Task::with(&[(
        "task.pl",
        "open my $f, '>>', root_dir() . '/count' or die;\nprint $f \"x\\n\";\nprint \"counted\\n\";\n",
    )]);
    let o = t.run();
    assert_eq!(o.status, Status::Passed, "{}", shown(&o));
    assert_eq!(
        std::fs::read_to_string(t.root().join("count")).unwrap(),
        "x\n"
    );
}
