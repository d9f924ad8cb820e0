//! Sparrow6-format tasks, run natively.
//!
//! A task is a directory (Sparrow6's format, unchanged): a `task.*` script
//! in bash, Perl, Python, Ruby or Raku, an optional `hook.*` that runs
//! first and may run sub-tasks from `tasks/NAME/`, default parameters in
//! `config.yaml`, and output checks in `task.check`. Scripts get Sparrow6's
//! helper functions (`config`, `task_var`, `update_state`, `set_stdout`,
//! `run_task`, ...) from libraries this crate ships, so no Raku is needed
//! unless a script is written in Raku. A plugin is a task directory with a
//! `sparrow.json`; built-in plugins run in-process with the same interface.
//!
//! - [`layout`]: which script is the hook, which the task (precedence).
//! - [`config`]: defaults deep-merged with the caller's parameters.
//! - [`exec`]: one script in its own process group, with a deadline.
//! - [`runner`]: the run of a directory (hooks, sub-tasks, state, output).
//! - [`check`]: Task::Check (output checks).
//! - [`builtin`]: plugins that run in-process.
//! - [`search`]: finding a plugin by name.
#![deny(missing_docs)]

pub mod builtin;
pub mod check;
pub mod config;
pub mod exec;
mod helpers;
pub mod layout;
pub mod runner;
pub mod search;

pub use runner::{Options, Outcome, Status};

/// Why a task could not be run (as opposed to a task that ran and failed,
/// which is an [`Outcome`]).
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// No such plugin or directory.
    #[error("{0}")]
    NotFound(String),
    /// The configuration or the parameters are unusable.
    #[error("configuration: {0}")]
    Config(String),
    /// The task's `task.check` cannot be read.
    #[error("task.check: {0}")]
    Check(String),
    /// A script could not be started or its files written.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        source: std::io::Error,
    },
}

impl TaskError {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> TaskError {
        let what = what.into();
        move |source| TaskError::Io { what, source }
    }
}
