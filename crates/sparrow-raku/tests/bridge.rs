//! The bridge against the real `raku` (rakudo from Debian; the test
//! command installs it): what one process translates, what fails alone,
//! and what the cache saves.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sparrow_lang::Facts;
use sparrow_raku::cache::Cache;
use sparrow_raku::{translate, Input, Options, Translation};

fn facts() -> Facts {
    sparrow_lang::FixedHost::debian().facts
}

/// A wrapper around the real `raku` that counts its starts in `log`.
fn counting_raku(dir: &Path) -> (PathBuf, PathBuf) {
    let raku = sparrow_raku::find_raku(&|k| std::env::var(k).ok())
        .expect("raku is needed (Debian: apt-get install rakudo)");
    let log = dir.join("starts");
    let w = dir.join("raku");
    fs::write(
        &w,
        format!(
            "#!/bin/sh\necho start >> {}\nSPARROW_TEST_MODE=blue exec {} \"$@\"\n",
            log.display(),
            raku.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&w, fs::Permissions::from_mode(0o755)).unwrap();
    (w, log)
}

fn starts(log: &Path) -> usize {
    fs::read_to_string(log).map_or(0, |s| s.lines().count())
}

fn opts(raku: &Path, cache: Option<Cache>) -> Options {
    Options {
        raku: Some(raku.to_path_buf()),
        limit: Duration::from_secs(3),
        cache,
        limits: sparrow_raku::bridge::raku_limits(),
    }
}

fn env(k: &str) -> Option<String> {
    match k {
        "SPARROW_TEST_MODE" => Some("blue".into()),
        _ => None,
    }
}

fn native(t: &Translation) -> &str {
    match t {
        Translation::Native(s) => s,
        other => panic!("expected a translation, got {other:?}"),
    }
}

#[test]
fn one_process_translates_many_files_and_failures_stay_with_their_file() {
    let dir = tempfile::tempdir().unwrap();
    let (raku, log) = counting_raku(dir.path());
    let files = [
        ("good.raku", "use Sparrow6::DSL;\ntask-run \"good\", \"systemd\", %( start => \"/bin/true\", memory-max => 512.MB );\n"),
        ("syntax.raku", "task-run \"x\", \"systemd\", %(\n  start => \"/bin/true\"\n;\n"),
        ("dies.raku", "\n\ndie \"not today\";\n"),
        ("env.raku", "task-run \"env\", \"systemd\", %( start => \"/bin/true\", env => %( MODE => %*ENV<SPARROW_TEST_MODE> // \"none\" ) ) if os() eq \"debian\";\n"),
        ("exits.raku", "exit 7;\n"),
        ("after-exit.raku", "task-run \"after-exit\", \"systemd\", %( start => \"/bin/true\" );\n"),
        ("hangs.raku", "loop { }\n"),
        ("after-hang.raku", "task-run \"after-hang\", \"systemd\", %( start => \"/bin/true\" );\n"),
        ("prints.raku", "say \"hello\"; print '{\"ok\": 1}' ~ \"\\n\";\ntask-run \"prints\", \"systemd\", %( start => \"/bin/true\" );\n"),
    ];
    let inputs: Vec<Input<'_>> = files
        .iter()
        .map(|(p, t)| Input {
            path: Path::new(p),
            text: t,
        })
        .collect();
    let (out, stats) = translate(&inputs, &facts(), &opts(&raku, None), &env);
    assert!(
        native(&out[0]).contains(
            r#"task_run("good", "systemd", #{"memory-max": 536870912, "start": "/bin/true"});"#
        ),
        "{:?}",
        out[0]
    );
    assert!(
        matches!(&out[1], Translation::Failed { line: 3 | 4, message } if message.contains("final ')'")),
        "{:?}",
        out[1]
    );
    assert_eq!(
        out[2],
        Translation::Failed {
            line: 3,
            message: "not today".into()
        }
    );
    // The process's environment, as the file sees it through %*ENV.
    assert!(
        native(&out[3]).contains(r#""MODE": "blue""#),
        "{:?}",
        out[3]
    );
    assert!(
        matches!(&out[4], Translation::Failed { message, .. } if message.contains("status 7")),
        "{:?}",
        out[4]
    );
    assert!(native(&out[5]).contains("after-exit"));
    assert!(
        matches!(&out[6], Translation::Failed { message, .. } if message.contains("longer than 3 s")),
        "{:?}",
        out[6]
    );
    assert!(native(&out[7]).contains("after-hang"));
    // What a file prints does not reach the replies.
    assert!(native(&out[8]).contains("prints"));
    // One start, and one more after each file that took the process down.
    assert_eq!(stats.processes, 3);
    assert_eq!(starts(&log), 3);
    assert_eq!(stats.translated, 7);
}

#[test]
fn a_warm_cache_starts_no_raku_and_follows_what_files_looked_at() {
    let dir = tempfile::tempdir().unwrap();
    let (raku, log) = counting_raku(dir.path());
    let flags = dir.path().join("flags.json");
    fs::write(&flags, r#"{"use-redis": true}"#).unwrap();
    let texts: Vec<(PathBuf, String)> = (0..5)
        .map(|i| {
            (
                dir.path().join(format!("d{i}.raku")),
                format!(
                    "task-run \"d{i}\", \"systemd\", %( start => \"/bin/true\", env => %( M => %*ENV<SPARROW_TEST_MODE> ), orchestration => %( requires => sub {{ task-run(\"f\", \"feature-flags\", %( file => \"{}\" ))<use-redis> ?? [\"redis.service\"] !! () }} ) );\n",
                    flags.display()
                ),
            )
        })
        .collect();
    let inputs: Vec<Input<'_>> = texts
        .iter()
        .map(|(p, t)| Input { path: p, text: t })
        .collect();
    let cache = || Some(Cache::new(dir.path().join("cache"), true));
    let (first, s1) = translate(&inputs, &facts(), &opts(&raku, cache()), &env);
    assert_eq!((s1.processes, s1.cached, s1.translated), (1, 0, 5));
    assert!(
        native(&first[0]).contains(r#""requires": ["redis.service"]"#),
        "{:?}",
        first[0]
    );
    assert!(
        native(&first[0]).contains(r#""M": "blue""#),
        "{:?}",
        first[0]
    );
    let (second, s2) = translate(&inputs, &facts(), &opts(&raku, cache()), &env);
    assert_eq!((s2.processes, s2.cached), (0, 5));
    assert_eq!(first, second);
    assert_eq!(starts(&log), 1, "no Raku process for a warm cache");
    // The flags file changed: translated again, with the new answer.
    fs::write(&flags, r#"{"use-redis": false}"#).unwrap();
    let (third, s3) = translate(&inputs, &facts(), &opts(&raku, cache()), &env);
    assert_eq!((s3.processes, s3.cached), (1, 0));
    assert!(
        native(&third[0]).contains(r#""requires": []"#),
        "{:?}",
        third[0]
    );
    // Another value of a variable the files read: translated again.
    let green = |k: &str| (k == "SPARROW_TEST_MODE").then(|| "green".to_string());
    let (_, s4) = translate(&inputs, &facts(), &opts(&raku, cache()), &green);
    assert_eq!(s4.cached, 0);
    // A read-only cache (the generator's) is used but not written.
    let ro = || Some(Cache::new(dir.path().join("ro"), false));
    translate(&inputs, &facts(), &opts(&raku, ro()), &env);
    assert!(!dir.path().join("ro").exists());
}

#[test]
fn without_raku_nothing_is_tried() {
    let text = "task-run \"a\", \"systemd\", %();\n";
    let inputs = [Input {
        path: Path::new("/a.raku"),
        text,
    }];
    let o = Options {
        raku: None,
        limit: Duration::from_secs(1),
        cache: None,
        limits: sparrow_raku::bridge::raku_limits(),
    };
    let (out, stats) = translate(&inputs, &facts(), &o, &env);
    assert_eq!(out, vec![Translation::NoRaku]);
    assert_eq!(stats.processes, 0);
}
