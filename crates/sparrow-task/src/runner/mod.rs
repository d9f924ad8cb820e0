//! Running a task directory as Sparrow6's task runner does.
//!
//! For a directory: its hook runs first (its stdout is a control channel:
//! `task: NAME` runs `ROOT/tasks/NAME` with the parameters announced
//! before it, `ignore_error:` forgives the next task's failure; only its
//! `set_stdout` lines are shown, under `[hook stdout]`), then its task
//! script (output streamed under `[task stdout]`), then its `task.check`
//! over the hook's and the task's output. A failing task ends the run with
//! its exit code, failing checks with 2, a failing hook with 101.
//!
//! Departures from Sparrow6, each deliberate: control lines from a hook
//! must start the line (Sparrow6 matched anywhere, so `echo "my task: x"`
//! ran a task); Perl tasks run once (Sparrow6 ran them twice); every script
//! runs in its own process group under the run's deadline; paths are
//! quoted; `update_state` in bash writes valid JSON.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use crate::exec::{self, Exit};
use crate::helpers;
use crate::layout::{self, Lang, Script};
use crate::limits::{self, Kept};

mod checks;
mod command;
mod files;
mod hook;
use crate::{config, TaskError};

/// How to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// The name shown in headers (`[task run: task.bash - NAME]`).
    pub name: String,
    /// The caller's parameters (merged over the task's defaults).
    pub params: Value,
    /// The whole run must end by then; its scripts are killed after.
    pub timeout: Option<Duration>,
    /// Working directory of the scripts (the caller's, by default).
    pub cwd: Option<PathBuf>,
    /// Where the run's cache directory is made.
    pub cache_base: PathBuf,
    /// Keep the cache directory afterwards (`SP6_KEEP_CACHE`).
    pub keep_cache: bool,
    /// Let scripts read the caller's stdin (the CLI); otherwise /dev/null.
    pub inherit_stdin: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            name: ".".into(),
            params: Value::Object(Map::new()),
            timeout: None,
            cwd: None,
            cache_base: crate::default_cache_base(),
            keep_cache: false,
            inherit_stdin: false,
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Everything passed.
    Passed,
    /// A task script failed (its exit status).
    TaskFailed(i32),
    /// Checks failed.
    CheckFailed,
    /// A hook failed (its exit status; the run exits 101).
    HookFailed(i32),
    /// The deadline passed.
    TimedOut,
    /// A script of a language this runner cannot run.
    Unsupported(String),
}

impl Status {
    /// The exit code Sparrow6 would end with.
    pub fn exit_code(&self) -> i32 {
        match self {
            Status::Passed => 0,
            Status::TaskFailed(c) => *c,
            Status::CheckFailed => 2,
            Status::HookFailed(_) => 101,
            Status::TimedOut => 124,
            Status::Unsupported(_) => 1,
        }
    }
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// How it ended.
    pub status: Status,
    /// The state scripts left (`update_state`), a map.
    pub state: Value,
    /// The last directory's output, as `task.check` saw it (hook
    /// `set_stdout` lines, then the task's stdout).
    pub stdout: Vec<String>,
    /// The last script's stderr lines.
    pub stderr: Vec<String>,
    /// Failed checks, over the whole run.
    pub check_errors: usize,
    /// Everything printed, in order (headers, output, check report).
    pub transcript: Vec<String>,
}

/// Where the report goes as it is made (the CLI prints it live).
pub trait Sink {
    /// One line of the report.
    fn line(&mut self, text: &str);
}

/// Prints to stdout, flushing each line.
pub struct Print;

impl Sink for Print {
    fn line(&mut self, text: &str) {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{text}");
        let _ = out.flush();
    }
}

/// Keeps nothing (the transcript is in the [`Outcome`] anyway).
pub struct Silent;

impl Sink for Silent {
    fn line(&mut self, _: &str) {}
}

