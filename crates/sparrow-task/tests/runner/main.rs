//! The task runner against real task directories (made in temporary
//! directories), each behaviour checked against Sparrow6's
//! (https://github.com/melezhik/Sparrow6: documentation/development.md,
//! lib/Sparrow6/Task/Runner.rakumod, resources/sparrow6lib.*).
//!
//! Output lines carry Sparrow6's `HH:MM:SS :: ` stamp. Turning it off
//! (`SP6_LOG_NO_TIMESTAMPS`) is process-wide and tests run in parallel, so
//! it is never set here: [`plain`] strips the stamp, and the transcript tests
//! check that it is there.

mod config;
mod failures;
mod helpers;
mod hooks;
mod layout;
mod libs;
mod raku;
mod state;
mod subtasks;
mod transcript;

use std::fs;
use std::sync::OnceLock;

use regex::Regex;
use serde_json::Value;
use sparrow_task::runner::{run, Options, Outcome, Silent};
use sparrow_task::TaskError;

#[path = "../common/mod.rs"]
mod common;

pub use common::Task;

impl Task {
    /// Runs the root.
    pub fn run(&self) -> Outcome {
        self.run_opts(self.opts())
    }

    /// Runs the root with these parameters.
    pub fn run_params(&self, params: Value) -> Outcome {
        self.run_opts(self.opts_with(params))
    }

    /// Runs the root with these options.
    pub fn run_opts(&self, opts: Options) -> Outcome {
        self.try_run_opts(opts)
            .unwrap_or_else(|e| panic!("the run did not start: {e}"))
    }

    /// Runs the root with these options; it may not start.
    pub fn try_run_opts(&self, opts: Options) -> Result<Outcome, TaskError> {
        run(self.root.path(), self.root.path(), &opts, &mut Silent)
    }

    /// Runs `dir` (below the root, or not there at all) with the root's
    /// config and sub-tasks; it may not start.
    pub fn try_run_in(&self, dir: &std::path::Path) -> Result<Outcome, TaskError> {
        run(&self.root(), dir, &self.opts(), &mut Silent)
    }
}

fn stamp_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"^\d\d:\d\d:\d\d :: ").unwrap())
}

/// Whether `line` starts with Sparrow6's `HH:MM:SS :: ` stamp.
pub fn stamped(line: &str) -> bool {
    stamp_re().is_match(line)
}

/// `line` without its stamp.
pub fn strip(line: &str) -> &str {
    match stamp_re().find(line) {
        Some(m) => &line[m.end()..],
        None => line,
    }
}

/// The transcript, stamps stripped.
pub fn plain(o: &Outcome) -> Vec<String> {
    o.transcript.iter().map(|l| strip(l).to_string()).collect()
}

/// The transcript for failure messages.
pub fn shown(o: &Outcome) -> String {
    format!("status {:?}\n{}", o.status, o.transcript.join("\n"))
}

/// Asserts that `want` occur in the stamp-stripped transcript in this
/// order (other lines may come between).
#[track_caller]
pub fn assert_in_order(o: &Outcome, want: &[&str]) {
    let lines = plain(o);
    let mut at = 0;
    for w in want {
        match lines[at..].iter().position(|l| l == w) {
            Some(i) => at += i + 1,
            None => panic!("{w:?} missing (or out of order) in:\n{}", shown(o)),
        }
    }
}

/// Whether the stamp-stripped transcript has this line.
pub fn has_line(o: &Outcome, line: &str) -> bool {
    plain(o).iter().any(|l| l == line)
}

/// How many stamp-stripped transcript lines are `line`.
pub fn count_line(o: &Outcome, line: &str) -> usize {
    plain(o).iter().filter(|l| *l == line).count()
}

/// `os()` as Sparrow6's resolver gives it: `ID` of /etc/os-release.
pub fn os_id() -> String {
    let text = fs::read_to_string("/etc/os-release").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("ID="))
        .map(|v| v.trim_matches('"').to_lowercase())
        .unwrap_or_else(|| "linux".into())
}
