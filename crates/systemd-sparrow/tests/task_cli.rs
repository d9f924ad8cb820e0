//! `systemd-sparrow task run|list`, run as a user would run them, with
//! real task scripts.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use assert_cmd::Command;
use serde_json::Value;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A task directory `dir/name` with these files.
fn task(dir: &Path, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let root = dir.join(name);
    fs::create_dir_all(&root).unwrap();
    for (f, body) in files {
        fs::write(root.join(f), body).unwrap();
    }
    root
}

/// The hello task of the examples: a default parameter and a script using it.
fn hello(dir: &Path, name: &str) -> PathBuf {
    task(
        dir,
        name,
        &[
            ("config.yaml", "name: world\n"),
            ("task.bash", "echo \"hello $(config name)\"\n"),
        ],
    )
}

/// `systemd-sparrow task ...` in `cwd`, plugins looked up in `plugins`
/// only (never the system's directories).
fn sparrow(cwd: &Path, plugins: &[&Path]) -> Command {
    let mut c = Command::cargo_bin("systemd-sparrow").unwrap();
    let path = std::env::join_paths(plugins).unwrap();
    c.current_dir(cwd)
        .env("SPARROW_PLUGIN_PATH", path)
        .env("SP6_LOG_NO_TIMESTAMPS", "1")
        .env_remove("SP6_FORMAT_TERSE")
        .env_remove("SP6_KEEP_CACHE")
        .arg("task");
    c
}

fn run(c: &mut Command) -> Output {
    c.output().unwrap()
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(&o.stdout)))
}

#[test]
fn a_directory_runs_with_its_defaults() {
    let t = tempfile::tempdir().unwrap();
    hello(t.path(), "dir");
    let o = run(sparrow(t.path(), &[]).args(["run", "./dir"]));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(out.lines().any(|l| l == "hello world"), "{out}");
    assert!(out.contains("[task stdout]"), "{out}");
}

#[test]
fn parameters_override_the_defaults() {
    let t = tempfile::tempdir().unwrap();
    hello(t.path(), "dir");
    let o = run(sparrow(t.path(), &[]).args(["run", "./dir", "name=you"]));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(text(&o.stdout).lines().any(|l| l == "hello you"));

    // Dotted keys nest; JSON values stay JSON.
    task(
        t.path(),
        "nested",
        &[
            ("config.yaml", "main:\n  port: 80\n  host: web\n"),
            (
                "task.bash",
                "echo \"$(config main.host):$(config main.port) $(config list)\"\n",
            ),
        ],
    );
    let abs = t.path().join("nested");
    let o = run(sparrow(t.path(), &[]).args([
        "run",
        abs.to_str().unwrap(),
        "main.port=8080",
        "list=[1,2]",
    ]));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(out.lines().any(|l| l == "web:8080 (1 2)"), "{out}");

    let o = run(sparrow(t.path(), &[]).args(["run", "./dir", "oops"]));
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("KEY=VALUE"), "{}", text(&o.stderr));
}

#[test]
fn a_failing_task_exits_with_its_code() {
    let t = tempfile::tempdir().unwrap();
    task(t.path(), "fail", &[("task.bash", "echo before\nexit 3\n")]);
    let o = run(sparrow(t.path(), &[]).args(["run", "./fail"]));
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stdout));
    assert!(text(&o.stdout).contains("FAILED"), "{}", text(&o.stdout));
}

#[test]
fn json_prints_one_object_with_the_state() {
    let t = tempfile::tempdir().unwrap();
    task(
        t.path(),
        "st",
        &[(
            "task.bash",
            "echo one\necho oops >&2\nupdate_state result \"$(config word)\"\n",
        )],
    );
    let o = run(sparrow(t.path(), &[]).args(["run", "./st", "word=fine", "--json"]));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let v = json(&o);
    assert_eq!(v["status"], "passed");
    assert_eq!(v["exit_code"], 0);
    assert_eq!(v["state"], serde_json::json!({"result": "fine"}));
    assert_eq!(v["stdout"], serde_json::json!(["one"]));
    assert_eq!(v["stderr"], serde_json::json!(["oops"]));
    assert_eq!(v["check_errors"], 0);

    task(t.path(), "fail", &[("task.bash", "exit 3\n")]);
    let o = run(sparrow(t.path(), &[]).args(["run", "--json", "./fail"]));
    assert_eq!(o.status.code(), Some(3));
    let v = json(&o);
    assert_eq!(
        (v["status"].as_str(), v["exit_code"].as_i64()),
        (Some("task-failed"), Some(3))
    );
}

