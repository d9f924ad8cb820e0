//! `task_run` called from closures through the real runtime: task
//! directories run as processes, built-ins in-process, failures thrown as
//! catchable errors, the closure's deadline bounding the task, and
//! `feature-flags` at generation time.

use std::fs;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sparrow_host::runtime::{RealRuntime, Units};
use sparrow_host::RealHost;
use sparrow_lang::{Loader, NoModules};
use sparrow_task::search::SearchPath;

fn loader(plugins: &Path) -> Loader {
    let rt = RealRuntime::new(Units::default(), Arc::new(|_: &str, _: &str| {}))
        .with_plugins(SearchPath::new(vec![plugins.to_path_buf()]));
    let host = RealHost::from_facts(sparrow_lang::FixedHost::debian().facts);
    Loader::with_runtime(Rc::new(host), Arc::new(rt))
}

/// Calls the `resources` closure of `web.service` whose body is `body`;
/// its result as Rhai prints it, or the error message.
fn call(plugins: &Path, body: &str, limit: Duration) -> Result<String, String> {
    let l = loader(plugins);
    let def = format!(
        "service(\"web\", #{{ exec_start: \"/bin/true\", monitor: #{{ resources: || {{ {body} }} }} }});"
    );
    let loaded = l.load(Path::new("/defs/web.sparrow"), &def, Rc::new(NoModules));
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
    let c = loaded.units[0].runtime.monitor.resources.clone().unwrap();
    l.call(&c, vec![], "web.service", limit)
        .map(|d| format!("{d:?}"))
        .map_err(|e| e.diagnostic().message.clone())
}

fn plugin(dir: &Path, name: &str, script: &str) {
    let p = dir.join(name);
    fs::create_dir_all(&p).unwrap();
    fs::write(p.join("task.bash"), script).unwrap();
    fs::write(
        p.join("sparrow.json"),
        format!(r#"{{"name": "{name}", "version": "0.1.0", "description": "test"}}"#),
    )
    .unwrap();
}

#[test]
fn a_task_plugin_returns_its_state_and_data() {
    let d = tempfile::tempdir().unwrap();
    plugin(
        d.path(),
        "probe",
        "echo checked $(config target)\nupdate_state ok yes\n",
    );
    let out = call(
        d.path(),
        r#"let s = task_run("probe web", "probe", #{ target: "db" });
           if s.ok == "yes" && s.__data__.exit_code == 0 && s.__data__.stdout[0] == "checked db" { #{ tasks_max: 42 } } else { throw `unexpected ${s}` }"#,
        Duration::from_secs(10),
    )
    .unwrap();
    assert!(out.contains("42"), "{out}");
}

#[test]
fn a_failing_task_throws_its_code_and_stderr_and_can_be_caught() {
    let d = tempfile::tempdir().unwrap();
    plugin(d.path(), "broken", "echo 'disk on fire' >&2\nexit 3\n");
    let e = call(
        d.path(),
        r#"task_run("x", "broken", #{}); #{}"#,
        Duration::from_secs(10),
    )
    .unwrap_err();
    assert!(
        e.contains("exit code 3") && e.contains("disk on fire"),
        "{e}"
    );
    let out = call(
        d.path(),
        r#"let r = #{};
           try { task_run("x", "broken", #{}); } catch (err) { r = #{ tasks_max: err.exit_code, description: err.stderr }; }
           r"#,
        Duration::from_secs(10),
    )
    .unwrap();
    assert!(
        out.contains(r#""tasks_max": 3"#) && out.contains("disk on fire"),
        "{out}"
    );
}

#[test]
fn a_slow_task_is_killed_at_the_closures_deadline() {
    let d = tempfile::tempdir().unwrap();
    plugin(d.path(), "slow", "sleep 30\n");
    let start = Instant::now();
    let e = call(
        d.path(),
        r#"task_run("x", "slow", #{}); #{}"#,
        Duration::from_millis(500),
    )
    .unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    assert!(e.contains("timed out") || e.contains("wall-clock"), "{e}");
    // A per-call timeout shorter than the closure's limit.
    let start = Instant::now();
    let e = call(
        d.path(),
        r#"task_run("x", "slow", #{ task_timeout: "300ms" }); #{}"#,
        Duration::from_secs(10),
    )
    .unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    assert!(e.contains("timed out"), "{e}");
}

#[test]
fn built_ins_run_in_process_and_unknown_plugins_say_where_they_looked() {
    let d = tempfile::tempdir().unwrap();
    let out = call(
        d.path(),
        r#"let s = task_run("mem", "resource-monitor", #{}); #{ tasks_max: if s.memory_total > 0 { 1 } else { 0 } }"#,
        Duration::from_secs(10),
    )
    .unwrap();
    assert!(out.contains(r#""tasks_max": 1"#), "{out}");
    let e = call(
        d.path(),
        r#"task_run("x", "no-such-plugin", #{}); #{}"#,
        Duration::from_secs(10),
    )
    .unwrap_err();
    assert!(
        e.contains("no-such-plugin") && e.contains(&d.path().display().to_string()),
        "{e}"
    );
}

#[test]
fn feature_flags_at_generation_time_and_nothing_else() {
    let d = tempfile::tempdir().unwrap();
    let flags = d.path().join("flags.json");
    fs::write(&flags, r#"{"use-redis": true}"#).unwrap();
    let host = RealHost::from_facts(sparrow_lang::FixedHost::debian().facts);
    let l = Loader::new(Rc::new(host));
    let def = format!(
        r#"let f = task_run("flags", "feature-flags", #{{ file: "{}" }});
           service("web", #{{ exec_start: "/bin/true", after: if f["use-redis"] == true {{ ["redis.service"] }} else {{ [] }} }});
           let none = task_run("flags", "feature-flags", #{{ file: "{}/missing.json" }});
           service("api", #{{ exec_start: "/bin/true", description: `flags: ${{none.len()}}` }});"#,
        flags.display(),
        d.path().display()
    );
    let loaded = l.load(Path::new("/defs/web.sparrow"), &def, Rc::new(NoModules));
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
    let web = loaded
        .units
        .iter()
        .find(|u| u.name.as_str() == "web.service")
        .unwrap();
    assert!(format!("{web:?}").contains("redis.service"), "{web:?}");
    let api = loaded
        .units
        .iter()
        .find(|u| u.name.as_str() == "api.service")
        .unwrap();
    assert!(format!("{api:?}").contains("flags: 0"), "{api:?}");
    let loaded = l.load(
        Path::new("/defs/bad.sparrow"),
        r#"task_run("probe", "http-check", #{ url: "http://localhost/" });"#,
        Rc::new(NoModules),
    );
    let msg = &loaded.diagnostics[0].message;
    assert!(
        msg.contains("http-check") && msg.contains("generation time"),
        "{msg}"
    );
}
