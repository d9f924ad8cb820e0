use sparrow_task::runner::{run, Options, Silent};
use sparrow_task::Status;
use std::fs;

#[test]
fn bash_task_with_hook_and_subtask() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    fs::write(r.join("config.yaml"), "name: world\nmain:\n  port: 80\n").unwrap();
    fs::write(
        r.join("hook.bash"),
        "set_stdout hook-line\nrun_task sub greeting hi\n",
    )
    .unwrap();
    fs::create_dir_all(r.join("tasks/sub")).unwrap();
    fs::write(
        r.join("tasks/sub/task.bash"),
        "echo sub says $(task_var greeting)\nupdate_state sub_ran yes\n",
    )
    .unwrap();
    fs::write(
        r.join("task.bash"),
        "echo hello $(config name) $(config main.port)\nupdate_state answer 42\n",
    )
    .unwrap();
    let opts = Options {
        params: serde_json::json!({"name": "you"}),
        ..Options::default()
    };
    let o = run(r, r, &opts, &mut Silent).unwrap();
    eprintln!("{}", o.transcript.join("\n"));
    assert_eq!(o.status, Status::Passed);
    assert!(
        o.transcript.iter().any(|l| l.ends_with("sub says hi")),
        "{:?}",
        o.transcript
    );
    assert!(
        o.stdout.iter().any(|l| l == "hello you 80"),
        "{:?}",
        o.stdout
    );
    assert_eq!(o.stdout[0], "hook-line");
    assert_eq!(o.state["answer"], "42");
}

#[test]
fn python_perl_ruby_tasks() {
    let cases = [
        (
            "task.py",
            "from sparrow6lib import *\nprint('hi', config()['name'])\nupdate_state({'x': 1})\n",
        ),
        (
            "task.pl",
            "print 'hi ', config()->{name}, \"\\n\";\nupdate_state({x => 1});\n",
        ),
        (
            "task.rb",
            "puts \"hi #{config['name']}\"\nupdate_state({'x' => 1})\n",
        ),
    ];
    for (file, body) in cases {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join(file), body).unwrap();
        let opts = Options {
            params: serde_json::json!({"name": "you"}),
            ..Options::default()
        };
        let o = run(d.path(), d.path(), &opts, &mut Silent).unwrap();
        eprintln!("{file}: {}", o.transcript.join("\n"));
        assert_eq!(o.status, Status::Passed, "{file}");
        assert_eq!(o.stdout, vec!["hi you"], "{file}");
        assert_eq!(o.state["x"], 1, "{file}");
    }
}
