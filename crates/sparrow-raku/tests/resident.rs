//! The resident worker against the real `raku`: subs called by reference,
//! runtime functions answered by the caller, errors and hangs contained.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sparrow_lang::Facts;
use sparrow_raku::resident::Resident;

fn facts() -> Facts {
    sparrow_lang::FixedHost::debian().facts
}

const DEF: &str = r#"use Sparrow6::DSL;
task-run "shop", "systemd", %(
    start => "/bin/true",
    hooks => %(
        resource-check => sub { %( memory-max => (get-available-memory() div 2), cpu-weight => 50 ) },
        pre-start => sub { die "no config here" },
    ),
    pressure-response => sub ($event) {
        given $event<type> {
            when "memory-pressure" { %( memory-max => 1.GB ) }
            default { %() }
        }
    },
    health-check => %( type => "exec", command => "/bin/true",
        on-failure => sub { my %r = task-run "notify", "webhook", %( url => "http://x/" ); %r<status> } ),
    monitoring => %( resource-check => sub { loop { } } ),
    adaptive-resources => %( strategy => sub ($s) { exit 9 } ),
);
"#;

fn setup() -> (tempfile::TempDir, PathBuf, Resident) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shop.raku");
    fs::write(&path, DEF).unwrap();
    let raku = sparrow_raku::find_raku(&|k| std::env::var(k).ok())
        .expect("raku is needed (Debian: apt-get install rakudo)");
    let r = Resident::new(raku, facts(), Duration::from_secs(3));
    (dir, path, r)
}

fn keys(k: &[&str]) -> Vec<String> {
    k.iter().map(|s| s.to_string()).collect()
}

fn call(
    r: &mut Resident,
    path: &Path,
    k: &[&str],
    args: &[Value],
    seen: &mut Vec<(String, Vec<Value>)>,
) -> Result<Value, String> {
    let mut cb = |name: &str, args: Vec<Value>| {
        seen.push((name.to_string(), args.clone()));
        match name {
            "available_memory" => Ok(json!(1000)),
            "task_run" => Ok(json!({"status": "sent"})),
            other => Err(format!("{other} is not here")),
        }
    };
    r.call(path, "shop", &keys(k), args, &mut cb)
}

#[test]
fn subs_run_in_one_process_and_call_back_for_runtime_functions() {
    let (_dir, path, mut r) = setup();
    r.warm().unwrap();
    let pid = r.pid();
    let mut seen = Vec::new();
    let v = call(&mut r, &path, &["hooks", "resource-check"], &[], &mut seen).unwrap();
    assert_eq!(v, json!({"memory-max": 500, "cpu-weight": 50}));
    assert_eq!(seen, vec![("available_memory".to_string(), vec![])]);
    let v = call(
        &mut r,
        &path,
        &["pressure-response"],
        &[json!({"type": "memory-pressure"})],
        &mut seen,
    )
    .unwrap();
    assert_eq!(v, json!({"memory-max": 1u64 << 30}));
    let v = call(
        &mut r,
        &path,
        &["pressure-response"],
        &[json!({"type": "io-pressure"})],
        &mut seen,
    )
    .unwrap();
    assert_eq!(v, json!({}));
    // task-run inside a sub reaches the caller (our task runner there).
    seen.clear();
    let v = call(
        &mut r,
        &path,
        &["health-check", "on-failure"],
        &[],
        &mut seen,
    )
    .unwrap();
    assert_eq!(v, json!("sent"));
    assert_eq!(
        seen,
        vec![(
            "task_run".to_string(),
            vec![
                json!("notify"),
                json!("webhook"),
                json!({"url": "http://x/"})
            ]
        )]
    );
    // A sub's die is its call's error, with its line; the worker stays.
    let e = call(&mut r, &path, &["hooks", "pre-start"], &[], &mut seen).unwrap_err();
    assert_eq!(e, "no config here (line 6)");
    let e = call(&mut r, &path, &["start"], &[], &mut seen).unwrap_err();
    assert!(e.contains("is not a sub"), "{e}");
    assert_eq!(r.pid(), pid);
    assert_eq!(r.health().starts, 1);
}

#[test]
fn a_hung_or_crashed_worker_is_stopped_and_started_again_after_a_rest() {
    let (_dir, path, mut r) = setup();
    let mut seen = Vec::new();
    let t = Instant::now();
    let e = call(
        &mut r,
        &path,
        &["monitoring", "resource-check"],
        &[],
        &mut seen,
    )
    .unwrap_err();
    assert!(e.contains("did not answer within 3000 ms"), "{e}");
    assert!(t.elapsed() < Duration::from_secs(30));
    assert_eq!(r.pid(), None);
    // Resting: no new process at once.
    let e = call(&mut r, &path, &["hooks", "resource-check"], &[], &mut seen).unwrap_err();
    assert!(e.contains("resting"), "{e}");
    std::thread::sleep(Duration::from_millis(1100));
    assert!(call(&mut r, &path, &["hooks", "resource-check"], &[], &mut seen).is_ok());
    assert_eq!(r.health().starts, 2);
    // A sub that exits takes its process down, and only that.
    let e = call(
        &mut r,
        &path,
        &["adaptive-resources", "strategy"],
        &[json!({})],
        &mut seen,
    )
    .unwrap_err();
    assert!(e.contains("status 9"), "{e}");
    assert!(r
        .health()
        .last_failure
        .as_deref()
        .unwrap_or("")
        .contains("status 9"));
}
