//! task.check in real task directories: the report and exit code as
//! Sparrow6 prints them, and code/generator blocks in every language,
//! reading the captures through the helpers.

use std::fs;
use std::path::Path;

use sparrow_task::runner::{run, Options, Silent};
use sparrow_task::{Outcome, Status};

fn task(dir: &Path, script: &str, check: &str) -> Outcome {
    fs::write(dir.join("task.bash"), script).unwrap();
    fs::write(dir.join("task.check"), check).unwrap();
    run(dir, dir, &Options::default(), &mut Silent).unwrap()
}

/// The transcript from `[task check]` on.
fn report(o: &Outcome) -> Vec<String> {
    let from = o
        .transcript
        .iter()
        .position(|l| l == "[task check]")
        .unwrap_or(o.transcript.len());
    o.transcript[from..].to_vec()
}

fn have(program: &str) -> bool {
    std::process::Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

#[test]
fn a_failing_check_prints_the_report_and_exits_2() {
    let d = tempfile::tempdir().unwrap();
    let o = task(
        d.path(),
        "echo A; echo B; echo C\n",
        "begin:\nAAA\nB\nC\nend:\nB\n",
    );
    assert_eq!(
        report(&o),
        [
            "[task check]",
            "stdout match (s) <AAA> False",
            "stdout match (s) <B> False",
            "stdout match (s) <C> False",
            "stdout match <B> True",
            "=================",
            "TASK CHECK FAIL"
        ]
    );
    assert_eq!(o.status, Status::CheckFailed);
    assert_eq!(o.status.exit_code(), 2);
    assert_eq!(o.check_errors, 3);
}

#[test]
fn a_passing_check_exits_0() {
    let d = tempfile::tempdir().unwrap();
    let o = task(
        d.path(),
        "echo 'Name: web01'; echo 'Status: running'\n",
        "regexp: 'Name:' \\s+ \\w+\n~regexp: nothing\nStatus: running\n",
    );
    assert_eq!(o.status, Status::Passed, "{:?}", o.transcript);
    assert_eq!(o.check_errors, 0);
}

#[test]
fn code_blocks_read_captures_in_every_language() {
    let langs = [
        ("perl", "print \"note: \", capture()->[0], \"\\n\";\nprint \"assert: \", (scalar @{captures()} == 2 ? 1 : 0), \" two captures\\n\";"),
        ("python", "from sparrow6lib import *\nprint('note:', capture()[0])\nprint('assert:', 1 if len(captures()) == 2 else 0, 'two captures')"),
        ("ruby", "puts \"note: #{capture[0]}\"\nputs \"assert: #{captures.length == 2 ? 1 : 0} two captures\""),
        ("bash", "echo \"note: $(capture)\"\necho \"assert: $([ $(captures | wc -l) = 2 ] && echo 1 || echo 0) two captures\""),
    ];
    for (lang, code) in langs {
        if !have(if lang == "python" { "python3" } else { lang }) {
            eprintln!("{lang} is not installed: skipped");
            continue;
        }
        let d = tempfile::tempdir().unwrap();
        let check =
            format!("regexp: version \\s+ (v\\d)\ngenerator: <<CODE\n!{lang}\n{code}\nCODE\n");
        let o = task(d.path(), "echo 'version v1'; echo 'version v2'\n", &check);
        assert_eq!(
            report(&o),
            [
                "[task check]",
                "stdout match <version \\s+ (v\\d)> True",
                "v1",
                "<two captures> True"
            ],
            "{lang}: {:?}",
            o.transcript
        );
        assert_eq!(o.status, Status::Passed, "{lang}");
    }
}

#[test]
fn a_perl_one_liner_generator_and_matched_lines() {
    let d = tempfile::tempdir().unwrap();
    let o = task(
        d.path(),
        "echo; printf 'A%.0s' $(seq 99); echo\n",
        "generator: print 'A'x99\nregexp: A+\ncode: <<P\nprint scalar(@{matched()}), \" matched\\n\";\nP\n",
    );
    let r = report(&o);
    assert_eq!(r[1], format!("stdout match <{}> True", "A".repeat(99)));
    assert_eq!(r[3], "1 matched");
    assert_eq!(o.status, Status::Passed);
}

#[test]
fn a_failing_code_block_ends_the_run_with_its_code() {
    let d = tempfile::tempdir().unwrap();
    let o = task(
        d.path(),
        "echo ok\n",
        "ok\ncode: <<B\n!bash\necho oops >&2; exit 7\nB\nnever\n",
    );
    assert_eq!(o.status, Status::TaskFailed(7));
    assert!(o.stderr.iter().any(|l| l == "oops"), "{:?}", o.stderr);
    assert!(!o.transcript.iter().any(|l| l.contains("never")));
}

#[test]
fn a_raku_block_runs_when_raku_is_installed() {
    if !have("raku") {
        eprintln!("raku is not installed: skipped");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let o = task(
        d.path(),
        "echo 'x 42'\n",
        "regexp: x \\s (\\d+)\ncode: <<R\n!raku\nsay \"got \", capture()[0];\nR\n",
    );
    assert_eq!(report(&o)[2], "got 42", "{:?}", o.transcript);
}

#[test]
fn a_regex_error_names_the_file_line_and_column() {
    let d = tempfile::tempdir().unwrap();
    fs::write(d.path().join("task.bash"), "echo x\n").unwrap();
    fs::write(d.path().join("task.check"), "x\nregexp: a $var\n").unwrap();
    let e = run(d.path(), d.path(), &Options::default(), &mut Silent).unwrap_err();
    let e = e.to_string();
    assert!(e.contains("task.check:2:11:"), "{e}");
}

#[test]
fn ten_thousand_lines_are_checked() {
    let d = tempfile::tempdir().unwrap();
    let o = task(
        d.path(),
        "for i in $(seq 10000); do echo \"line $i ok\"; done\n",
        "regexp: ^^ line \\s (\\d+) \\s ok $$\nline 9999 ok\n!regexp: FAIL\nbetween: {'line 10 '} {'line 20 '}\nregexp: 1 (\\d) \\s\nend:\n",
    );
    assert_eq!(o.status, Status::Passed, "{:?}", report(&o));
    assert_eq!(o.stdout.len(), 10000);
}

#[test]
fn streams_and_dump_streams_as_sparrow6_prints_them() {
    let d = tempfile::tempdir().unwrap();
    let o = task(
        d.path(),
        "printf 'foo\\n2\\n4\\nbar\\nfoo\\n1\\nbar\\n'\n",
        "between: {foo} {bar}\nregexp: (\\d)\ncode: <<P\ndump_streams();\nprint \"note: \", streams()->{1}[0]{data}, \" next \", streams()->{1}[0]{next}, \"\\n\";\nP\nend:\n",
    );
    assert_eq!(
        report(&o)[2..].to_vec(),
        [
            "stream: 1",
            "\tlayer: 1",
            "\t\t2",
            "\tlayer: 2",
            "\t\t4",
            "stream: 2",
            "\tlayer: 1",
            "\t\t1",
            "note: 2 next 2"
        ],
        "{:?}",
        o.transcript
    );
}

#[test]
fn raku_blocks_have_captures_full_and_replace() {
    if !have("raku") {
        eprintln!("raku is not installed: skipped");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let file = d.path().join("data.txt");
    fs::write(&file, "OK\nHELLO 1\nDONE\n").unwrap();
    let o = task(
        d.path(),
        &format!("cat {}\n", file.display()),
        &format!(
            "regexp: HELLO \\s+ (\\d+)\ncode: <<R\n!raku\nmy $c = captures-full()[0];\nreplace(\"{}\", $c<index>, \"BYE $c<data>[0]\");\nsay \"at \", $c<index>;\nR\n",
            file.display()
        ),
    );
    assert_eq!(report(&o)[2], "at 1", "{:?}", o.transcript);
    assert_eq!(fs::read_to_string(&file).unwrap(), "OK\nBYE 1\nDONE\n");
}

#[test]
fn a_broken_task_check_stops_the_run_before_the_task_runs() {
    let d = tempfile::tempdir().unwrap();
    let marker = d.path().join("ran");
    fs::write(
        d.path().join("task.bash"),
        format!("touch {}\necho x\n", marker.display()),
    )
    .unwrap();
    fs::write(d.path().join("task.check"), "x\nregexp: a $var\n").unwrap();
    let e = run(d.path(), d.path(), &Options::default(), &mut Silent)
        .unwrap_err()
        .to_string();
    assert!(e.contains("task.check:2:11:"), "{e}");
    assert!(!marker.exists(), "the task ran before its checks were read");
    // A source: file the task writes is read only when the checks run.
    fs::write(
        d.path().join("task.check"),
        format!("source: {}\nx\n", marker.display()),
    )
    .unwrap();
    fs::write(
        d.path().join("task.bash"),
        format!("echo x > {}\n", marker.display()),
    )
    .unwrap();
    let o = run(d.path(), d.path(), &Options::default(), &mut Silent).unwrap();
    assert_eq!(o.status, Status::Passed, "{:?}", o.transcript);
}
