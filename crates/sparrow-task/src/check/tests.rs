//! Task::Check semantics, with Sparrow6's documented examples as fixtures.
//! Blocks here are answered by a double; real interpreters run in
//! tests/check.rs.

use super::*;

/// Answers blocks from a script: each call pops the next answer.
#[derive(Default)]
struct Canned {
    answers: Vec<BlockRun>,
    seen: Vec<(Lang, String)>,
}

impl Blocks for Canned {
    fn run(&mut self, lang: Lang, code: &str) -> Result<BlockRun, TaskError> {
        self.seen.push((lang, code.to_string()));
        Ok(if self.answers.is_empty() {
            BlockRun::default()
        } else {
            self.answers.remove(0)
        })
    }
}

fn lines(s: &str) -> Vec<String> {
    s.split(',').map(str::to_string).collect()
}

fn eval_with(check: &str, out: &str, blocks: &mut Canned) -> (Report, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut cx = Context {
        file: "task.check",
        cache_root: dir.path(),
        blocks,
    };
    let r = evaluate(check, &lines(out), &mut cx).unwrap();
    (r, dir)
}

fn eval(check: &str, out: &str) -> Report {
    eval_with(check, out, &mut Canned::default()).0
}

/// The report as Sparrow6 prints it.
fn shown(r: &Report) -> Vec<String> {
    r.lines
        .iter()
        .map(|l| match l {
            ReportLine::Check { message, ok } => {
                format!("{message} {}", if *ok { "True" } else { "False" })
            }
            ReportLine::Note(n) => n.clone(),
        })
        .collect()
}

fn error(check: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut b = Canned::default();
    let mut cx = Context {
        file: "t/task.check",
        cache_root: dir.path(),
        blocks: &mut b,
    };
    evaluate(check, &lines("x"), &mut cx)
        .unwrap_err()
        .to_string()
}

#[test]
fn plain_lines_are_trimmed_case_sensitive_substrings() {
    let r = eval("I am OK\nI am ok\n  am O   \n", "I am OK");
    assert_eq!(
        shown(&r),
        [
            "stdout match <I am OK> True",
            "stdout match <I am ok> False",
            "stdout match <am O> True"
        ]
    );
    assert_eq!(r.failed, 1);
}

#[test]
fn comments_blank_lines_and_inline_hashes() {
    let r = eval(
        "# a comment\n\nregexp: hello\nhello # trailing\n h #\nregexp: '/hello/'\n",
        "hello world,/hello/",
    );
    assert_eq!(
        shown(&r),
        [
            "stdout match <hello> True",
            "stdout match <hello> True",
            "stdout match <h> True",
            "stdout match <'/hello/'> True"
        ]
    );
}

#[test]
fn every_check_is_evaluated_after_a_failure() {
    let r = eval("nope\nyes\nnope either\n", "yes");
    assert_eq!(r.failed, 2);
    assert_eq!(r.lines.len(), 3);
}

#[test]
fn regexes_are_raku_and_negation_and_soft_checks() {
    let r = eval(
        "regexp: \"Bla\" \"Bla\" \\d\nregexp: <[a..c]> ** 3\n!regexp: ERROR\n!regexp: Bla\n~regexp: missing\nregexp: (red || green) \\s+ light\n",
        "BlaBla1,abc,green light",
    );
    assert_eq!(
        shown(&r),
        [
            "stdout match <\"Bla\" \"Bla\" \\d> True",
            "stdout match <<[a..c]> ** 3> True",
            "stdout match <!ERROR> True",
            "stdout match <!Bla> False",
            "stdout match <missing> False",
            "stdout match <(red || green) \\s+ light> True"
        ]
    );
    // The soft miss prints False but does not count.
    assert_eq!(r.failed, 1);
}

#[test]
fn an_unsupported_regex_names_file_line_and_column() {
    let e = error("ok\nregexp:  foo <?before bar>\n");
    assert!(e.contains("t/task.check:2:14: regexp:"), "{e}");
    assert!(e.contains("before"), "{e}");
}

