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
//! - [`limits`]: what a run keeps and reads, at most.
#![deny(missing_docs)]

pub mod builtin;
pub mod check;
pub mod config;
pub mod exec;
mod helpers;
pub mod layout;
pub mod limits;
pub mod runner;
pub mod search;

pub use builtin::error_chain;
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
    #[error("{0}")]
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

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use crate::search::{Found, SearchPath};

/// How [`task_run`] runs a plugin.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The whole call must end within this (the `task_timeout` parameter
    /// overrides it for one call).
    pub timeout: Option<Duration>,
    /// Where a directory's run makes its cache directory.
    pub cache_base: PathBuf,
    /// Working directory of the scripts (the caller's, by default).
    pub cwd: Option<PathBuf>,
    /// Let scripts read the caller's stdin (the CLI); otherwise /dev/null.
    pub inherit_stdin: bool,
    /// Generation time: only read-only built-ins may run (a generator must
    /// not change the system, and cannot know what a script does).
    pub read_only: bool,
}

impl Default for RunOptions {
    fn default() -> RunOptions {
        RunOptions {
            timeout: None,
            cache_base: default_cache_base(),
            cwd: None,
            inherit_stdin: false,
            read_only: false,
        }
    }
}

/// Where runs make their scratch directories: the first of
/// `$XDG_RUNTIME_DIR`, `/run/systemd-sparrow/tasks` (as root) and `/dev/shm`
/// that is a tmpfs, else the temporary directory. Memory, because a run
/// writes and deletes a dozen small files: on a disk file system that
/// alone costs a third of a short bash task's run.
pub fn default_cache_base() -> PathBuf {
    static BASE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BASE.get_or_init(|| {
        let mut candidates: Vec<PathBuf> = Vec::new();
        if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR") {
            candidates.push(d.into());
        }
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            candidates.push("/run/systemd-sparrow/tasks".into());
        }
        candidates.push("/dev/shm".into());
        candidates
            .into_iter()
            .find(|d| on_tmpfs(d))
            .unwrap_or_else(std::env::temp_dir)
    })
    .clone()
}

/// Whether `dir` is (or would be made) on a tmpfs, and usable.
fn on_tmpfs(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    // The nearest existing ancestor decides (the directory is made later).
    let Some(existing) = dir.ancestors().find(|a| a.is_dir()) else {
        return false;
    };
    let Ok(c) = std::ffi::CString::new(existing.as_os_str().as_bytes()) else {
        return false;
    };
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: a NUL-terminated path and a statfs struct to fill.
    let ok = unsafe { libc::statfs(c.as_ptr(), &mut st) } == 0;
    ok && st.f_type == libc::TMPFS_MAGIC
        // SAFETY: access reads a NUL-terminated path.
        && unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) } == 0
}

/// The parameter that sets the call's timeout instead of being passed on.
pub const TIMEOUT_PARAM: &str = "task_timeout";

/// Runs `plugin` (a path, or a name looked up in `search`) with `params`
/// (a map, or null for none), as Sparrow6's `task_run(desc, plugin,
/// params)` does. `desc` names the run in its headers. The report goes to
/// `sink` as it is made; a built-in's report is sent there when it ends.
pub fn task_run(
    search: &SearchPath,
    desc: &str,
    plugin: &str,
    params: Value,
    opts: &RunOptions,
    sink: &mut dyn runner::Sink,
) -> Result<Outcome, TaskError> {
    // Before anything walks them: merging, copying, even dropping
    // parameters nested without end would overflow the stack.
    if config::too_deep(&params, limits::MAX_NESTING) {
        config::dispose(params);
        return Err(runner::deep_params());
    }
    let mut params = match params {
        Value::Object(m) => m,
        Value::Null => Map::new(),
        other => {
            return Err(TaskError::Config(format!(
                "the parameters of {plugin} must be a map, not {other}"
            )))
        }
    };
    // The parameter can shorten the caller's limit, never extend it (a
    // closure's task cannot outlive the closure's wall-clock limit).
    let timeout = match (params.remove(TIMEOUT_PARAM), opts.timeout) {
        (Some(v), Some(limit)) => Some(timeout_param(&v)?.min(limit)),
        (Some(v), None) => Some(timeout_param(&v)?),
        (None, limit) => limit,
    };
    let found = search.resolve(plugin)?;
    let read_only = match &found {
        Found::Dir { .. } => false,
        Found::Builtin(b) => b.read_only,
    };
    if opts.read_only && !read_only {
        return Err(TaskError::Config(format!(
            "plugin {plugin} cannot run at generation time: only read-only built-ins (feature-flags) may"
        )));
    }
    match found {
        Found::Dir { root, .. } => {
            let o = Options {
                name: desc.to_string(),
                params: Value::Object(params),
                timeout,
                cwd: opts.cwd.clone(),
                cache_base: opts.cache_base.clone(),
                keep_cache: false,
                inherit_stdin: opts.inherit_stdin,
            };
            runner::run(&root, &root, &o, sink)
        }
        Found::Builtin(b) => {
            let params = Value::Object(params);
            let outcome = (b.run)(&builtin::Call {
                desc,
                params: &params,
                deadline: timeout.map(|t| Instant::now() + t),
            });
            for l in &outcome.transcript {
                sink.line(l);
            }
            Ok(outcome)
        }
    }
}