/// `HH:MM:SS :: ` in local time, as Sparrow6 prefixes output lines.
fn stamp() -> String {
    let mut t: libc::time_t = 0;
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: time and localtime_r fill the structures we pass.
    unsafe {
        libc::time(&mut t);
        libc::localtime_r(&t, &mut tm);
    }
    format!("{:02}:{:02}:{:02} :: ", tm.tm_hour, tm.tm_min, tm.tm_sec)
}

/// One run of a root directory.
struct Run<'a> {
    root: PathBuf,
    opts: &'a Options,
    config: Value,
    cache_root: PathBuf,
    depth: usize,
    /// Parameters of the (sub)task about to run. Like Sparrow6, they stay
    /// set after a sub-task, so the hook's own task sees the last ones.
    vars: Value,
    ignore_error: bool,
    ignore_check_error: bool,
    stdout_data: Vec<String>,
    stderr: Vec<String>,
    check_errors: usize,
    deadline: Option<Instant>,
    os: String,
    timestamps: bool,
    sink: &'a mut dyn Sink,
    transcript: Vec<String>,
    libs_written: Vec<Lang>,
    /// What is kept of the scripts' output (bounded).
    kept: Kept,
}

/// Runs the task directory `dir` (its root is `root`: `config.yaml`,
/// `tasks/`, `lib/` are looked up there).
pub fn run(
    root: &Path,
    dir: &Path,
    opts: &Options,
    sink: &mut dyn Sink,
) -> Result<Outcome, TaskError> {
    if !dir.is_dir() {
        return Err(TaskError::NotFound(format!(
            "{}: no such task directory",
            dir.display()
        )));
    }
    let root = root
        .canonicalize()
        .map_err(TaskError::io(format!("{}", root.display())))?;
    let dir = dir
        .canonicalize()
        .map_err(TaskError::io(format!("{}", dir.display())))?;
    // Scripts learn their paths as text: one that is not UTF-8 would be
    // named wrongly (and its script not found, confusingly).
    for p in [&root, &dir, &opts.cache_base] {
        if p.to_str().is_none() {
            return Err(TaskError::Io {
                what: p.display().to_string(),
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "a path that is not UTF-8 cannot be given to scripts",
                ),
            });
        }
    }
    if config::too_deep(&opts.params, limits::MAX_NESTING) {
        return Err(deep_params());
    }
    let mut cfg = config::defaults(&root)?;
    config::merge(&mut cfg, opts.params.clone());
    config::stringify_args(&mut cfg)?;
    let cache_root = make_cache_root(&opts.cache_base)?;
    fs::write(
        cache_root.join("config.json"),
        serde_json::to_vec(&cfg).unwrap_or_default(),
    )
    .map_err(TaskError::io("writing config.json"))?;
    let mut r = Run {
        root,
        opts,
        config: cfg,
        cache_root,
        depth: 0,
        vars: Value::Object(Map::new()),
        ignore_error: false,
        ignore_check_error: false,
        stdout_data: Vec::new(),
        stderr: Vec::new(),
        check_errors: 0,
        deadline: opts.timeout.map(|t| Instant::now() + t),
        os: os_name(),
        timestamps: std::env::var_os("SP6_LOG_NO_TIMESTAMPS").is_none(),
        sink,
        transcript: Vec::new(),
        libs_written: Vec::new(),
        kept: Kept::default(),
    };
    let result = r.dir(&dir);
    let state = r.state();
    if !opts.keep_cache && std::env::var_os("SP6_KEEP_CACHE").is_none() {
        let _ = fs::remove_dir_all(&r.cache_root);
    }
    let status = result?;
    // Said last, where it is seen (and in stderr, which --json and
    // task_run's errors show).
    if let Some(note) = r.kept.note() {
        r.say(note.clone());
        r.stderr.push(note);
    }
    Ok(Outcome {
        status,
        state,
        stdout: r.stdout_data,
        stderr: r.stderr,
        check_errors: r.check_errors,
        transcript: r.transcript,
    })
}

/// The error for parameters nested past [`limits::MAX_NESTING`].
pub(crate) fn deep_params() -> TaskError {
    TaskError::Config(format!(
        "the parameters nest more than {} levels deep",
        limits::MAX_NESTING
    ))
}

