//! What the run prints, as Sparrow6's console helpers do: headers as
//! `[header]`, each output line as `HH:MM:SS :: line` (console-wo-prefix),
//! `[task stdout]` before the script starts, stderr after it ends.

use sparrow_task::runner::{run, Sink};
use sparrow_task::{Options, Status};

use crate::{plain, shown, stamped, Task};

#[test]
fn a_passing_task_headers_unstamped_output_stamped() {
    let t = Task::with(&[("task.bash", "echo one\necho two\n")]);
    let o = t.run_opts(Options {
        name: "my task".into(),
        ..t.opts()
    });
    assert_eq!(o.status, Status::Passed);
    assert_eq!(
        plain(&o),
        vec![
            "[task run: task.bash - my task]",
            "[task stdout]",
            "one",
            "two"
        ]
    );
    let stamps: Vec<bool> = o.transcript.iter().map(|l| stamped(l)).collect();
    assert_eq!(stamps, vec![false, false, true, true], "{}", shown(&o));
}

#[test]
fn task_stdout_is_announced_even_without_output_and_stderr_comes_after() {
    let t = Task::with(&[("task.py", "pass\n")]);
    let o = t.run();
    assert_eq!(plain(&o), vec!["[task run: task.py - .]", "[task stdout]"]);

    let t = Task::with(&[("task.bash", "echo warn-1 >&2\necho out\necho warn-2 >&2\n")]);
    let o = t.run();
    assert_eq!(o.status, Status::Passed, "{}", shown(&o));
    assert_eq!(
        plain(&o),
        vec![
            "[task run: task.bash - .]",
            "[task stdout]",
            "out",
            "[task stderr]",
            "warn-1",
            "warn-2",
        ]
    );
    assert!(stamped(&o.transcript[4]), "{}", shown(&o));
    assert_eq!(o.stderr, vec!["warn-1", "warn-2"]);
    // Stderr is not what checks see.
    assert_eq!(o.stdout, vec!["out"]);
}

#[test]
fn failure_lines_are_stamped_like_output() {
    let t = Task::with(&[("task.bash", "exit 2\n")]);
    let o = t.run();
    assert_eq!(o.status, Status::TaskFailed(2));
    let n = o.transcript.len();
    assert!(n >= 2, "{}", shown(&o));
    for l in &o.transcript[n - 2..] {
        assert!(stamped(l), "{l:?}");
    }
    assert_eq!(plain(&o)[n - 2..], ["task exit status: 2", "task . FAILED"]);
}

#[test]
fn output_lines_end_at_lf_crlf_and_cr() {
    let t = Task::with(&[(
        "task.bash",
        "printf 'a\\r\\nb\\rc\\nlast-without-newline'\n",
    )]);
    let o = t.run();
    assert_eq!(o.stdout, vec!["a", "b", "c", "last-without-newline"]);
}

#[test]
fn hook_stdout_lines_are_stamped_under_their_header() {
    let t = Task::with(&[("hook.bash", "set_stdout '  spaced   out  '\n")]);
    let o = t.run();
    assert_eq!(o.transcript[0], "[hook stdout]");
    assert!(stamped(&o.transcript[1]), "{}", shown(&o));
    assert_eq!(plain(&o)[1], "  spaced   out  ");
}

struct Collect(Vec<String>);

impl Sink for Collect {
    fn line(&mut self, text: &str) {
        self.0.push(text.to_string());
    }
}

#[test]
fn the_sink_gets_every_transcript_line_as_it_is_made() {
    let t = Task::with(&[
        ("hook.bash", "set_stdout from-hook\nrun_task sub\n"),
        ("tasks/sub/task.bash", "echo sub\necho sub-err >&2\n"),
        ("task.bash", "echo main\nexit 3\n"),
    ]);
    let mut sink = Collect(Vec::new());
    let o = run(&t.root(), &t.root(), &t.opts(), &mut sink).unwrap();
    assert_eq!(o.status, Status::TaskFailed(3));
    assert_eq!(sink.0, o.transcript);
    assert_eq!(
        plain(&o),
        vec![
            "[task run: task.bash - .]",
            "[task stdout]",
            "sub",
            "[task stderr]",
            "sub-err",
            "[hook stdout]",
            "from-hook",
            "[task run: task.bash - .]",
            "[task stdout]",
            "main",
            "task exit status: 3",
            "task . FAILED",
        ]
    );
}