/// `task_timeout`: seconds as a number, or a duration as text.
fn timeout_param(v: &Value) -> Result<Duration, TaskError> {
    let parsed = match v {
        Value::Number(n) => n
            .as_f64()
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
            .ok_or_else(|| format!("{n} is not a number of seconds")),
        Value::String(s) => parse_duration(s),
        other => Err(format!("{other} is neither seconds nor a duration")),
    };
    parsed.map_err(|e| TaskError::Config(format!("{TIMEOUT_PARAM}: {e}")))
}

/// A duration as people write it: `30` or `30s` (seconds, fractions
/// allowed: `0.5s`), `500ms`, `2m`, `1h`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let bad = || format!("{text:?} is not a duration (like 30s, 500ms, 2m)");
    let n: f64 = number.parse().map_err(|_| bad())?;
    let scale = match unit.trim() {
        "" | "s" | "sec" | "secs" => 1.0,
        "ms" => 0.001,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        u => return Err(format!("{text:?}: unknown unit {u:?} (use ms, s, m or h)")),
    };
    Duration::try_from_secs_f64(n * scale).map_err(|_| bad())
}

/// What `task_run` gives a script: the state the task left, plus
/// `__data__` with its exit code, its output lines and its number of
/// failed checks.
pub fn state_with_data(outcome: &Outcome) -> Value {
    let mut state = match &outcome.state {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    state.insert(
        "__data__".into(),
        serde_json::json!({
            "exit_code": outcome.status.exit_code(),
            "stdout": outcome.stdout,
            "task_check_errors": outcome.check_errors,
        }),
    );
    Value::Object(state)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn durations_read_as_people_write_them() {
        let d = |s: &str| parse_duration(s).unwrap();
        assert_eq!(d("30"), Duration::from_secs(30));
        assert_eq!(d("0.5s"), Duration::from_millis(500));
        assert_eq!(d("500ms"), Duration::from_millis(500));
        assert_eq!(d("2m"), Duration::from_secs(120));
        assert_eq!(d(" 1h "), Duration::from_secs(3600));
        for bad in ["", "s", "-1s", "1.2.3", "10 parsecs", "1e3"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            timeout_param(&json!(1.5)).unwrap(),
            Duration::from_millis(1500)
        );
        assert!(timeout_param(&json!(-1))
            .unwrap_err()
            .to_string()
            .contains("task_timeout"));
        assert!(timeout_param(&json!(true)).is_err());
    }

    #[test]
    fn task_run_runs_a_directory_without_the_reserved_parameter() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("p");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(
            dir.join("task.bash"),
            "echo \"[$(config task_timeout)] $(config word)\"\nupdate_state k v\n",
        )
        .unwrap();
        std::fs::write(dir.join("sparrow.json"), "{}").unwrap();
        let search = SearchPath::new(vec![t.path().into()]);
        let opts = RunOptions {
            cache_base: t.path().join("cache"),
            ..RunOptions::default()
        };
        let params = json!({"word": "hi", "task_timeout": "30s"});
        let o = task_run(&search, "d", "p", params, &opts, &mut runner::Silent).unwrap();
        assert_eq!(o.status, Status::Passed);
        assert_eq!(o.stdout, vec!["[] hi".to_string()]);
        assert_eq!(
            state_with_data(&o),
            json!({"k": "v", "__data__": {"exit_code": 0, "stdout": ["[] hi"], "task_check_errors": 0}})
        );

        let ro = RunOptions {
            read_only: true,
            ..opts.clone()
        };
        let e = task_run(&search, "d", "p", Value::Null, &ro, &mut runner::Silent).unwrap_err();
        assert!(
            matches!(&e, TaskError::Config(m) if m.contains("cannot run at generation time")),
            "{e}"
        );
        let e = task_run(&search, "d", "p", json!([1]), &opts, &mut runner::Silent).unwrap_err();
        assert!(e.to_string().contains("must be a map"), "{e}");
    }

    #[test]
    fn at_generation_time_only_read_only_builtins_run() {
        let search = SearchPath::new(vec![]);
        let ro = RunOptions {
            read_only: true,
            ..RunOptions::default()
        };
        // Refused before they run, so none of them is called here.
        for b in builtin::all().iter().filter(|b| !b.read_only) {
            match task_run(&search, "d", b.name, Value::Null, &ro, &mut runner::Silent) {
                Err(TaskError::Config(m)) => assert!(m.contains(b.name), "{m}"),
                other => panic!("{}: {:?}", b.name, other.map(|o| o.status)),
            }
        }
    }
}
