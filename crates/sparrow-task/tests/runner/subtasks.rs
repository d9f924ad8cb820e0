//! Sub-tasks: `run_task NAME ...` from a hook runs `ROOT/tasks/NAME` with
//! the parameters it was given, read there with `task_var` (and, in bash,
//! as plain variables), as documentation/development.md describes.

use serde_json::json;
use sparrow_task::{Options, Status};

use crate::{assert_in_order, count_line, has_line, plain, shown, Task};

#[test]
fn bash_run_task_passes_key_value_pairs() {
    let t = Task::with(&[
        (
            "hook.bash",
            "run_task greet name Alice greeting \"hello there\"\n",
        ),
        (
            "tasks/greet/task.bash",
            "echo \"$(task_var greeting), $(task_var name)!\"\necho \"$greeting, $name!\"\n",
        ),
    ]);
    let o = t.run();
    assert_eq!(o.status, Status::Passed, "{}", shown(&o));
    assert_eq!(count_line(&o, "hello there, Alice!"), 2, "{}", shown(&o));
}

#[test]
fn run_task_with_a_hash_in_python_perl_and_ruby() {
    let cases = [
        (
            "hook.py",
            "from sparrow6lib import *\nrun_task('greet', {'who': 'python', 'n': {'deep': 5}})\n",
            "tasks/greet/task.py",
            "from sparrow6lib import *\nprint('who=%s deep=%d keys=%s' % (task_var('who'), task_var('n')['deep'], ','.join(sorted(task_variables()))))\n",
            "who=python deep=5 keys=n,who",
        ),
        (
            "hook.pl",
            "run_task('greet', { who => 'perl', n => { deep => 6 } });\n",
            "tasks/greet/task.pl",
            "print 'who=', task_var('who'), ' deep=', task_var('n')->{deep}, ' keys=', join(',', sort keys %{ variables() }), \"\\n\";\n",
            "who=perl deep=6 keys=n,who",
        ),
        (
            "hook.rb",
            "run_task 'greet', { 'who' => 'ruby', 'n' => { 'deep' => 7 } }\n",
            "tasks/greet/task.rb",
            "puts \"who=#{task_var('who')} deep=#{task_var('n')['deep']} keys=#{task_variables.keys.sort.join(',')}\"\n",
            "who=ruby deep=7 keys=n,who",
        ),
    ];
    for (hook, hook_code, sub, sub_code, want) in cases {
        let t = Task::with(&[(hook, hook_code), (sub, sub_code)]);
        let o = t.run();
        assert_eq!(o.status, Status::Passed, "{hook}: {}", shown(&o));
        assert!(has_line(&o, want), "{hook}: {}", shown(&o));
    }
}

#[test]
fn parameters_cross_languages_nested_ones_by_dotted_path_in_bash() {
    // A Python hook's dict read by a bash sub-task, and bash's pairs read by
    // a Python one.
    let t = Task::with(&[
        (
            "hook.py",
            "from sparrow6lib import *\nrun_task('sh', {'n': {'deep': 5}, 'list': [1, 2], 'flag': True})\nrun_task('py')\n",
        ),
        (
            "tasks/sh/task.bash",
            "echo \"deep=$(task_var n.deep) list=$(task_var list) [$list] flag=$flag\"\n",
        ),
        ("tasks/py/hook.bash", "run_task deeper who bash\n"),
        (
            "tasks/deeper/task.py",
            "from sparrow6lib import *\nprint('who=' + task_var('who'))\n",
        ),
    ]);
    let o = t.run();
    assert_eq!(o.status, Status::Passed, "{}", shown(&o));
    assert_in_order(&o, &["deep=5 list=(1 2) [1 2] flag=True", "who=bash"]);
}

#[test]
fn sub_tasks_run_in_order_and_the_last_ones_vars_stay_set() {
    // Sparrow6 never resets the task vars after a sub-task: the hook's own
    // task sees the last sub-task's (and a top-level task has none).
    let t = Task::with(&[
        ("hook.bash", "run_task count x 1\nrun_task count x 2\n"),
        ("tasks/count/task.bash", "echo \"x=$x\"\n"),
        ("task.bash", "echo \"main x=[$(task_var x)]\"\n"),
    ]);
    let o = t.run();
    assert_eq!(o.status, Status::Passed, "{}", shown(&o));
    assert_in_order(&o, &["x=1", "x=2", "main x=[2]"]);

    let t = Task::with(&[("task.bash", "echo \"top x=[$(task_var x)] [$x]\"\n")]);
    let o = t.run_params(json!({"x": "a param, not a task var"}));
    assert_eq!(o.stdout, vec!["top x=[] []"], "{}", shown(&o));
}

#[test]
fn names_may_have_slashes_and_headers_keep_the_top_name() {
    let t = Task::with(&[
        ("hook.bash", "run_task group/one\nrun_task group/two\n"),
        ("tasks/group/one/task.bash", "echo one\n"),
        ("tasks/group/two/task.rb", "puts 'two'\n"),
        ("task.bash", "echo main\n"),
    ]);
    let o = t.run_opts(Options {
        name: "deploy app".into(),
        ..t.opts()
    });
    assert_eq!(o.status, Status::Passed, "{}", shown(&o));
    assert_in_order(
        &o,
        &[
            "[task run: task.bash - deploy app]",
            "one",
            "[task run: task.rb - deploy app]",
            "two",
            "[task run: task.bash - deploy app]",
            "main",
        ],
    );
    assert_eq!(
        plain(&o)
            .iter()
            .filter(|l| l.starts_with("[task run:"))
            .count(),
        3
    );
}

#[test]
fn a_missing_sub_task_fails_the_hook() {
    // Sparrow6 runs nothing and passes; a typo would then pass for ever.
    let t = Task::with(&[
        ("hook.bash", "run_task not-there\n"),
        ("task.bash", "echo main\n"),
    ]);
    let o = t.run();
    assert_eq!(o.status, Status::HookFailed(1), "{}", shown(&o));
    assert!(
        plain(&o)
            .iter()
            .any(|l| l.contains("task: not-there: no such sub-task")),
        "{}",
        shown(&o)
    );
    assert!(!plain(&o).iter().any(|l| l == "main"));
}

#[test]
fn a_sub_task_is_found_under_the_root_whichever_hook_asks() {
    // examples/tasks/cascade_hooks: tasks/task_a's hook runs "task_b",
    // which is ROOT/tasks/task_b, not tasks/task_a/tasks/task_b.
    let t = Task::with(&[
        ("hook.bash", "run_task task_a\n"),
        ("tasks/task_a/hook.bash", "run_task task_b\n"),
        ("tasks/task_a/task.bash", "echo 'task A'\n"),
        ("tasks/task_b/task.bash", "echo 'task B'\n"),
        ("tasks/task_a/tasks/task_b/task.bash", "echo WRONG\n"),
    ]);
    let o = t.run();
    assert_eq!(o.status, Status::Passed, "{}", shown(&o));
    assert_in_order(&o, &["task B", "task A"]);
    assert!(!has_line(&o, "WRONG"), "{}", shown(&o));
}
