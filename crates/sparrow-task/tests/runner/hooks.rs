//! Hooks: run before the task, their stdout a control channel (not shown),
//! `set_stdout` lines shown under `[hook stdout]` and put before the task's
//! output, `ignore_error` forgiving the next task, a failing hook ending the
//! run with 101 (Runner.rakumod, Helpers/Common.rakumod).

use sparrow_task::{Options, Status};

use crate::{assert_in_order, count_line, has_line, plain, shown, Task};

#[test]
fn the_hook_runs_first_and_its_own_output_is_not_shown() {
    let t = Task::with(&[
        (
            "hook.bash",
            "echo hook-private\necho hook-err >&2\necho hook >> \"$root_dir/order\"\n",
        ),
        (
            "task.bash",
            "echo task >> \"$root_dir/order\"\necho task-out\n",
        ),
    ]);
    let o = t.run();
    assert_eq!(o.status, Status::Passed, "{}", shown(&o));
    assert_eq!(
        std::fs::read_to_string(t.root().join("order")).unwrap(),
        "hook\ntask\n"
    );
    assert_eq!(o.stdout, vec!["task-out"]);
    assert_eq!(
        plain(&o),
        vec!["[task run: task.bash - .]", "[task stdout]", "task-out"]
    );
}

#[test]
fn set_stdout_in_a_hook_comes_before_the_tasks_output_in_every_language() {
    let cases = [
        (
            "hook.bash",
            "set_stdout 'hook says A'\nset_stdout 'hook says B'\n",
            "task.bash",
            "echo 'task says C'\n",
        ),
        (
            "hook.py",
            "from sparrow6lib import *\nset_stdout('hook says A')\nset_stdout('hook says B')\n",
            "task.py",
            "print('task says C')\n",
        ),
        (
            "hook.pl",
            "set_stdout('hook says A');\nset_stdout('hook says B');\n",
            "task.pl",
            "print \"task says C\\n\";\n",
        ),
        (
            "hook.rb",
            "set_stdout 'hook says A'\nset_stdout 'hook says B'\n",
            "task.rb",
            "puts 'task says C'\n",
        ),
    ];
    for (hook, hook_code, task, task_code) in cases {
        let t = Task::with(&[(hook, hook_code), (task, task_code)]);
        let o = t.run();
        assert_eq!(o.status, Status::Passed, "{hook}: {}", shown(&o));
        // examples/tasks/merge-stdout-from-hook: what task.check sees.
        assert_eq!(
            o.stdout,
            vec!["hook says A", "hook says B", "task says C"],
            "{hook}: {}",
            shown(&o)
        );
        assert_eq!(
            plain(&o),
            vec![
                "[hook stdout]",
                "hook says A",
                "hook says B",
                &format!("[task run: {task} - .]"),
                "[task stdout]",
                "task says C",
            ]
        );
    }
}

#[test]
fn hooks_cascade_through_sub_tasks_with_their_own_hooks() {
    // examples/tasks/cascade_hooks, in four languages: each sub-task's hook
    // runs before it, its set_stdout is its own output, the root's comes
    // after its sub-tasks ran.
    let t = Task::with(&[
        ("hook.bash", "run_task task_a x 1\nset_stdout CASCADE\n"),
        (
            "tasks/task_a/hook.py",
            "from sparrow6lib import *\nset_stdout('A hook got ' + task_var('x'))\nrun_task('task_b', {'y': task_var('x') + '-b'})\n",
        ),
        ("tasks/task_a/task.bash", "echo 'task A'\n"),
        (
            "tasks/task_b/hook.rb",
            "run_task 'task_c', { 'z' => task_var('y') + '-c' }\n",
        ),
        ("tasks/task_b/task.bash", "echo 'task B'\n"),
        (
            "tasks/task_c/task.pl",
            "print 'task C z=', task_var('z'), \"\\n\";\n",
        ),
        ("task.pl", "print \"OK\\n\";\n"),
    ]);
    let o = t.run();
    assert_eq!(o.status, Status::Passed, "{}", shown(&o));
    assert_in_order(
        &o,
        &[
            "task C z=1-b-c",
            "task B",
            "[hook stdout]",
            "A hook got 1",
            "task A",
            "[hook stdout]",
            "CASCADE",
            "[task run: task.pl - .]",
            "OK",
        ],
    );
    // The root's output: its hook's line, then its task's; the sub-tasks'
    // output was theirs.
    assert_eq!(o.stdout, vec!["CASCADE", "OK"]);
}

#[test]
fn ignore_error_forgives_the_next_task_in_every_language() {
    let hooks = [
        ("hook.bash", "ignore_error\n"),
        ("hook.bash", "ignore_task_error\n"),
        ("hook.py", "from sparrow6lib import *\nignore_error()\n"),
        (
            "hook.py",
            "from sparrow6lib import *\nignore_task_error()\n",
        ),
        ("hook.pl", "ignore_error();\n"),
        ("hook.rb", "ignore_error\n"),
    ];
    for (hook, code) in hooks {
        let t = Task::with(&[
            (hook, code),
            ("task.bash", "echo before\necho bad >&2\nexit 3\n"),
        ]);
        let o = t.run();
        assert_eq!(o.status, Status::Passed, "{hook} {code}: {}", shown(&o));
        // Its stderr is still shown; no failure is reported.
        assert_in_order(&o, &["before", "[task stderr]", "bad"]);
        assert!(
            !plain(&o).iter().any(|l| l.contains("exit status")),
            "{}",
            shown(&o)
        );
    }
}

