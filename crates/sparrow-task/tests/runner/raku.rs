//! Raku scripts (when `raku` is installed; it starts slowly, so few runs).

use std::process::{Command, Stdio};

use serde_json::json;
use sparrow_task::Status;

use crate::{assert_in_order, os_id, shown, Task};

fn have_raku() -> bool {
    let found = Command::new("raku")
        .arg("-e")
        .arg("")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        eprintln!("note: raku is not on PATH, the Raku tests are skipped");
    }
    found
}

#[test]
fn a_raku_hook_and_a_raku_task() {
    if !have_raku() {
        return;
    }
    let t = Task::with(&[
        ("config.yaml", "main:\n  port: 80\n  host: here\n"),
        // task.raku comes first in Sparrow6's order.
        ("task.pl", "print \"perl\\n\";\n"),
        (
            "hook.raku",
            "set_stdout('raku hook on ' ~ os());\nignore_error();\nrun_task('fail');\nrun_task('sub', %( who => 'raku', n => %( deep => 5 ) ));\n",
        ),
        ("tasks/fail/task.bash", "exit 4\n"),
        (
            "tasks/sub/task.bash",
            "echo \"sub who=$(task_var who) deep=$(task_var n.deep)\"\n",
        ),
        (
            "task.raku",
            "say 'port=' ~ config()<main><port> ~ ' host=' ~ config()<main><host>;\nsay 'root=' ~ root_dir() ~ ' cache=' ~ cache_dir().IO.basename;\nupdate_state(%( lang => 'raku', port => config()<main><port> ));\n",
        ),
    ]);
    let o = t.run_params(json!({"main": {"port": 8080}}));
    assert_eq!(o.status, Status::Passed, "{}", shown(&o));
    assert_in_order(
        &o,
        &[
            "sub who=raku deep=5",
            "[hook stdout]",
            "[task run: task.raku - .]",
        ],
    );
    assert_eq!(
        o.stdout,
        vec![
            format!("raku hook on {}", os_id()),
            "port=8080 host=here".into(),
            format!("root={} cache=1", t.root().display()),
        ]
    );
    assert_eq!(o.state, json!({"lang": "raku", "port": 8080}));
}

#[test]
fn a_raku_sub_task_reads_its_vars_and_fails() {
    if !have_raku() {
        return;
    }
    let t = Task::with(&[
        ("hook.bash", "run_task sub who raku\n"),
        (
            "tasks/sub/task.raku",
            "say 'who=' ~ task_var('who') ~ ' dir=' ~ task_dir();\nnote 'raku err';\nexit 3;\n",
        ),
        ("task.bash", "touch \"$root_dir/ran\"\n"),
    ]);
    let o = t.run();
    assert_eq!(o.status, Status::TaskFailed(3), "{}", shown(&o));
    assert_eq!(
        o.stdout,
        vec![format!(
            "who=raku dir={}",
            t.root().join("tasks/sub").display()
        )]
    );
    assert_eq!(o.stderr, vec!["raku err"]);
    assert!(!t.root().join("ran").exists());
}