#[test]
fn any_and_line_numbers() {
    let r = eval(":any:\n:1:\n:7:\n", "a,b");
    assert_eq!(
        shown(&r),
        [
            "stdout match <:any:> True",
            "stdout match <:1:> True",
            "stdout match <:7:> False"
        ]
    );
}

#[test]
fn asserts_and_notes() {
    let r = eval(
        "assert: 1 'this is ever true one'\nassert: false this fails\nassert: OK this never works\nnote: just a note  \n",
        "x",
    );
    assert_eq!(
        shown(&r),
        [
            "<'this is ever true one'> True",
            "<this fails> False",
            "stdout match <assert: OK this never works> False",
            "just a note  "
        ]
    );
    assert_eq!(r.failed, 2);
}

#[test]
fn sequences_follow_line_by_line_in_streams() {
    // sequence2 from Sparrow6's examples: three streams start at `hello`,
    // `worlld` ends one, `jan` keeps two.
    let out = ",hello,world,jan,,hello,worlld,Jan,,hello2,world2,jan2,";
    let r = eval("begin:\nhello\nregexp: .*orld\njan\nend:\n", out);
    assert!(r.failed == 0, "{:?}", shown(&r));
    assert_eq!(shown(&r)[0], "stdout match (s) <hello> True");
    // A failing step empties the block: the rest fail too (the FAQ).
    let r = eval("begin:\nAAA\nB\nC\nend:\nB\n", "A,B,C");
    assert_eq!(
        shown(&r),
        [
            "stdout match (s) <AAA> False",
            "stdout match (s) <B> False",
            "stdout match (s) <C> False",
            "stdout match <B> True"
        ]
    );
    // Order matters: swapped lines break the sequence.
    let r = eval("begin:\n1\n2\n3\nend:\n", "1,3,2");
    assert_eq!(r.failed, 2);
}

#[test]
fn blank_lines_in_sequences_need_a_regex() {
    let r = eval(
        "begin:\naaa\nbbb\nregexp: ^^ $$\nccc\nend:\n",
        "aaa,bbb,,ccc",
    );
    assert_eq!(r.failed, 0, "{:?}", shown(&r));
    let r = eval("begin:\naaa\nbbb\nccc\nend:\n", "aaa,bbb,,ccc");
    assert_eq!(r.failed, 1);
}

#[test]
fn negations_inside_blocks_fail_only_when_in_every_stream() {
    // negations/02: D is in one of two ranges: the negation passes.
    let out = "[,A,B,C,],[,A,B,D,],A B C D";
    let r = eval(
        "begin:\nA\n!regexp: D\nB\nC\nend:\nbetween: {'['} {']'}\nA\nB\n!regexp: D\nC\nend:\n",
        out,
    );
    assert_eq!(r.failed, 0, "{:?}", shown(&r));
    let r = eval("between: {'['} {']'}\n!regexp: A\nend:\n", out);
    assert_eq!(shown(&r), ["stdout match (r) <!A> False"]);
    // Right after begin: a negation fails when the pattern is anywhere.
    let r = eval("begin:\n!regexp: H\nend:\nbegin:\n!regexp: B\nend:\n", out);
    assert_eq!(r.failed, 1);
}

#[test]
fn between_takes_the_lines_inside_each_range_as_streams() {
    let out = "foo,1,2,3,bar,,foo,A,B,C,bar,,";
    let mut b = Canned::default();
    let (r, dir) = eval_with(
        "between: { \"foo\" } { \"bar\" }\n:any:\nend:\n",
        out,
        &mut b,
    );
    assert_eq!(shown(&r), ["stdout match (r) <:any:> True"]);
    // The files blocks read: both streams, boundaries excluded (the docs).
    let (r, _) = eval_with(
        "between: {foo} {bar}\n:any:\ncode: print 1\nend:\n",
        out,
        &mut b,
    );
    assert_eq!(r.failed, 0);
    drop(dir);
    let dir = tempfile::tempdir().unwrap();
    let mut cx = Context {
        file: "task.check",
        cache_root: dir.path(),
        blocks: &mut b,
    };
    evaluate(
        "between: {foo} {bar}\nregexp: (\\d)\ncode: print 1\nend:\n",
        &lines(out),
        &mut cx,
    )
    .unwrap();
    let arr: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("streams-array.json")).unwrap())
            .unwrap();
    assert_eq!(arr[0].as_array().unwrap().len(), 3);
    assert_eq!(arr[0][0], serde_json::json!(["1"]));
    let streams: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("streams.json")).unwrap()).unwrap();
    assert_eq!(streams["1"][0]["data"], "1");
    assert_eq!(streams["1"][0]["captures"], serde_json::json!(["1"]));
    assert_eq!(streams["1"][0]["next"], 2);
    assert_eq!(
        arr.as_array().unwrap().len(),
        1,
        "the letters' range has no digit"
    );
    let matched = std::fs::read_to_string(dir.path().join("matched.txt")).unwrap();
    assert_eq!(matched, "1\n2\n3");
}

