//! `task_run` for closures: a task plugin (a directory or a built-in) run
//! to completion within the closure's deadline, its state returned or its
//! failure turned into the error the closure may catch.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;
use sparrow_lang::TaskFailure;
use sparrow_task::runner::Silent;
use sparrow_task::search::SearchPath;
use sparrow_task::{RunOptions, Status};

/// How many stderr lines a failure carries.
const STDERR_TAIL: usize = 5;

/// Runs `plugin` with `params`; it is killed (its whole process group) if
/// it is still running at `deadline`. `cache_base` holds its scratch
/// directory while it runs.
pub fn run(
    search: &SearchPath,
    cache_base: PathBuf,
    desc: &str,
    plugin: &str,
    params: Value,
    deadline: Instant,
) -> Result<Value, TaskFailure> {
    let budget = deadline.saturating_duration_since(Instant::now());
    if budget < Duration::from_millis(1) {
        return Err(TaskFailure {
            exit_code: 124,
            message: "no time left in the closure's wall-clock limit".into(),
            stderr_tail: Vec::new(),
        });
    }
    let opts = RunOptions {
        timeout: Some(budget),
        cache_base,
        ..RunOptions::default()
    };
    let outcome = sparrow_task::task_run(search, desc, plugin, params, &opts, &mut Silent)
        .map_err(|e| TaskFailure {
            exit_code: 1,
            message: e.to_string(),
            stderr_tail: Vec::new(),
        })?;
    let message = match &outcome.status {
        Status::Passed => return Ok(sparrow_task::state_with_data(&outcome)),
        Status::TaskFailed(c) => format!("the task failed with exit code {c}"),
        Status::CheckFailed => format!("{} of its checks failed", outcome.check_errors),
        Status::HookFailed(c) => format!("its hook failed with exit code {c}"),
        Status::TimedOut => format!("timed out after {} ms", budget.as_millis()),
        Status::Unsupported(s) => format!("{s} cannot be run here"),
    };
    let skip = outcome.stderr.len().saturating_sub(STDERR_TAIL);
    Err(TaskFailure {
        exit_code: outcome.status.exit_code(),
        message,
        stderr_tail: outcome.stderr[skip..].to_vec(),
    })
}
