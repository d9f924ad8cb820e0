//! Task::Check (placeholder while the evaluator is written).
use std::path::Path;
use std::time::Instant;

use crate::TaskError;

/// What a check evaluation needs from the run.
pub struct Context<'a> {
    /// The run's cache root (matched.txt, captures.json ... are written there).
    pub cache_root: &'a Path,
    /// Code blocks are killed after this.
    pub deadline: Option<Instant>,
    /// Working directory of code blocks.
    pub cwd: Option<&'a Path>,
}

/// One line of the check report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportLine {
    /// A check and whether it passed.
    Check {
        /// `stdout match <P>`, `<assert message>` ...
        message: String,
        /// Passed.
        ok: bool,
    },
    /// A note (`note:` or a `code:` block's output).
    Note(String),
}

/// The result of a `task.check`.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// In order.
    pub lines: Vec<ReportLine>,
    /// Checks that failed (soft failures excluded).
    pub failed: usize,
}

/// Evaluates `text` (a task.check) over `data` (the output lines).
pub fn evaluate(_text: &str, _data: &[String], _cx: &Context) -> Result<Report, TaskError> {
    Err(TaskError::Check("not written yet".into()))
}
