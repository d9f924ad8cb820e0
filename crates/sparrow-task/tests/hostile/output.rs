//! Output that tries to fill the runner's memory: a line without end,
//! endless lines, binary data. What is kept is bounded (docs/tasks.md,
//! "Limits"); what is not is counted and reported.

use std::time::{Duration, Instant};

use serde_json::Value;
use sparrow_task::limits::{MAX_LINE, MAX_LINES, MAX_OUTPUT};
use sparrow_task::Status;

use crate::{said, shown, Task};

#[test]
fn a_line_without_end_is_cut_and_the_cut_reported() {
    // 3 MB without a newline on stdout, then on stderr: each was kept
    // whole (a task printing 1 GB so took 1 GB, twice).
    let t = Task::with(&[(
        "task.bash",
        "head -c 3000000 /dev/zero | tr '\\0' x; echo; echo after\n\
         head -c 3000000 /dev/zero | tr '\\0' y >&2; echo >&2; echo err-after >&2\n",
    )]);
    let o = t.run(Value::Null);
    assert_eq!(o.status, Status::Passed, "{}", shown(&o));
    assert_eq!(o.stdout.len(), 2);
    assert_eq!(o.stdout[0], "x".repeat(MAX_LINE));
    assert_eq!(o.stdout[1], "after");
    assert_eq!(o.stderr[0], "y".repeat(MAX_LINE));
    assert_eq!(o.stderr[1], "err-after");
    let note = "output limit: 2 lines longer than 64 KiB were cut";
    assert!(said(&o, note), "{}", shown(&o));
    assert_eq!(o.stderr.last().map(String::as_str), Some(note));
}

#[test]
fn output_past_the_byte_limit_is_counted_not_kept() {
    // 260 lines of 64 KiB - 1 bytes: 256 fit in 16 MiB, 4 do not (nor
    // does the line after them, though it is short: nothing is reordered).
    let t = Task::with(&[(
        "task.bash",
        "yes \"$(head -c 65535 /dev/zero | tr '\\0' z)\" | head -n 260\necho last\n",
    )]);
    let o = t.run(Value::Null);
    assert_eq!(o.status, Status::Passed, "{}", shown(&o));
    assert_eq!(o.stdout.len(), MAX_OUTPUT / 65535);
    assert_eq!(o.stdout.len(), 256);
    let kept: usize = o.stdout.iter().map(String::len).sum();
    assert!(kept <= MAX_OUTPUT);
    let note = format!(
        "output limit: 5 lines ({} bytes) past the first 250000 lines or 16 MiB were not kept",
        4 * 65535 + 4
    );
    assert!(said(&o, &note), "{}", shown(&o));
    assert_eq!(o.stderr, vec![note]);
}

#[test]
fn output_past_the_line_limit_is_counted_not_kept() {
    // Lines are checked, shown and returned: each costs memory of its own.
    let t = Task::with(&[
        ("task.bash", "seq 250010\n"),
        ("task.check", "250000\n!regexp: ^ 250001 $\n"),
    ]);
    let start = Instant::now();
    let o = t.run(Value::Null);
    assert_eq!(o.status, Status::Passed, "{}", shown(&o));
    assert_eq!(o.stdout.len(), MAX_LINES);
    assert_eq!(o.stdout.last().map(String::as_str), Some("250000"));
    let note =
        "output limit: 10 lines (60 bytes) past the first 250000 lines or 16 MiB were not kept";
    assert_eq!(o.stderr, vec![note]);
    assert!(said(&o, note));
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn binary_output_is_kept_with_replacement_characters() {
    let t = Task::with(&[("task.bash", "printf 'a\\xff\\xfeb\\x00c\\n\\xc3\\xa9\\n'\n")]);
    let o = t.run(Value::Null);
    assert_eq!(o.status, Status::Passed, "{}", shown(&o));
    assert_eq!(o.stdout, vec!["a\u{fffd}\u{fffd}b\u{0}c", "\u{e9}"]);
}

#[test]
fn a_hooks_set_stdout_keeps_every_line_even_with_a_bad_byte() {
    // The file of set_stdout lines was read as UTF-8 or not at all.
    let t = Task::with(&[
        (
            "hook.bash",
            "set_stdout first\nset_stdout \"bad $(printf '\\xff') byte\"\nset_stdout last\n",
        ),
        ("task.bash", "echo task\n"),
    ]);
    let o = t.run(Value::Null);
    assert_eq!(o.status, Status::Passed, "{}", shown(&o));
    assert_eq!(o.stdout, vec!["first", "bad \u{fffd} byte", "last", "task"]);
}

#[test]
fn stderr_keeps_its_last_lines_within_a_mebibyte() {
    // The last 1000 lines were kept whatever their size: up to 64 MiB.
    let t = Task::with(&[(
        "task.bash",
        "for i in $(seq 40); do head -c 60000 /dev/zero | tr '\\0' e; echo; done >&2\necho end >&2\nexit 3\n",
    )]);
    let o = t.run(Value::Null);
    assert_eq!(o.status, Status::TaskFailed(3), "{}", shown(&o));
    // 17 lines of 60,000 bytes and "end" fit in 1 MiB; 18 would not.
    assert_eq!(o.stderr.len(), 18);
    assert_eq!(o.stderr[0], "e".repeat(60_000));
    assert_eq!(o.stderr[17], "end");
}

#[test]
fn a_state_that_is_not_a_map_is_reported_not_silently_dropped() {
    for (file, code, why) in [
        (
            "task.py",
            "from sparrow6lib import *\nupdate_state([1, 2])\n",
            "not a map: [1,2]",
        ),
        (
            "task.bash",
            "echo '{\"k\": ' > \"$cache_root_dir/state.json\"\n",
            "not JSON: EOF while parsing",
        ),
    ] {
        let t = Task::with(&[(file, code)]);
        let o = t.run(Value::Null);
        assert_eq!(o.status, Status::Passed, "{}", shown(&o));
        assert_eq!(o.state, serde_json::json!({}));
        let note = o.stderr.last().cloned().unwrap_or_default();
        assert!(
            note.starts_with(&format!("the state is unusable ({why}"))
                && note.ends_with("): it is left empty"),
            "{note}"
        );
        assert!(said(&o, &note));
    }
}
