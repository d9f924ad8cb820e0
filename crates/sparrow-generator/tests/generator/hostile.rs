//! Hostile input: definitions written to hurt the host. Each runs through
//! the real generator beside a good definition, and each must leave the
//! good unit written, exit 1 with a message naming the bad file, finish in
//! bounded time, and touch nothing outside the output directories.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use crate::{stderr, World};

const GOOD: &str =
    r#"service("good", #{ exec_start: ["/bin/true"], wanted_by: "multi-user.target" });"#;

/// The generator's own per-file limit (sparrow_lang::WALL_CLOCK).
const LIMIT: Duration = Duration::from_secs(2);

/// Everything below `dir` outside the output directories, with contents:
/// what must not change.
fn snapshot(dir: &Path, w: &World, out: &mut BTreeMap<PathBuf, String>) {
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if ["normal", "early", "late"].iter().any(|o| p == w.p(o)) {
            continue;
        }
        let meta = fs::symlink_metadata(&p).unwrap();
        let what = if meta.file_type().is_symlink() {
            format!("-> {}", fs::read_link(&p).unwrap().display())
        } else if meta.is_dir() {
            snapshot(&p, w, out);
            "dir".into()
        } else if meta.is_file() {
            format!("{} bytes, {:?}", meta.len(), meta.modified().unwrap())
        } else {
            "special".into()
        };
        out.insert(p, what);
    }
}

/// Runs the generator with `defs/a-good.sparrow` and whatever the test
/// planted; checks the invariants every hostile input must keep.
fn run_contained(w: &World, bad: &str, within: Duration) -> Output {
    w.write("defs/a-good.sparrow", GOOD);
    let mut before = BTreeMap::new();
    snapshot(&w.root, w, &mut before);
    let start = Instant::now();
    let o = w.run();
    let took = start.elapsed();
    let err = stderr(&o);
    assert!(
        took < within,
        "{bad}: took {took:?}, bound {within:?}\n{err}"
    );
    assert_eq!(o.status.code(), Some(1), "{bad}: {err}");
    assert!(err.contains(bad), "the message must name {bad}:\n{err}");
    assert!(
        w.read("normal/good.service")
            .contains("ExecStart=/bin/true"),
        "{bad}: the good unit must be written"
    );
    assert_eq!(
        w.link("normal/multi-user.target.wants/good.service"),
        Path::new("../good.service")
    );
    let mut after = BTreeMap::new();
    snapshot(&w.root, w, &mut after);
    assert_eq!(
        before, after,
        "{bad}: something outside the output directories changed"
    );
    o
}

/// Every unit file written: only `good.service` may come from these tests.
fn units(w: &World) -> Vec<String> {
    w.outputs()
        .into_iter()
        .filter(|p| !p.contains(".wants/"))
        .collect()
}

#[test]
fn data_nested_thousands_deep_and_printed_is_contained() {
    let w = World::new();
    w.write(
        "defs/deep.sparrow",
        // take() moves instead of copying, so building it is quick.
        "let a = []; for i in 0..5000 { a = [take(a)]; }\nprint(a);\n",
    );
    let o = run_contained(&w, "deep.sparrow", Duration::from_secs(15));
    // The stack guard stops it; on a loaded machine the wall-clock limit
    // may come first, which contains it just as well.
    assert!(
        stderr(&o).contains("overflowed the stack") || stderr(&o).contains("wall-clock limit"),
        "{}",
        stderr(&o)
    );
    assert_eq!(units(&w), vec!["normal/good.service"]);
}

#[test]
fn data_nested_thousands_deep_and_compared_is_contained() {
    let w = World::new();
    w.write(
        "defs/deepeq.sparrow",
        "let a = []; let b = []; for i in 0..5000 { a = [take(a)]; b = [take(b)]; }\nif a == b { print(1); }\n",
    );
    w.write(
        "defs/deepmap.sparrow",
        "let m = #{}; for i in 0..5000 { m = #{ x: take(m) }; }\nlet s = m.to_debug();\n",
    );
    let o = run_contained(&w, "deepeq.sparrow", Duration::from_secs(20));
    assert!(stderr(&o).contains("deepmap.sparrow"), "{}", stderr(&o));
}

