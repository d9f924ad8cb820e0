//! Where a script is: `os`, `root_dir`, `task_dir`, `cache_root_dir`,
//! `cache_dir` (functions, or variables in bash), as Sparrow6's glue files
//! define them: task_dir is the script's own directory (absolute), the
//! cache root is one per run, cache_dir is `CACHE_ROOT/N` for nesting depth
//! N, and the cache root is removed after the run.

use std::path::{Path, PathBuf};

use sparrow_task::{Options, Status};

use crate::{os_id, plain, shown, Task};

/// `who|os|root|task_dir|cache_root|cache_dir` lines in each language, from
/// a hook (through set_stdout), a sub-task, and the main task.
fn where_cases() -> [[(&'static str, &'static str); 3]; 4] {
    [
        [
            (
                "hook.bash",
                "set_stdout \"hook|$os|$root_dir|$task_dir|$cache_root_dir|$cache_dir\"\nrun_task sub\n",
            ),
            (
                "tasks/sub/task.bash",
                "echo \"sub|$os|$root_dir|$task_dir|$cache_root_dir|$cache_dir\"\n",
            ),
            (
                "task.bash",
                "echo \"main|$os|$root_dir|$task_dir|$cache_root_dir|$cache_dir\"\n",
            ),
        ],
        [
            (
                "hook.py",
                "from sparrow6lib import *\nw = '|'.join([os(), root_dir(), task_dir(), cache_root_dir(), cache_dir()])\nset_stdout('hook|' + w)\nrun_task('sub')\n",
            ),
            (
                "tasks/sub/task.py",
                "from sparrow6lib import *\nprint('|'.join(['sub', os(), root_dir(), task_dir(), cache_root_dir(), cache_dir()]))\n",
            ),
            (
                "task.py",
                "from sparrow6lib import *\nprint('|'.join(['main', os(), root_dir(), task_dir(), cache_root_dir(), cache_dir()]))\n",
            ),
        ],
        [
            (
                "hook.pl",
                "set_stdout(join '|', 'hook', os(), root_dir(), task_dir(), cache_root_dir(), cache_dir());\nrun_task('sub');\n",
            ),
            (
                "tasks/sub/task.pl",
                "print join('|', 'sub', os(), root_dir(), task_dir(), cache_root_dir(), cache_dir()), \"\\n\";\n",
            ),
            (
                "task.pl",
                "print join('|', 'main', os(), root_dir(), task_dir(), cache_root_dir(), cache_dir()), \"\\n\";\n",
            ),
        ],
        [
            (
                "hook.rb",
                "set_stdout ['hook', os, root_dir, task_dir, cache_root_dir, cache_dir].join('|')\nrun_task 'sub'\n",
            ),
            (
                "tasks/sub/task.rb",
                "puts ['sub', os, root_dir, task_dir, cache_root_dir, cache_dir].join('|')\n",
            ),
            (
                "task.rb",
                "puts ['main', os, root_dir, task_dir, cache_root_dir, cache_dir].join('|')\n",
            ),
        ],
    ]
}

/// The fields of the transcript line starting with `who|`.
fn fields(lines: &[String], who: &str) -> Vec<String> {
    let prefix = format!("{who}|");
    let line = lines
        .iter()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no {who} line in {lines:#?}"));
    line.split('|').skip(1).map(String::from).collect()
}

#[test]
fn os_root_task_and_cache_dirs_in_every_language() {
    let os = os_id();
    for files in where_cases() {
        let t = Task::with(&files);
        let o = t.run();
        let lang = files[0].0;
        assert_eq!(o.status, Status::Passed, "{lang}: {}", shown(&o));
        let lines = plain(&o);
        let hook = fields(&lines, "hook");
        let sub = fields(&lines, "sub");
        let main = fields(&lines, "main");
        let root = t.root();
        for (who, f, task_dir) in [
            ("hook", &hook, root.clone()),
            ("sub", &sub, root.join("tasks/sub")),
            ("main", &main, root.clone()),
        ] {
            assert_eq!(f[0], os, "{lang} {who} os");
            assert_eq!(Path::new(&f[1]), root, "{lang} {who} root_dir");
            assert_eq!(Path::new(&f[2]), task_dir, "{lang} {who} task_dir");
            assert_eq!(f[3], hook[3], "{lang} {who}: one cache root per run");
        }
        let cache_root = PathBuf::from(&hook[3]);
        assert_eq!(cache_root.parent(), Some(t.cache_base()), "{lang}");
        // Depth 1 for the hook and the task after it, 2 for what the hook
        // runs (Sparrow6's module-level counter).
        assert_eq!(PathBuf::from(&hook[4]), cache_root.join("1"), "{lang}");
        assert_eq!(PathBuf::from(&sub[4]), cache_root.join("2"), "{lang}");
        assert_eq!(PathBuf::from(&main[4]), cache_root.join("1"), "{lang}");
        assert!(!cache_root.exists(), "{lang}: the cache root is removed");
    }
}

#[test]
fn bash_exports_os_and_the_cache_dirs_only() {
    // glue.bash: `export os`, `export cache_root_dir`, `export cache_dir`;
    // root_dir and task_dir are plain shell variables.
    let t = Task::with(&[(
        "task.bash",
        "bash -c 'echo \"[$os][${cache_dir#$cache_root_dir}][$root_dir][$task_dir]\"'\n",
    )]);
    let o = t.run();
    assert_eq!(
        o.stdout,
        vec![format!("[{}][/1][][]", os_id())],
        "{}",
        shown(&o)
    );
}

#[test]
fn the_cache_root_is_kept_on_request_with_the_merged_config_and_state() {
    let t = Task::with(&[
        ("config.yaml", "a: 1\nb: {c: 2}\n"),
        (
            "task.bash",
            "echo \"$cache_root_dir\"\nupdate_state done yes\n",
        ),
    ]);
    let o = t.run_opts(Options {
        keep_cache: true,
        params: serde_json::json!({"b": {"d": 3}}),
        ..t.opts()
    });
    assert_eq!(o.status, Status::Passed, "{}", shown(&o));
    let cache_root = PathBuf::from(&o.stdout[0]);
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cache_root.join("config.json")).unwrap()).unwrap();
    assert_eq!(config, serde_json::json!({"a": 1, "b": {"c": 2, "d": 3}}));
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cache_root.join("state.json")).unwrap()).unwrap();
    assert_eq!(state, serde_json::json!({"done": "yes"}));
    assert!(cache_root.join("1").is_dir());
}

#[test]
fn scripts_run_in_the_callers_directory_with_no_stdin() {
    // Sparrow6 chdirs to the caller's cwd, not to the task directory.
    let t = Task::with(&[
        (
            "task.bash",
            "pwd\nif read -r line; then echo \"read [$line]\"; else echo eof; fi\n",
        ),
        ("tasks/py/task.py", "import os\nprint(os.getcwd())\n"),
    ]);
    let o = t.run();
    let here = std::env::current_dir().unwrap();
    assert_eq!(Path::new(&o.stdout[0]), here, "{}", shown(&o));
    assert_eq!(o.stdout[1], "eof");

    let elsewhere = tempfile::tempdir().unwrap();
    let elsewhere = elsewhere.path().canonicalize().unwrap();
    t.file("hook.bash", "run_task py\n");
    let o = t.run_opts(Options {
        cwd: Some(elsewhere.clone()),
        ..t.opts()
    });
    assert_eq!(Path::new(&o.stdout[0]), elsewhere, "{}", shown(&o));
    assert!(
        plain(&o).contains(&elsewhere.display().to_string()),
        "the Python sub-task's cwd: {}",
        shown(&o)
    );
}