fn make_cache_root(base: &Path) -> Result<PathBuf, TaskError> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    fs::create_dir_all(base).map_err(TaskError::io(format!("{}", base.display())))?;
    loop {
        let p = base.join(format!(
            "sparrow-task-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        // 0700: the merged parameters (config.json) may hold secrets, and
        // the base may be shared (/dev/shm, /tmp).
        let made = {
            use std::os::unix::fs::DirBuilderExt;
            fs::DirBuilder::new().mode(0o700).create(&p)
        };
        match made {
            Ok(()) => return Ok(p),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(TaskError::io(format!("{}", p.display()))(e)),
        }
    }
}

/// Why a script was stopped before it ended: its deadline, or the caller
/// was interrupted (Ctrl-C on `task run`).
fn stopped() -> &'static str {
    if crate::exec::interrupted() {
        "was interrupted"
    } else {
        "timed out"
    }
}

/// `os()`: the `ID` of /etc/os-release, lower case (Sparrow6's resolver),
/// read once per process.
fn os_name() -> String {
    static OS: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    OS.get_or_init(read_os_name).clone()
}

fn read_os_name() -> String {
    fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                l.strip_prefix("ID=")
                    .map(|v| v.trim_matches('"').to_lowercase())
            })
        })
        .unwrap_or_else(|| "linux".into())
}