#[test]
fn nested_range_starts_and_line_number_boundaries() {
    // The docs' nested-ranges example: foo2..foo4 are inside.
    let mut b = Canned::default();
    let (_, dir) = eval_with(
        "between: {foo} {bar}\nregexp: (foo \\d+)\ncode: x\nend:\n",
        "foo1,foo2,foo3,foo4,bar,bar,bar",
        &mut b,
    );
    let caps: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("captures.json")).unwrap()).unwrap();
    let got: Vec<&str> = caps
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["data"][0].as_str().unwrap())
        .collect();
    assert_eq!(got, ["foo2", "foo3", "foo4"]);
    // Line-number boundaries are inclusive.
    let r = eval("between: { :1: } { :3: }\nb\nd\na\nend:\n", "a,b,c,d,e");
    assert_eq!(
        shown(&r),
        [
            "stdout match (r) <b> True",
            "stdout match (r) <d> True",
            "stdout match (r) <a> False"
        ]
    );
}

#[test]
fn inside_a_range_a_narrowing_check_drops_streams() {
    // between-narrow-search: DD is in one range only; a later soft miss
    // prints False and leaves no streams, without failing.
    let out = ",A, B,  C,   D,  C, B  ,DONE,A, B,  C,   DD,  C, B  ,DONE,";
    let r = eval("between: {A} {DONE}\nB\nC\nDD\n~regexp: DDD\nend:\n", out);
    assert_eq!(r.failed, 0, "{:?}", shown(&r));
    assert_eq!(shown(&r)[3], "stdout match (r) <DDD> False");
}

#[test]
fn within_zooms_on_the_first_capture() {
    let r = eval(
        "within: ^^ A (\\S+) A $$\nregexp: ^^ B (\\S+) B $$\nregexp: ^^ C (\\S+) C $$\nregexp: ^^ D $$\nend:\n",
        "ABCDCBA",
    );
    assert_eq!(r.failed, 0, "{:?}", shown(&r));
    assert_eq!(shown(&r)[0], "stdout match (w) <^^ A (\\S+) A $$> True");
    // Chained filters per line (within-chained).
    let r = eval(
        "within: \\d\\d\\d\\d '-' \\d\\d '-' \\d\\d\nregexp: ^^ '2000-'\nregexp: '-04'\n01\nend:\n",
        "2000-04-01",
    );
    assert_eq!(r.failed, 0, "{:?}", shown(&r));
    // The zoom follows the previous check: after one that captured
    // nothing, the whole line again (Sparrow6).
    let r = eval(
        "within: ^^ A (\\S+) A $$\n~regexp: Z\nregexp: ^^ A\nend:\n",
        "ABCDCBA",
    );
    assert_eq!(r.failed, 0, "{:?}", shown(&r));
    let r = eval(
        "within: ^^ A (\\S+) A $$\n~regexp: Z\nregexp: B (\\S+) B\nregexp: ^^ C\nend:\n",
        "ABCDCBA",
    );
    assert_eq!(r.failed, 0, "{:?}", shown(&r));
    // A within that matches nothing: positives fail, negations pass.
    let r = eval("within: nothing\nx\n!regexp: x\nend:\n", "x");
    assert_eq!(
        shown(&r),
        [
            "stdout match (w) <nothing> False",
            "stdout match (w) <x> False",
            "stdout match (w) <!x> True"
        ]
    );
}

