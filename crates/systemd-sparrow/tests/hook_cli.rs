//! `systemd-sparrow hook run` as a command (no systemd needed: `--source`
//! names the definition): which declaration runs for an instance, unit
//! names that look like options, context, failures and their exit status.

use std::path::Path;
use std::process::Output;

use assert_cmd::Command;

fn hook(def: &Path, args: &[&str]) -> Output {
    Command::cargo_bin("systemd-sparrow")
        .unwrap()
        .arg("hook")
        .arg("run")
        .arg("--source")
        .arg(def)
        .args(args)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const DEF: &str = r#"
service("worker@", #{ exec_start: "/bin/true", hooks: #{ pre_start: |ctx| log(`template ${ctx.instance}`) } });
service("worker@3", #{ exec_start: "/bin/true", hooks: #{ pre_start: |ctx| log(`own ${ctx.unit}`) } });
service("-x", #{ exec_start: "/bin/true", hooks: #{ pre_start: |ctx| log(`dash ${ctx.name}`) } });
service("gate", #{ exec_start: "/bin/true", hooks: #{ pre_start: || false, post_stop: || throw "cleanup failed" } });
"#;

#[test]
fn instances_option_like_names_and_failures() {
    let d = tempfile::tempdir().unwrap();
    let def = d.path().join("w.sparrow");
    std::fs::write(&def, DEF).unwrap();

    // An instance declared on its own runs its own hook; others, the template's.
    let o = hook(&def, &["--", "worker@3.service", "pre_start"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(text(&o.stderr), "own worker@3.service\n");
    let o = hook(&def, &["--", "worker@7.service", "pre_start"]);
    assert_eq!(text(&o.stderr), "template 7\n");

    // A unit name starting with `-` (the generated lines put `--` first).
    let o = hook(&def, &["--", "-x.service", "pre_start"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(text(&o.stderr), "dash -x\n");

    // `false` and a thrown error: exit 1, the reason on stderr.
    let o = hook(&def, &["--", "gate.service", "pre_start"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("gate.service: pre_start failed: ")
            && text(&o.stderr).contains("the hook returned false"),
        "{}",
        text(&o.stderr)
    );
    let o = hook(&def, &["--", "gate.service", "post_stop"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("cleanup failed"),
        "{}",
        text(&o.stderr)
    );
    // A stage the unit does not have, and a unit the file does not declare.
    let o = hook(&def, &["--", "gate.service", "pre_stop"]);
    assert!(
        text(&o.stderr).contains("gate.service has no pre_stop hook"),
        "{}",
        text(&o.stderr)
    );
    let o = hook(&def, &["--", "other.service", "pre_start"]);
    assert!(
        text(&o.stderr).contains("does not declare other.service"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn a_fifo_in_place_of_the_generated_unit_is_refused_not_waited_on() {
    let d = tempfile::tempdir().unwrap();
    let gen = d.path().join("generator");
    std::fs::create_dir(&gen).unwrap();
    let fifo = gen.join("web.service");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo with a valid path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    let start = std::time::Instant::now();
    let e = sparrow_hook::source_of("web.service", &[gen]).unwrap_err();
    assert!(start.elapsed() < std::time::Duration::from_secs(5));
    assert!(e.contains("web.service"), "{e}");
}
