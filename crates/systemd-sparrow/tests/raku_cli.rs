//! Raku definitions through the command line (real `raku`; the test
//! command installs rakudo): the Sparrow6 spelling renders what the native
//! spelling renders, generation-time logic works, wrong values are errors
//! at the Raku file's line, and the CLI fills the translation cache.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/raku")
        .canonicalize()
        .unwrap()
}

fn sparrow(dir: &Path) -> Command {
    let facts = dir.join("facts.json");
    fs::write(
        &facts,
        r#"{"os": "debian", "os_version": "12", "hostname": "lab", "arch": "x86_64", "kernel": "6.1.0",
            "virtualization": "kvm", "memory_total": 8589934592, "cpu_count": 4}"#,
    )
    .unwrap();
    let mut c = Command::cargo_bin("systemd-sparrow").unwrap();
    c.env("SYSTEMD_SPARROW_FACTS", facts)
        .env("SYSTEMD_SPARROW_RAKU_CACHE", dir.join("cache"))
        .env_remove("SHOP_ENV");
    c
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn run(c: &mut Command) -> Output {
    c.output().unwrap()
}

/// The unit without its `SourcePath=` line.
fn unit_body(out: &str) -> String {
    out.lines()
        .filter(|l| !l.starts_with("SourcePath="))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_raku_spelling_renders_the_native_unit() {
    let tmp = tempfile::tempdir().unwrap();
    let raku = run(sparrow(tmp.path())
        .arg("render")
        .arg(examples().join("shop.raku")));
    let native = run(sparrow(tmp.path())
        .arg("render")
        .arg(examples().join("shop.sparrow")));
    assert_eq!(raku.status.code(), Some(0), "{}", text(&raku.stderr));
    assert_eq!(native.status.code(), Some(0), "{}", text(&native.stderr));
    let (r, n) = (text(&raku.stdout), text(&native.stdout));
    assert!(
        r.contains("ExecStartPre=/usr/bin/systemd-sparrow hook run -- %n pre_start"),
        "{r}"
    );
    assert!(
        r.contains("After=redis.service postgresql.service\n"),
        "{r}"
    );
    assert!(r.contains("Environment=\"RACK_ENV=production\"\n"), "{r}");
    assert!(r.contains("ExecStop=/bin/kill -TERM $MAINPID\n"), "{r}");
    assert_eq!(unit_body(&r), unit_body(&n));
}

#[test]
fn check_accepts_every_section_6_construct_in_the_example() {
    let tmp = tempfile::tempdir().unwrap();
    let o = run(sparrow(tmp.path())
        .arg("check")
        .arg(examples().join("shop.raku")));
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    // Errors none (warnings about units this host lacks, such as redis,
    // depend on the host).
    assert!(err.contains("1 unit(s), 0 error(s)"), "{err}");
    assert!(!err.contains('×'), "{err}");
    // The CLI kept the translation for the next boot's generator.
    let kept = fs::read_dir(tmp.path().join("cache")).unwrap().count();
    assert_eq!(kept, 1);
}

#[test]
fn generation_time_logic_sees_the_environment_and_the_facts() {
    let tmp = tempfile::tempdir().unwrap();
    let def = tmp.path().join("logic.raku");
    fs::write(
        &def,
        r#"my @after = do {
    my @a = "network-online.target";
    @a.push("fedora-only.service") if os() eq "fedora";
    @a.push("debian-only.service") if os() eq "debian";
    @a
};
for <a b> -> $n {
    task-run "logic-$n", "systemd", %( start => "/usr/bin/logic $n", after => @after );
}
task-run "extra", "systemd", %( start => "/bin/true" ) if %*ENV<LOGIC_EXTRA>;
"#,
    )
    .unwrap();
    let o = run(sparrow(tmp.path()).arg("render").arg(&def));
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(
        out.contains("# logic-a.service") && out.contains("# logic-b.service"),
        "{out}"
    );
    assert!(
        out.contains("After=network-online.target debian-only.service\n"),
        "{out}"
    );
    assert!(!out.contains("extra.service"), "{out}");
    let o = run(sparrow(tmp.path())
        .env("LOGIC_EXTRA", "1")
        .arg("render")
        .arg(&def));
    assert!(
        text(&o.stdout).contains("# extra.service"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn wrong_values_are_errors_at_the_task_run_line() {
    let tmp = tempfile::tempdir().unwrap();
    let def = tmp.path().join("wrong.raku");
    fs::write(
        &def,
        "\n\ntask-run \"wrong\", \"systemd\", %(\n    start => \"/bin/true\",\n    health-check => %( type => \"tcp\", port => 80, on-failure => 5 ),\n);\n",
    )
    .unwrap();
    let o = run(sparrow(tmp.path()).arg("check").arg(&def));
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("{}:3", def.display())), "{err}");
    assert!(
        err.contains("\"5\" is not one of: restart, alert, none"),
        "{err}"
    );
}