#[test]
fn ignore_error_is_used_up_by_the_next_task_that_finishes() {
    // Before run_task, it forgives that sub-task, and only it.
    let t = Task::with(&[
        ("hook.bash", "ignore_error\nrun_task fail\nrun_task fail\n"),
        ("tasks/fail/task.bash", "echo failing\nexit 4\n"),
    ]);
    let o = t.run();
    assert_eq!(o.status, Status::TaskFailed(4), "{}", shown(&o));
    assert_eq!(count_line(&o, "failing"), 2, "{}", shown(&o));
    assert_eq!(count_line(&o, "task exit status: 4"), 1, "{}", shown(&o));

    // Used up by the sub-task, so the hook's own task is not forgiven.
    let t = Task::with(&[
        (
            "hook.py",
            "from sparrow6lib import *\nignore_error()\nrun_task('fail')\n",
        ),
        ("tasks/fail/task.bash", "exit 4\n"),
        ("task.bash", "exit 5\n"),
    ]);
    let o = t.run();
    assert_eq!(o.status, Status::TaskFailed(5), "{}", shown(&o));
}

#[test]
fn a_failing_hook_ends_the_run_with_101_and_shows_what_it_printed() {
    let t = Task::with(&[
        ("hook.bash", "echo visible-out\necho oops >&2\nexit 3\n"),
        ("task.bash", "touch \"$root_dir/ran\"\n"),
    ]);
    let o = t.run_opts(Options {
        name: "nm".into(),
        ..t.opts()
    });
    assert_eq!(o.status, Status::HookFailed(3), "{}", shown(&o));
    assert_eq!(o.status.exit_code(), 101);
    assert!(!t.root().join("ran").exists());
    assert_eq!(o.stderr, vec!["oops"]);
    assert_eq!(
        plain(&o),
        vec![
            "hook exit status: 3",
            "hook nm FAILED",
            "[hook stdout]",
            "visible-out",
            "[hook stderr]",
            "oops",
        ]
    );

    // A silent one: just the status lines.
    let t = Task::with(&[("hook.pl", "exit 6;\n")]);
    let o = t.run();
    assert_eq!(o.status, Status::HookFailed(6), "{}", shown(&o));
    assert_eq!(plain(&o), vec!["hook exit status: 6", "hook . FAILED"]);

    // ignore_error is for tasks, not hooks (its control line is shown).
    let t = Task::with(&[("hook.pl", "ignore_error();\nexit 6;\n")]);
    let o = t.run();
    assert_eq!(o.status, Status::HookFailed(6), "{}", shown(&o));
    assert_eq!(
        plain(&o),
        vec![
            "hook exit status: 6",
            "hook . FAILED",
            "[hook stdout]",
            "ignore_error:",
        ]
    );

    let t = Task::with(&[("hook.py", "raise ValueError('boom')\n")]);
    let o = t.run();
    assert_eq!(o.status, Status::HookFailed(1), "{}", shown(&o));
    assert!(has_line(&o, "ValueError: boom"), "{}", shown(&o));
    assert!(!has_line(&o, "[hook stdout]"), "{}", shown(&o));
}

#[test]
fn a_failing_hook_runs_none_of_the_sub_tasks_it_asked_for() {
    // A departure: Sparrow6 runs them, then reports the hook's failure.
    let t = Task::with(&[
        ("hook.bash", "run_task sub\nexit 4\n"),
        ("tasks/sub/task.bash", "echo sub ran\n"),
    ]);
    let o = t.run();
    assert_eq!(o.status, Status::HookFailed(4), "{}", shown(&o));
    assert!(!plain(&o).iter().any(|l| l == "sub ran"), "{}", shown(&o));
}

#[test]
fn a_failing_sub_task_ends_the_run_there() {
    let t = Task::with(&[
        ("hook.rb", "run_task 'bad'\nrun_task 'good'\n"),
        ("tasks/bad/task.bash", "echo nope >&2\nexit 3\n"),
        ("tasks/good/task.bash", "touch \"$root_dir/good\"\n"),
        ("task.bash", "touch \"$root_dir/main\"\n"),
    ]);
    let o = t.run();
    assert_eq!(o.status, Status::TaskFailed(3), "{}", shown(&o));
    assert_eq!(o.stderr, vec!["nope"]);
    assert!(!t.root().join("good").exists());
    assert!(!t.root().join("main").exists());
}

#[test]
fn control_lines_must_start_the_line() {
    // A deliberate departure: Sparrow6 matched `task: NAME` anywhere in a
    // line, so `echo "my task: sub"` ran tasks/sub.
    let t = Task::with(&[
        (
            "hook.bash",
            "echo 'my task: sub'\necho 'no ignore_error: here'\n",
        ),
        ("tasks/sub/task.bash", "echo sub ran\n"),
        ("task.bash", "exit 2\n"),
    ]);
    let o = t.run();
    assert_eq!(o.status, Status::TaskFailed(2), "{}", shown(&o));
    assert!(!has_line(&o, "sub ran"), "{}", shown(&o));
}
