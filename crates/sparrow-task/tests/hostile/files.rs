//! Files that try to hang or exhaust a reader (FIFOs, devices, huge or
//! deeply nested documents), parameters nested without end, and sub-task
//! names that try to leave the task's root.

use std::os::unix::fs::symlink;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sparrow_task::search::SearchPath;
use sparrow_task::{RunOptions, Status, TaskError};

use crate::{mkfifo, said, shown, within, Task};

fn config_error(r: Result<sparrow_task::Outcome, TaskError>) -> String {
    match r {
        Err(TaskError::Config(m)) => m,
        Err(e) => panic!("another error: {e}"),
        Ok(o) => panic!("it ran: {}", shown(&o)),
    }
}

#[test]
fn a_config_that_is_a_fifo_a_device_or_huge_is_refused_unread() {
    // A FIFO blocked the reader forever; /dev/zero filled its memory.
    let t = Task::with(&[("task.bash", "echo hi\n")]);
    let yaml = t.root().join("config.yaml");
    mkfifo(&yaml);
    let m = config_error(t.try_run(t.opts()));
    assert!(
        m.contains("config.yaml: a FIFO: only regular files are read"),
        "{m}"
    );
    std::fs::remove_file(&yaml).unwrap();
    symlink("/dev/zero", t.root().join("config.json")).unwrap();
    let m = config_error(t.try_run(t.opts()));
    assert!(m.contains("config.json: a device"), "{m}");
    std::fs::remove_file(t.root().join("config.json")).unwrap();
    let big = format!("a: \"{}\"\n", "x".repeat(17 << 20));
    t.file("config.yaml", &big);
    let m = config_error(t.try_run(t.opts()));
    assert!(m.contains("larger than 16 MiB"), "{m}");
}

#[test]
fn deeply_nested_or_exploding_documents_are_refused_quickly() {
    let t = Task::with(&[("task.bash", "echo hi\n")]);
    let cases = [
        // Flow nesting: the YAML parser took minutes (quadratic) before
        // its own depth limit stopped it.
        (
            "config.yaml",
            format!("a: {}{}\n", "[".repeat(100_000), "]".repeat(100_000)),
            "nest",
        ),
        (
            "config.yaml",
            format!("a: {}1{}\n", "{b: ".repeat(50_000), "}".repeat(50_000)),
            "nest",
        ),
        (
            "config.json",
            format!("{{\"a\": {}{}}}", "[".repeat(100_000), "]".repeat(100_000)),
            "recursion limit",
        ),
        (
            "config.yaml",
            {
                let mut s = String::from("a: &a [x, x, x, x, x, x, x, x, x]\n");
                for (p, c) in "abcdefghijklmno".chars().zip("bcdefghijklmnop".chars()) {
                    s.push_str(&format!(
                        "{c}: &{c} [{}]\n",
                        vec![format!("*{p}"); 9].join(", ")
                    ));
                }
                s
            },
            "repetition limit",
        ),
    ];
    for (file, text, why) in cases {
        t.file(file, &text);
        let start = Instant::now();
        let m = config_error(t.try_run(t.opts()));
        assert!(m.contains(file) && m.contains(why), "{m}");
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{file}: {:?}",
            start.elapsed()
        );
        std::fs::remove_file(t.root().join(file)).unwrap();
    }
    // Deep but legal: still read.
    t.file(
        "config.yaml",
        &format!("a: {}1{}\n", "[".repeat(100), "]".repeat(100)),
    );
    assert_eq!(t.run(Value::Null).status, Status::Passed);
}

#[test]
fn parameters_nested_without_end_are_an_error_not_a_crash() {
    // 100,000 levels (a CLI key a.a.a...=1, a closure's map in a loop):
    // merging, flattening, even dropping them overflowed the stack.
    let t = Task::with(&[("task.bash", "echo hi\n")]);
    let root = t.root().display().to_string();
    let cache = t.opts().cache_base;
    let m = within(20, move || {
        // (Not json!: it would serialize the inner value again, deeply.)
        let mut v = json!(1);
        for _ in 0..100_000 {
            let mut m = serde_json::Map::new();
            m.insert("a".into(), v);
            v = Value::Object(m);
        }
        let opts = RunOptions {
            cache_base: cache,
            ..RunOptions::default()
        };
        let search = SearchPath::new(vec![]);
        let r = sparrow_task::task_run(
            &search,
            "d",
            &root,
            v,
            &opts,
            &mut sparrow_task::runner::Silent,
        );
        match r {
            Err(e) => e.to_string(),
            Ok(o) => format!("ran: {:?}", o.status),
        }
    });
    assert_eq!(
        m,
        "configuration: the parameters nest more than 128 levels deep"
    );
    let deep = (0..128).fold(json!(1), |v, _| json!({ "a": v }));
    assert_eq!(t.run(deep).status, Status::Passed);
}