#[test]
fn an_installed_plugin_is_found_by_name_and_listed() {
    let t = tempfile::tempdir().unwrap();
    let (admin, hub) = (t.path().join("admin"), t.path().join("hub"));
    let p = hello(&admin, "greeter");
    fs::write(
        p.join("sparrow.json"),
        r#"{"name": "greeter", "version": "1.0.2", "description": "says hello", "category": "x"}"#,
    )
    .unwrap();
    task(&hub, "greeter", &[("task.bash", "echo from the hub\n")]);
    let dirs: [&Path; 2] = [&admin, &hub];

    let o = run(sparrow(t.path(), &dirs).args(["run", "greeter", "name=plugin"]));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(out.lines().any(|l| l == "hello plugin"), "{out}");
    assert!(out.contains("- greeter]"), "{out}");

    let o = run(sparrow(t.path(), &dirs).args(["run", "greeter", "--desc", "say it"]));
    assert!(text(&o.stdout).contains("- say it]"), "{}", text(&o.stdout));

    let o = run(sparrow(t.path(), &dirs).arg("list"));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    let rows: Vec<&str> = out.lines().filter(|l| l.starts_with("greeter ")).collect();
    assert_eq!(rows.len(), 2, "{out}");
    assert!(
        rows[0].contains("1.0.2") && rows[0].contains("says hello"),
        "{out}"
    );
    assert!(
        !rows[0].contains("(shadowed)") && rows[1].contains("(shadowed)"),
        "{out}"
    );

    let o = run(sparrow(t.path(), &dirs).args(["list", "--json"]));
    let v = json(&o);
    let mine: Vec<&Value> = v
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["name"] == "greeter")
        .collect();
    assert_eq!(mine.len(), 2);
    assert_eq!(mine[0]["version"], "1.0.2");
    assert_eq!(mine[0]["origin"], p.display().to_string());
    assert_eq!(
        (&mine[0]["shadowed"], &mine[1]["shadowed"]),
        (&Value::Bool(false), &Value::Bool(true))
    );
}

#[test]
fn an_unknown_plugin_exits_1_naming_where_it_looked() {
    let t = tempfile::tempdir().unwrap();
    let (a, b) = (t.path().join("a"), t.path().join("b"));
    let o = run(sparrow(t.path(), &[&a, &b]).args(["run", "no-such-plugin"]));
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(err.contains(&a.display().to_string()), "{err}");
    assert!(err.contains(&b.display().to_string()), "{err}");
    assert!(err.contains("task list"), "{err}");

    for bad in ["a/b", "x y"] {
        let o = run(sparrow(t.path(), &[&a]).args(["run", bad]));
        assert_eq!(o.status.code(), Some(1));
        assert!(
            text(&o.stderr).contains("not a plugin name"),
            "{}",
            text(&o.stderr)
        );
    }
    let o = run(sparrow(t.path(), &[&a]).args(["run", "./missing"]));
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("no such task directory"));
}

#[test]
fn a_timeout_kills_the_task_and_exits_124() {
    let t = tempfile::tempdir().unwrap();
    task(
        t.path(),
        "slow",
        &[("task.bash", "echo started\nsleep 10\n")],
    );
    let start = Instant::now();
    let o = run(sparrow(t.path(), &[]).args(["run", "./slow", "--timeout", "0.5s"]));
    let took = start.elapsed();
    assert_eq!(o.status.code(), Some(124), "{}", text(&o.stdout));
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(text(&o.stdout).contains("timed out"), "{}", text(&o.stdout));

    // The reserved parameter does the same (and does not reach the task).
    let start = Instant::now();
    let o = run(sparrow(t.path(), &[]).args(["run", "./slow", "task_timeout=500ms", "--json"]));
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!(json(&o)["status"], "timed-out");
    assert_eq!(o.status.code(), Some(124));

    let o = run(sparrow(t.path(), &[]).args(["run", "./slow", "--timeout", "soon"]));
    assert_eq!(o.status.code(), Some(2), "clap refuses a bad duration");
}

#[test]
fn ctrl_c_stops_the_task_and_everything_it_started() {
    let t = tempfile::tempdir().unwrap();
    let pids = t.path().join("pids");
    task(
        t.path(),
        "long",
        &[(
            "task.bash",
            &format!(
                "sleep 300 & echo $! > {p}; echo $$ >> {p}; echo started; wait\n",
                p = pids.display()
            ),
        )],
    );
    let bin = assert_cmd::cargo::cargo_bin("systemd-sparrow");
    let mut child = std::process::Command::new(bin)
        .current_dir(t.path())
        .env("SPARROW_PLUGIN_PATH", t.path())
        .args(["task", "run", "./long"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while fs::read_to_string(&pids).map_or(0, |s| s.lines().count()) < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the task never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(start.elapsed() < Duration::from_secs(5));
    for pid in fs::read_to_string(&pids).unwrap().lines() {
        let pid: libc::pid_t = pid.trim().parse().unwrap();
        // Dead, or a zombie waiting for init (never still sleeping).
        let state = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let alive = state
            .rsplit(')')
            .next()
            .is_some_and(|s| !s.trim_start().starts_with('Z') && !s.is_empty());
        assert!(!alive, "pid {pid} survived: {state}");
    }
}

#[test]
fn json_is_one_object_even_when_the_task_cannot_run() {
    let t = tempfile::tempdir().unwrap();
    let o = run(sparrow(t.path(), &[t.path()]).args(["run", "no-such-plugin", "--json"]));
    assert_eq!(o.status.code(), Some(1));
    let v = json(&o);
    assert_eq!(v["status"], "error");
    assert!(
        v["error"].as_str().unwrap().contains("no-such-plugin"),
        "{v}"
    );
    // A run's object carries its transcript, the check report included.
    task(
        t.path(),
        "checked",
        &[
            ("task.bash", "echo ok\n"),
            ("task.check", "ok\nnot there\n"),
        ],
    );
    let o = run(sparrow(t.path(), &[t.path()]).args(["run", "./checked", "--json"]));
    assert_eq!(o.status.code(), Some(2));
    let v = json(&o);
    let transcript: Vec<&str> = v["transcript"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert!(
        transcript.contains(&"stdout match <not there> False"),
        "{v}"
    );
}