#[test]
fn captures_are_top_level_groups_of_every_match() {
    let mut b = Canned::default();
    let (_, dir) = eval_with("regexp: (a(\\d+))\ncode: x\n", "a1a2a3a4", &mut b);
    let caps: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("captures.json")).unwrap()).unwrap();
    assert_eq!(caps[0]["data"], serde_json::json!(["a1", "a2", "a3", "a4"]));
    assert_eq!(caps[0]["index"], 0);
    // Without groups: the whole line.
    let (_, dir) = eval_with("regexp: a \\d\ncode: x\n", "xa1", &mut b);
    let caps: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("captures.json")).unwrap()).unwrap();
    assert_eq!(caps[0]["data"], serde_json::json!(["xa1"]));
    assert_eq!(positional_groups("(a(?P<x>b)(c))(?:(d))[(]"), [1, 4]);
}

#[test]
fn code_blocks_give_notes_and_generators_give_checks() {
    let mut b = Canned {
        answers: vec![
            BlockRun {
                stdout: vec!["just a line".into()],
                ..Default::default()
            },
            BlockRun {
                stdout: vec![
                    "# a comment".into(),
                    "hello".into(),
                    "assert: 0 generated".into(),
                ],
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    let (r, _) = eval_with(
        "code: print \"just a line\\n\"\ngenerator: <<RUBY\n!ruby\nputs 'hello'\nRUBY\n",
        "hello",
        &mut b,
    );
    assert_eq!(
        shown(&r),
        [
            "just a line",
            "stdout match <hello> True",
            "<generated> False"
        ]
    );
    assert_eq!(
        b.seen[0],
        (Lang::Perl, "print \"just a line\\n\"".to_string())
    );
    assert_eq!(b.seen[1], (Lang::Ruby, "\nputs 'hello'".to_string()));
}

#[test]
fn a_failing_block_ends_the_evaluation() {
    let mut b = Canned {
        answers: vec![BlockRun {
            exit: 3,
            stderr: vec!["boom".into()],
            ..Default::default()
        }],
        ..Default::default()
    };
    let (r, _) = eval_with("a\ncode: <<X\nexit 3\nX\nb\n", "a", &mut b);
    assert_eq!(shown(&r), ["stdout match <a> True"]);
    assert_eq!(
        r.aborted,
        Some(Aborted {
            code: 3,
            stderr: vec!["boom".into()]
        })
    );
}

#[test]
fn malformed_files_are_errors_with_a_place() {
    let e = error("code: <<END\nprint 1\n");
    assert!(
        e.contains("t/task.check:1:1:") && e.contains("never closed"),
        "{e}"
    );
    let e = error("begin:\nwithin: x\n");
    assert!(e.contains("t/task.check:2:1:") && e.contains("end:"), "{e}");
    let e = error("code: <<X\n!cobol\nX\n");
    assert!(e.contains("!bash"), "{e}");
}

#[test]
fn a_generator_printing_itself_is_stopped() {
    let mut b = Canned {
        answers: (0..200)
            .map(|_| BlockRun {
                stdout: vec!["generator: again".into()],
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let mut cx = Context {
        file: "task.check",
        cache_root: dir.path(),
        blocks: &mut b,
    };
    let e = evaluate("generator: again", &lines("x"), &mut cx).unwrap_err();
    assert!(e.to_string().contains("generators nest"), "{e}");
}

#[test]
fn source_replaces_the_data_for_later_checks() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("other.txt");
    std::fs::write(&f, "A1\nB1\n").unwrap();
    let r = eval(
        &format!(
            "out\nsource: {}\nregexp: ^^ A1 $$\nout\nbegin:\nA1\nB1\nend:\n",
            f.display()
        ),
        "out",
    );
    assert_eq!(
        shown(&r),
        [
            "stdout match <out> True",
            "stdout match <^^ A1 $$> True",
            "stdout match <out> False",
            "stdout match (s) <A1> True",
            "stdout match (s) <B1> True"
        ]
    );
    let e = error("source: /nonexistent/file\n");
    assert!(
        e.contains("t/task.check:1:") && e.contains("/nonexistent/file"),
        "{e}"
    );
}