impl Run<'_> {
    fn say(&mut self, text: String) {
        self.sink.line(&text);
        self.transcript.push(text);
    }

    fn header(&mut self, h: &str) {
        if std::env::var_os("SP6_FORMAT_TERSE").is_none() {
            self.say(format!("[{h}]"));
        }
    }

    fn out(&mut self, line: &str) {
        let text = if self.timestamps {
            format!("{}{line}", stamp())
        } else {
            line.to_string()
        };
        self.say(text);
    }

    /// The lines of `lines` the budget keeps.
    fn keep(&mut self, mut lines: Vec<String>) -> Vec<String> {
        lines.retain(|l| self.kept.take(l));
        lines
    }

    fn timed_out(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// One directory: hook, task, checks.
    fn dir(&mut self, dir: &Path) -> Result<Status, TaskError> {
        self.stdout_data.clear();
        // A hook or task Sparrow6 would run here that this runner cannot:
        // refused before anything runs (running the next kind in line
        // instead would run what Sparrow6 would not).
        if let Some(name) = layout::unsupported(dir) {
            self.out(&format!(
                "{name}: this runner runs bash, Perl, Python, Ruby and Raku scripts"
            ));
            return Ok(Status::Unsupported(name.into()));
        }
        // Nothing to run, or checks that would never run: an error before
        // anything runs (Sparrow6 passes such a directory, so a misnamed
        // `task.sh` would be a check that is always green).
        let task = layout::task(dir);
        let hook = layout::hook(dir);
        if task.is_none() {
            if hook.is_none() {
                return Err(TaskError::NotFound(format!(
                    "{}: no task script (task.bash, task.pl, task.py, task.rb, task.raku) and no hook",
                    dir.display()
                )));
            }
            if dir.join("task.check").exists() {
                return Err(TaskError::Check(format!(
                    "{}: task.check would never run: there is a hook but no task script",
                    dir.display()
                )));
            }
        }
        let check_file = dir.join("task.check");
        if task.is_some() && check_file.exists() && checks::precheck(&check_file, self.deadline)? {
            self.out(&format!("task.check {}", stopped()));
            return Ok(Status::TimedOut);
        }
        if let Some(hook) = hook {
            if let Some(s) = self.hook(&hook)? {
                return Ok(s);
            }
        }
        let mut check_pass = true;
        if let Some(task) = task {
            if let Some(s) = self.task(&task)? {
                return Ok(s);
            }
            // Not is_file(): a FIFO or a device there is an error (from
            // the read), not a file silently skipped.
            let check_file = dir.join("task.check");
            if check_file.exists() {
                match self.checks(&check_file)? {
                    Ok(pass) => check_pass = pass,
                    Err(status) => return Ok(status),
                }
            }
        }
        if !check_pass {
            self.say("=================".into());
            self.say("TASK CHECK FAIL".into());
            return Ok(Status::CheckFailed);
        }
        Ok(Status::Passed)
    }

    /// The cache directory for the next script, with its variables.
    fn enter(&mut self) -> Result<PathBuf, TaskError> {
        self.depth += 1;
        let cd = self.cache_root.join(self.depth.to_string());
        fs::create_dir_all(&cd).map_err(TaskError::io("making a cache directory"))?;
        let _ = fs::remove_file(cd.join("stdout"));
        fs::write(
            cd.join("variables.json"),
            serde_json::to_vec(&self.vars).unwrap_or_default(),
        )
        .map_err(TaskError::io("writing variables.json"))?;
        let (vars, slow) = helpers::variables_bash(&self.vars, &cd);
        fs::write(cd.join("variables.bash"), vars)
            .map_err(TaskError::io("writing variables.bash"))?;
        if !slow.is_empty() {
            fs::write(cd.join("names.tbl"), slow).map_err(TaskError::io("writing names.tbl"))?;
        }
        Ok(cd)
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    /// Runs a hook: its stdout lines are control lines, which carry
    /// `run_task`'s parameters (JSON on one line), so they may be as long
    /// as a file.
    fn spawn_hook(
        &mut self,
        script: &Script,
        cd: &Path,
        on_line: &mut dyn FnMut(String),
    ) -> Result<exec::Ran, TaskError> {
        let cmd = self.command(script, cd)?;
        let max = limits::MAX_FILE as usize;
        exec::run_lines(cmd, self.deadline, max, on_line).map_err(|e| TaskError::Io {
            what: format!(
                "running {} ({} is needed)",
                script.path.display(),
                script.lang.program()
            ),
            source: e,
        })
    }

    /// Runs a task script; `Some(status)` ends the run.
    fn task(&mut self, task: &Script) -> Result<Option<Status>, TaskError> {
        let cd = self.enter()?;
        let file = task
            .path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let name = self.opts.name.clone();
        self.header(&format!("task run: {file} - {name}"));
        self.header("task stdout");
        let mut lines = Vec::new();
        let mut ran = {
            let cmd = self.command(task, &cd)?;
            let timestamps = self.timestamps;
            let transcript = &mut self.transcript;
            let sink = &mut *self.sink;
            let kept = &mut self.kept;
            exec::run(cmd, self.deadline, &mut |l: String| {
                let shown = if timestamps {
                    format!("{}{l}", stamp())
                } else {
                    l.clone()
                };
                // Shown live all the same (the CLI keeps nothing).
                sink.line(&shown);
                if kept.take(&l) {
                    transcript.push(shown);
                    lines.push(l);
                }
            })
            .map_err(|e| TaskError::Io {
                what: format!(
                    "running {} ({} is needed)",
                    task.path.display(),
                    task.lang.program()
                ),
                source: e,
            })?
        };
        self.stdout_data.extend(lines);
        self.kept.cut += ran.cut;
        let stderr = self.keep(std::mem::take(&mut ran.stderr));
        if !stderr.is_empty() {
            self.header("task stderr");
            for l in &stderr {
                self.out(l);
            }
        }
        self.stderr = stderr;
        let forgiven = std::mem::take(&mut self.ignore_error);
        if ran.exit == Exit::TimedOut {
            self.out(&format!("task {name} {}", stopped()));
            self.leave();
            return Ok(Some(Status::TimedOut));
        }
        if ran.exit != Exit::Code(0) && !forgiven {
            self.out(&format!("task exit status: {}", ran.exit.code()));
            self.out(&format!("task {name} FAILED"));
            self.leave();
            return Ok(Some(Status::TaskFailed(ran.exit.code())));
        }
        self.leave();
        Ok(None)
    }
}
