//! State: `update_state` overwrites the run's state (no merge, the last
//! writer wins), `get_state` reads it, and the run returns it
//! (documentation/development.md, "Task states").

use serde_json::json;
use sparrow_task::Status;

use crate::{has_line, shown, Task};

#[test]
fn update_state_in_every_language_is_the_outcomes_state() {
    let cases = [
        // Bash's update_state takes a key and a value: a string.
        ("task.bash", "update_state cnt 100\n", json!({"cnt": "100"})),
        (
            "task.py",
            "from sparrow6lib import *\nupdate_state({'cnt': 100, 'list': [1, 'two'], 'm': {'k': None}})\n",
            json!({"cnt": 100, "list": [1, "two"], "m": {"k": null}}),
        ),
        (
            "task.pl",
            "update_state({ cnt => 100, list => [1, 'two'], m => { k => undef } });\n",
            json!({"cnt": 100, "list": [1, "two"], "m": {"k": null}}),
        ),
        (
            "task.rb",
            "update_state({ 'cnt' => 100, 'list' => [1, 'two'], 'm' => { 'k' => nil } })\n",
            json!({"cnt": 100, "list": [1, "two"], "m": {"k": null}}),
        ),
    ];
    for (file, code, want) in cases {
        let t = Task::with(&[(file, code)]);
        let o = t.run();
        assert_eq!(o.status, Status::Passed, "{file}: {}", shown(&o));
        assert_eq!(o.state, want, "{file}");
    }
}

#[test]
fn state_flows_through_a_pipeline_of_sub_tasks_in_four_languages() {
    // development.md's pipeline: each step reads the state and updates it.
    let t = Task::with(&[
        (
            "hook.py",
            "from sparrow6lib import *\nupdate_state({'foo': 1})\nrun_task('inc')\nrun_task('show')\nrun_task('times')\n",
        ),
        (
            "tasks/inc/task.pl",
            "my $s = get_state();\nupdate_state({ foo => $s->{foo} + 1 });\n",
        ),
        ("tasks/show/task.bash", "echo \"foo is $(get_state foo)\"\n"),
        (
            "tasks/times/task.py",
            "from sparrow6lib import *\ns = get_state()\nupdate_state({'foo': s['foo'] * 10})\n",
        ),
        (
            "task.rb",
            "s = get_state\nupdate_state({ 'foo' => s['foo'] + 1, 'by' => 'ruby' })\n",
        ),
    ]);
    let o = t.run();
    assert_eq!(o.status, Status::Passed, "{}", shown(&o));
    assert!(has_line(&o, "foo is 2"), "{}", shown(&o));
    assert_eq!(o.state, json!({"foo": 21, "by": "ruby"}));
}

#[test]
fn the_last_writer_wins_and_nothing_is_merged() {
    let t = Task::with(&[(
        "task.bash",
        "update_state a 1\nupdate_state b 2\necho \"a=[$(get_state a)] b=[$(get_state b)]\"\n",
    )]);
    let o = t.run();
    assert_eq!(o.state, json!({"b": "2"}), "{}", shown(&o));
    assert_eq!(o.stdout, vec!["a=[] b=[2]"]);
}

#[test]
fn no_update_state_is_an_empty_state() {
    let t = Task::with(&[("task.bash", "echo hi\n")]);
    let o = t.run();
    assert_eq!(o.state, json!({}));
}

#[test]
fn bash_update_state_writes_valid_json_whatever_the_value() {
    // Sparrow6 wrote `{"$1": "$2"}` unescaped; here quotes, backslashes and
    // newlines survive.
    let t = Task::with(&[(
        "task.bash",
        "update_state msg \"say \\\"hi\\\" \\\\ back\n2nd line\"\n",
    )]);
    let o = t.run();
    assert_eq!(o.status, Status::Passed, "{}", shown(&o));
    assert_eq!(o.state, json!({"msg": "say \"hi\" \\ back\n2nd line"}));
}

#[test]
fn the_state_left_before_a_failure_is_returned() {
    let t = Task::with(&[(
        "task.py",
        "from sparrow6lib import *\nupdate_state({'step': 1})\nraise SystemExit(3)\n",
    )]);
    let o = t.run();
    assert_eq!(o.status, Status::TaskFailed(3));
    assert_eq!(o.state, json!({"step": 1}));
}