#[test]
fn a_sparrow_json_or_flags_file_that_is_a_fifo_is_refused() {
    let base = tempfile::tempdir().unwrap();
    let p = base.path().join("plug");
    std::fs::create_dir(&p).unwrap();
    std::fs::write(p.join("task.bash"), "echo hi\n").unwrap();
    mkfifo(&p.join("sparrow.json"));
    let search = SearchPath::new(vec![base.path().into()]);
    let m = within(10, move || match search.resolve("plug") {
        Err(e) => e.to_string(),
        Ok(f) => format!("found {f:?}"),
    });
    assert!(m.contains("sparrow.json: a FIFO"), "{m}");

    let flags = base.path().join("flags.json");
    mkfifo(&flags);
    let f = flags.display().to_string();
    let o = within(10, move || {
        let search = SearchPath::new(vec![]);
        let params = json!({ "file": f });
        sparrow_task::task_run(
            &search,
            "d",
            "feature-flags",
            params,
            &RunOptions::default(),
            &mut sparrow_task::runner::Silent,
        )
        .unwrap()
    });
    assert_eq!(o.status, Status::TaskFailed(1));
    assert!(
        o.stderr.iter().any(|l| l.contains("a FIFO")),
        "{:?}",
        o.stderr
    );
}

#[test]
fn sub_task_names_stay_under_the_roots_tasks() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(
        outside.path().join("task.bash"),
        "touch \"$task_dir/ran\"\necho OUTSIDE\n",
    )
    .unwrap();
    let abs = outside.path().canonicalize().unwrap().display().to_string();
    // An absolute name is under tasks/, as Sparrow6 joins the text
    // ("ROOT/tasks//abs"): Path::join replaced the whole path with it.
    let t = Task::with(&[
        ("hook.bash", &format!("echo 'task: {abs}'\n")),
        (&format!("tasks{abs}/task.bash"), "echo inside\n"),
    ]);
    let o = t.run(Value::Null);
    assert_eq!(o.status, Status::Passed, "{}", shown(&o));
    assert_eq!(o.stdout, Vec::<String>::new());
    assert!(said(&o, "inside") && !said(&o, "OUTSIDE"), "{}", shown(&o));

    // `..` and a symlink out of the root: refused, saying so.
    for (hook, link) in [("echo 'task: ../x'\n", false), ("echo 'task: out'\n", true)] {
        let t = Task::with(&[("hook.bash", hook), ("x/task.bash", "echo dotdot\n")]);
        if link {
            std::fs::create_dir_all(t.root().join("tasks")).unwrap();
            symlink(outside.path(), t.root().join("tasks/out")).unwrap();
        }
        let o = t.run(Value::Null);
        assert_eq!(o.status, Status::HookFailed(1), "{}", shown(&o));
        assert!(
            said(&o, "is not a sub-task: names stay inside"),
            "{}",
            shown(&o)
        );
        assert!(!said(&o, "OUTSIDE") && !said(&o, "dotdot"), "{}", shown(&o));
    }
    assert!(!outside.path().join("ran").exists());
}

#[test]
fn a_root_whose_real_path_is_not_utf8_is_refused_clearly() {
    // Reached through a symlink (a path given as text is UTF-8): its
    // script was named wrongly to bash ("No such file or directory").
    use std::os::unix::ffi::OsStrExt;
    let base = tempfile::tempdir().unwrap();
    let bad = base.path().join(std::ffi::OsStr::from_bytes(b"bad\xff"));
    std::fs::create_dir(&bad).unwrap();
    std::fs::write(bad.join("task.bash"), "echo hi\n").unwrap();
    let link = base.path().join("ok");
    symlink(&bad, &link).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let opts = sparrow_task::Options {
        cache_base: cache.path().into(),
        ..Default::default()
    };
    match sparrow_task::runner::run(&link, &link, &opts, &mut sparrow_task::runner::Silent) {
        Err(e @ TaskError::Io { .. }) => {
            let m = e.to_string();
            assert!(
                m.ends_with("bad\u{fffd}: a path that is not UTF-8 cannot be given to scripts"),
                "{m}"
            )
        }
        Err(e) => panic!("another error: {e}"),
        Ok(o) => panic!("it ran: {}", shown(&o)),
    }
}
