//! Which script is the task and which the hook: Sparrow6's if/elsif chains
//! in `Runner.rakumod` (the first file that exists wins).

use sparrow_task::Status;

use crate::{has_line, plain, shown, Task};

#[test]
fn the_first_task_script_in_sparrow6s_order_runs_and_only_it() {
    // task.raku, task.pl6 come first (see raku.rs), then these.
    let order = [
        ("task.pl", "print \"perl\\n\";\n", "perl"),
        ("task.bash", "echo bash\n", "bash"),
        ("task.rb", "puts 'ruby'\n", "ruby"),
        ("task.py", "print('python')\n", "python"),
    ];
    let t = Task::new();
    for (file, code, _) in order {
        t.file(file, code);
    }
    for (file, _, lang) in order {
        let o = t.run();
        assert_eq!(o.status, Status::Passed, "{}", shown(&o));
        assert_eq!(o.stdout, vec![lang], "{}", shown(&o));
        assert!(
            has_line(&o, &format!("[task run: {file} - .]")),
            "{}",
            shown(&o)
        );
        assert_eq!(
            plain(&o)
                .iter()
                .filter(|l| l.starts_with("[task run:"))
                .count(),
            1
        );
        t.remove(file);
    }
    // Neither hook nor task: an error (Sparrow6 passes it, silently).
    let e = t.try_run_opts(t.opts()).unwrap_err().to_string();
    assert!(e.contains("no task script"), "{e}");
    // A hook with task.check but no task script: the checks would never run.
    t.file("hook.bash", "set_stdout x\n");
    t.file("task.check", "x\n");
    let e = t.try_run_opts(t.opts()).unwrap_err().to_string();
    assert!(e.contains("task.check would never run"), "{e}");
}

#[test]
fn the_first_hook_in_sparrow6s_order_runs_job_files_included() {
    let order = [
        ("hook.pl", "set_stdout('hook.pl');\n"),
        ("job.pl", "set_stdout('job.pl');\n"),
        ("hook.bash", "set_stdout hook.bash\n"),
        ("job.bash", "set_stdout job.bash\n"),
        ("hook.rb", "set_stdout 'hook.rb'\n"),
        ("job.rb", "set_stdout 'job.rb'\n"),
        (
            "hook.py",
            "from sparrow6lib import *\nset_stdout('hook.py')\n",
        ),
        (
            "job.py",
            "from sparrow6lib import *\nset_stdout('job.py')\n",
        ),
    ];
    let t = Task::new();
    for (file, code) in order {
        t.file(file, code);
    }
    for (file, _) in order {
        // A hook without a task: just the hook (and what it set).
        let o = t.run();
        assert_eq!(o.status, Status::Passed, "{file}: {}", shown(&o));
        assert_eq!(o.stdout, vec![file], "{}", shown(&o));
        assert_eq!(plain(&o), vec!["[hook stdout]", file]);
        t.remove(file);
    }
}

#[test]
fn a_go_powershell_or_php_script_keeps_its_place_and_is_refused() {
    // Sparrow6 would run task.go (it comes before task.py): running the
    // Python one instead would run what Sparrow6 never would.
    let t = Task::with(&[
        ("task.go", "package main\n"),
        ("task.py", "open('ran', 'w').write('x')\n"),
    ]);
    let o = t.run();
    assert_eq!(o.status, Status::Unsupported("task.go".into()));
    assert_eq!(o.status.exit_code(), 1);
    assert!(!t.root().join("ran").exists());
    assert!(o.transcript.iter().any(|l| l.contains("task.go")));

    // hook.go comes before hook.rb: nothing runs, not even the task.
    let t = Task::with(&[
        ("hook.go", "package main\n"),
        ("hook.rb", "set_stdout 'ruby hook'\n"),
        ("task.bash", "touch \"$root_dir/ran\"\n"),
    ]);
    let o = t.run();
    assert_eq!(o.status, Status::Unsupported("hook.go".into()));
    assert!(!t.root().join("ran").exists());

    // task.php and hook.ps1 come after the Python ones, which run.
    let t = Task::with(&[
        ("task.php", "<?php echo 'php';\n"),
        ("task.py", "print('python')\n"),
        ("hook.ps1", "set_stdout 'ps'\n"),
        (
            "hook.py",
            "from sparrow6lib import *\nset_stdout('py hook')\n",
        ),
    ]);
    let o = t.run();
    assert_eq!(o.status, Status::Passed, "{}", shown(&o));
    assert_eq!(o.stdout, vec!["py hook", "python"]);
}

#[test]
fn a_missing_task_directory_is_an_error_not_an_outcome() {
    let t = Task::new();
    let gone = t.root().join("nope");
    let err = t.try_run_in(&gone).unwrap_err();
    assert!(matches!(err, sparrow_task::TaskError::NotFound(_)), "{err}");
    assert!(err.to_string().contains("nope"), "{err}");
}

#[test]
fn a_task_below_the_root_uses_the_roots_config_and_sub_tasks() {
    // Sparrow6's `root@path` notation: the directory run is root/path,
    // config.yaml and tasks/ still come from the root.
    let t = Task::with(&[
        ("config.yaml", "who: root-config\n"),
        ("birds/tiny/hook.bash", "run_task sing note la\n"),
        (
            "birds/tiny/task.bash",
            "echo \"tiny $(config who) $task_dir\"\n",
        ),
        ("tasks/sing/task.bash", "echo \"sing $note\"\n"),
    ]);
    let dir = t.root().join("birds/tiny");
    let o = t.try_run_in(&dir).unwrap();
    assert_eq!(o.status, Status::Passed, "{}", shown(&o));
    assert!(has_line(&o, "sing la"), "{}", shown(&o));
    assert_eq!(
        o.stdout,
        vec![format!("tiny root-config {}", dir.display())]
    );
}