#[test]
fn runaway_recursion_through_natives_is_stopped() {
    // A family whose unit() declares itself again: each task_run starts
    // Rhai's call-level count afresh, so only our own depth limit (or, as a
    // backstop, the process boundary) stops it.
    let w = World::new();
    w.write(
        "defs/lib/loop.sparrow",
        r#"fn unit(p) { task_run("again", "systemd-loop", #{}); #{ name: "x", exec_start: "/bin/true" } }"#,
    );
    w.write("defs/fam.sparrow", r#"task_run("x", "systemd-loop", #{});"#);
    w.write(
        "defs/callrec.sparrow",
        "fn g(p) { p.call(p) }\nlet p = Fn(\"g\");\np.call(p);\n",
    );
    let o = run_contained(&w, "fam.sparrow", Duration::from_secs(15));
    let err = stderr(&o);
    assert!(err.contains("expands families 8 levels deep"), "{err}");
    assert!(err.contains("callrec.sparrow:3:3"), "{err}");
}

#[test]
fn allocation_failure_inside_one_call_is_contained() {
    let w = World::new();
    w.write(
        "defs/bomb.sparrow",
        "let s = \"ab\"; for i in 0..19 { s += s; }\nlet t = s.replace(\"a\", s);\n",
    );
    let o = run_contained(&w, "bomb.sparrow", Duration::from_secs(15));
    assert!(stderr(&o).contains("ran out of memory"), "{}", stderr(&o));
}

/// Loops whose time goes into native calls over 100,000 elements (each
/// call takes milliseconds; `pad` builds the array in one call, as a loop
/// of pushes would itself run into the limit).
const SLOW: &[(&str, &str)] = &[
    (
        "slow-debug.sparrow",
        "let a = []; a.pad(99999, 7);\nloop { let s = a.to_debug(); }\n",
    ),
    (
        "slow-eq.sparrow",
        "let a = []; a.pad(99999, 7); let b = a;\nloop { if a == b { } }\n",
    ),
    (
        "slow-contains.sparrow",
        "let a = []; a.pad(99999, \"x\");\nloop { a.contains(\"nope\"); }\n",
    ),
];

#[test]
fn time_spent_in_native_calls_stays_within_twice_the_limit() {
    for (name, text) in SLOW {
        let w = World::new();
        w.write(&format!("defs/{name}"), text);
        // Twice the limit, plus the run's own start-up.
        let o = run_contained(&w, name, LIMIT * 2 + Duration::from_millis(500));
        // Stopped by the engine's own check (with a position), or, when a
        // loaded machine makes single calls slower still, by the hard stop.
        let err = stderr(&o);
        assert!(
            err.contains("wall-clock limit") || err.contains("did not finish within 3000 ms"),
            "{err}"
        );
    }
}

#[test]
fn three_slow_files_together_finish_far_inside_systemds_budget() {
    let w = World::new();
    for (name, text) in SLOW {
        w.write(&format!("defs/{name}"), text);
    }
    // systemd gives all generators 90 s together.
    let o = run_contained(&w, "slow-eq.sparrow", Duration::from_secs(15));
    for (name, _) in SLOW {
        assert!(stderr(&o).contains(name), "{name}: {}", stderr(&o));
    }
}

#[test]
fn install_targets_never_leave_the_output_directory() {
    let w = World::new();
    w.write(
        "defs/escape.sparrow",
        r#"service("esc", #{ exec_start: "/bin/true", wanted_by: raw("../../../escape"), required_by: [raw("../../rq")] });"#,
    );
    w.write(
        "defs/escape-raw.sparrow",
        r#"service("esc2", #{ exec_start: "/bin/true", install_section: #{ WantedBy: "../x.target", Alias: "../../a.service" } });"#,
    );
    let o = run_contained(&w, "escape.sparrow", Duration::from_secs(15));
    let err = stderr(&o);
    assert!(err.contains("cannot be an install target"), "{err}");
    assert!(err.contains("escape-raw.sparrow"), "{err}");
    assert_eq!(units(&w), vec!["normal/good.service"]);
}

#[test]
fn planted_symlinks_are_never_followed() {
    let w = World::new();
    let victim = w.write("victim/keep", "untouched");
    fs::create_dir_all(w.p("victim-dir")).unwrap();
    // Where the unit goes, and where its .wants/ link goes.
    std::os::unix::fs::symlink(&victim, w.p("normal/good.service")).unwrap();
    w.write(
        "defs/other.sparrow",
        r#"service("other", #{ exec_start: "/bin/true", wanted_by: "timers.target" });"#,
    );
    std::os::unix::fs::symlink(w.p("victim-dir"), w.p("normal/timers.target.wants")).unwrap();
    let o = run_contained(&w, "timers.target.wants", Duration::from_secs(15));
    assert!(stderr(&o).contains("not followed"), "{}", stderr(&o));
    assert_eq!(fs::read_to_string(&victim).unwrap(), "untouched");
    assert_eq!(fs::read_dir(w.p("victim-dir")).unwrap().count(), 0);
    // The unit replaced the planted link instead of writing through it.
    assert!(fs::symlink_metadata(w.p("normal/good.service"))
        .unwrap()
        .is_file());
}

fn mkfifo(p: &Path) {
    let c = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
    // SAFETY: mkfifo with a valid C string.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
}

#[test]
fn fifos_directories_and_kernel_files_are_reported_never_read() {
    let w = World::new();
    mkfifo(&w.p("defs/fifo.sparrow"));
    fs::create_dir_all(w.p("defs/dir.sparrow")).unwrap();
    std::os::unix::fs::symlink("/proc/kmsg", w.p("defs/kmsg.sparrow")).unwrap();
    std::os::unix::fs::symlink("/proc/self/status", w.p("defs/status.sparrow")).unwrap();
    // A FIFO among unit files, where shebang units are looked for.
    mkfifo(&w.p("units/odd.service"));
    let o = run_contained(&w, "fifo.sparrow", Duration::from_secs(10));
    let err = stderr(&o);
    for (name, why) in [
        ("fifo.sparrow", "is a FIFO"),
        ("dir.sparrow", "is a directory"),
        ("status.sparrow", "kernel interface file on procfs"),
        ("odd.service", "is a FIFO"),
    ] {
        let line = err
            .lines()
            .find(|l| l.contains(name))
            .unwrap_or_else(|| panic!("{name} not reported:\n{err}"));
        assert!(line.contains(why), "{line}");
    }
    // As root /proc/kmsg opens (and is refused for its file system); as a
    // user the open itself is refused. Either way it is reported, not read.
    assert!(err.lines().any(|l| l.contains("kmsg.sparrow")), "{err}");
}

#[test]
fn a_file_name_that_is_not_utf8_is_reported() {
    let w = World::new();
    let name = std::ffi::OsStr::from_bytes(b"caf\xe9.sparrow");
    fs::write(w.p("defs").join(name), GOOD.replace("good", "cafe")).unwrap();
    let o = run_contained(&w, "caf\u{fffd}.sparrow", Duration::from_secs(10));
    assert!(stderr(&o).contains("not valid UTF-8"), "{}", stderr(&o));
}

#[test]
fn huge_files_and_endless_lines_are_refused_or_handled() {
    let w = World::new();
    // Over the size limit: refused without being evaluated.
    w.write("defs/huge.sparrow", &"/".repeat(2 << 20));
    // One endless line under the limit: just a (long) comment.
    w.write(
        "defs/z-long.sparrow",
        &format!(
            "// {}\n{}",
            "x".repeat(900 << 10),
            GOOD.replace("good", "long")
        ),
    );
    let o = run_contained(&w, "huge.sparrow", Duration::from_secs(10));
    assert!(stderr(&o).contains("limited to 1024 KiB"), "{}", stderr(&o));
    assert!(w
        .read("normal/long.service")
        .contains("ExecStart=/bin/true"));
}

#[test]
fn unit_names_up_to_systemds_limit_are_written_again_and_again() {
    let w = World::new();
    let stem = "x".repeat(255 - ".service".len());
    w.write(
        "defs/long.sparrow",
        &format!(r#"service("{stem}", #{{ exec_start: "/bin/true" }});"#),
    );
    w.write("defs/a-good.sparrow", GOOD);
    // The second run replaces existing files (the temporary-name path).
    for _ in 0..2 {
        let o = w.run();
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    }
    assert!(w
        .read(&format!("normal/{stem}.service"))
        .contains("ExecStart=/bin/true"));
    assert!(
        !w.outputs().iter().any(|p| p.contains(".#")),
        "{:?}",
        w.outputs()
    );
}

mod generated {
    //! Deep nesting and large values, generated, through the real binary.

    use super::*;
    use proptest::prelude::*;

    fn script(depth: usize, kind: u8, op: u8) -> String {
        let wrap = match kind % 3 {
            0 => "[take(v)]",
            1 => "#{ x: take(v) }",
            _ => "if i % 2 == 0 { [take(v)] } else { #{ y: take(v) } }",
        };
        let use_it = match op % 5 {
            0 => "print(v);",
            1 => "let same = v == v;",
            2 => "let s = v.to_debug();",
            3 => "let c = [v].contains(v);",
            _ => "service(\"deep\", #{ exec_start: \"/bin/true\", description: v });",
        };
        format!("let v = 1; for i in 0..{depth} {{ v = {wrap}; }}\n{use_it}\n")
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

        #[test]
        fn generated_deep_values_are_contained(depth in 500..40_000usize, kind in any::<u8>(), op in any::<u8>()) {
            let w = World::new();
            w.write("defs/gen.sparrow", &script(depth, kind, op));
            w.write("defs/a-good.sparrow", GOOD);
            let start = Instant::now();
            let o = w.run();
            prop_assert!(start.elapsed() < Duration::from_secs(15));
            let err = stderr(&o);
            // Either it was fine, or it failed alone and said where.
            match o.status.code() {
                Some(0) => prop_assert!(err.is_empty(), "{}", err),
                Some(1) => prop_assert!(err.contains("gen.sparrow"), "{}", err),
                other => prop_assert!(false, "exit {:?}: {}", other, err),
            }
            prop_assert!(w.read("normal/good.service").contains("ExecStart=/bin/true"));
        }
    }
}
