//! `systemd-sparrow hook run UNIT STAGE`: runs one lifecycle stage of a
//! unit (a `hooks.*` closure, or the `orchestration.startup_sequence`) from
//! the command line the generator wrote into the unit
//! (`ExecStartPre=/usr/bin/systemd-sparrow hook run -- %n pre_start`).
//!
//! The runner finds the definition through the generated unit's
//! `SourcePath=`, reads it with the shared loader's rules, and evaluates it
//! in an evaluator process (the containment boundary: no user code runs
//! here). Closures run there; the startup sequence's tasks and commands run
//! from this process, so they get neither the evaluator's address-space
//! limit nor its lifetime. A failure is one line on stderr (the unit's
//! journal) and a non-zero exit, which makes systemd fail the start.

mod child;
mod locate;
mod protocol;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sparrow_isolate::{Limits, Worker};
use sparrow_source::Owners;

pub use child::serve;
pub use locate::{source_of, GENERATOR_DIRS};
use protocol::{Called, Loaded, Plan, PlannedStep, Request};

/// The role the CLI's binary serves with [`serve`].
pub const ROLE: &str = "hook";

/// The default limit for a whole stage: systemd's default
/// `TimeoutStartSec=`, which cuts the stage anyway.
pub const DEFAULT_LIMIT: Duration = Duration::from_secs(90);

/// Which part of the lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// `hooks.pre_start` (`ExecStartPre=`).
    PreStart,
    /// `orchestration.startup_sequence` (`ExecStartPre=`, after `pre_start`).
    StartupSequence,
    /// `hooks.post_start` (`ExecStartPost=`).
    PostStart,
    /// `hooks.pre_stop` (the first `ExecStop=`).
    PreStop,
    /// `hooks.post_stop` (`ExecStopPost=`).
    PostStop,
}

impl Stage {
    /// Every stage, by its command-line name.
    pub const ALL: [(&'static str, Stage); 5] = [
        ("pre_start", Stage::PreStart),
        ("startup_sequence", Stage::StartupSequence),
        ("post_start", Stage::PostStart),
        ("pre_stop", Stage::PreStop),
        ("post_stop", Stage::PostStop),
    ];

    /// The stage named `s` (`pre_start` or `pre-start`).
    pub fn parse(s: &str) -> Option<Stage> {
        let s = s.replace('-', "_");
        Stage::ALL.iter().find(|(n, _)| *n == s).map(|(_, st)| *st)
    }

    /// Its command-line name.
    pub fn name(self) -> &'static str {
        Stage::ALL
            .iter()
            .find(|(_, st)| *st == self)
            .map_or("?", |(n, _)| n)
    }
}

/// How a run is set up.
#[derive(Debug, Clone)]
pub struct Options {
    /// The definition, when known; else found through the generated unit.
    pub source: Option<PathBuf>,
    /// Where generated units are looked for.
    pub generator_dirs: Vec<PathBuf>,
    /// The binary to start evaluator processes from.
    pub exe: PathBuf,
    /// The whole stage must end within this.
    pub limit: Duration,
    /// Who may own definitions.
    pub owners: Owners,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            source: None,
            generator_dirs: locate::generator_dirs(),
            exe: PathBuf::from("/proc/self/exe"),
            limit: DEFAULT_LIMIT,
            owners: Owners::for_generator(),
        }
    }
}

/// A Raku definition's translation, from the cache when it is there.
fn translate_raku(
    path: &std::path::Path,
    text: &str,
    facts: &sparrow_lang::Facts,
) -> Result<String, String> {
    let env = |k: &str| std::env::var(k).ok();
    let opts = sparrow_raku::Options::for_writers(&env);
    let (mut out, _) =
        sparrow_raku::translate(&[sparrow_raku::Input { path, text }], facts, &opts, &env);
    match out.pop() {
        Some(sparrow_raku::Translation::Native(t)) => Ok(t),
        Some(sparrow_raku::Translation::Failed { line, message }) => {
            Err(format!("{}:{line}: Raku: {message}", path.display()))
        }
        _ => Err(format!(
            "{}: `raku` is not installed (Debian: apt-get install rakudo)",
            path.display()
        )),
    }
}

/// Runs `stage` of `unit`; progress and `log()` lines go to `err`. `Err`
/// is the one-line reason the stage failed.
pub fn run(unit: &str, stage: Stage, opts: &Options, err: &mut dyn Write) -> Result<(), String> {
    let deadline = Instant::now() + opts.limit;
    let path = match &opts.source {
        Some(p) => p.clone(),
        None => source_of(unit, &opts.generator_dirs)?,
    };
    let (mut found, refused) = sparrow_source::scan::from_paths(std::slice::from_ref(&path));
    let source = match (found.pop(), refused.first()) {
        (Some(s), _) => s,
        (None, Some(r)) => return Err(format!("{}: {}", r.path.display(), r.reason)),
        (None, None) => return Err(format!("{}: not a definition", path.display())),
    };
    let mut source = source;
    let text = sparrow_source::read_source(&path, opts.owners)
        .map_err(|e| format!("{}: {}", path.display(), e.reason))?
        .text;
    let (host, _) = sparrow_host::RealHost::from_env();
    let facts = sparrow_lang::Host::facts(&host).clone();
    if source.kind.is_raku() {
        // Its translation (usually from the cache); the hook's subs then
        // run in a Raku worker of the evaluator process.
        source.translation = Some(translate_raku(&path, &text, &facts)?);
    }
    let mut worker = Worker::spawn(&opts.exe, ROLE, Limits::default())
        .map_err(|e| format!("cannot run the hook: {e}"))?;
    let left = || deadline.saturating_duration_since(Instant::now());
    let evaluator = |f: sparrow_isolate::Failure| format!("the hook's evaluator process {f}");
    worker
        .send(
            &Request::Load {
                facts,
                owners: opts.owners,
                source,
                text,
                unit: unit.to_string(),
                stage,
            },
            left(),
        )
        .map_err(evaluator)?;
    let loaded: Loaded = worker.recv(left()).map_err(evaluator)?;
    let context = context(unit, stage);
    let call =
        |step: Option<usize>, worker: &mut Worker, err: &mut dyn Write| -> Result<(), String> {
            let limit_ms = left().as_millis() as u64;
            worker
                .send(
                    &Request::Call {
                        step,
                        context: context.clone(),
                        limit_ms,
                    },
                    left(),
                )
                .map_err(evaluator)?;
            // The evaluator stops the closure at its limit; the hard limit
            // covers a native call that never returns.
            let called: Called = worker
                .recv(sparrow_isolate::hard_limit(Duration::from_millis(limit_ms)))
                .map_err(evaluator)?;
            for line in &called.logs {
                let _ = writeln!(err, "{line}");
            }
            called.result
        };
    match loaded.result? {
        Plan::Hook => call(None, &mut worker, err),
        Plan::Steps(steps) => {
            let total = steps.len();
            for (i, step) in steps.iter().enumerate() {
                let n = i + 1;
                let start = Instant::now();
                let result = match step {
                    PlannedStep::Closure { .. } => call(Some(i), &mut worker, err),
                    PlannedStep::Task {
                        desc,
                        plugin,
                        params,
                    } => task(desc, plugin, params.clone(), deadline),
                    PlannedStep::Command(argv) => command(argv, deadline, err),
                };
                let what = step.describe();
                match result {
                    Ok(()) => {
                        let _ = writeln!(
                            err,
                            "step {n}/{total} ({what}): done in {} ms",
                            start.elapsed().as_millis()
                        );
                    }
                    Err(why) => return Err(format!("step {n} ({what}): {why}")),
                }
            }
            Ok(())
        }
    }
}

/// What a hook closure is given: the unit's name, instance and stage, its
/// environment (as systemd set it for this command), and the host's facts.
fn context(unit: &str, stage: Stage) -> serde_json::Value {
    let parsed = sparrow_unit::UnitName::parse(unit).ok();
    let (name, instance) = match &parsed {
        Some(n) => n.instance_parts().unwrap_or((n.stem(), "")),
        None => (unit, ""),
    };
    // Lossy: a variable that is not UTF-8 must not stop the hook.
    let environment: serde_json::Map<String, serde_json::Value> = std::env::vars_os()
        .map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                serde_json::Value::String(v.to_string_lossy().into_owned()),
            )
        })
        .collect();
    serde_json::json!({
        "unit": unit,
        "name": name,
        "instance": instance,
        "stage": stage.name(),
        "environment": environment,
    })
}

/// A `["desc", "plugin", #{..}]` step: the task runner, as `task_run` in a
/// closure, within what is left of the stage's limit.
fn task(
    desc: &str,
    plugin: &str,
    params: serde_json::Value,
    deadline: Instant,
) -> Result<(), String> {
    let search = sparrow_task::search::SearchPath::from_env();
    sparrow_host::tasks::run(
        &search,
        sparrow_task::default_cache_base(),
        desc,
        plugin,
        params,
        deadline,
    )
    .map(|_| ())
    .map_err(|f| {
        let mut msg = format!("{} (exit code {})", f.message, f.exit_code);
        if let Some(last) = f.stderr_tail.last() {
            msg.push_str(&format!("; stderr: {last}"));
        }
        msg
    })
}

/// A command step: run in a process group of its own, killed with it at
/// the deadline; its output goes to the journal with the stage's.
fn command(argv: &[String], deadline: Instant, err: &mut dyn Write) -> Result<(), String> {
    let program = Path::new(&argv[0]);
    if !program.is_absolute() {
        return Err(format!(
            "{:?} is not an absolute path (systemd would not search PATH either)",
            argv[0]
        ));
    }
    let mut cmd = Command::new(program);
    cmd.args(&argv[1..]).stdin(std::process::Stdio::null());
    let ran = sparrow_task::exec::run(cmd, Some(deadline), &mut |line| {
        let _ = writeln!(err, "{line}");
    })
    .map_err(|e| format!("cannot run {}: {e}", argv[0]))?;
    for line in &ran.stderr {
        let _ = writeln!(err, "{line}");
    }
    match ran.exit {
        sparrow_task::exec::Exit::Code(0) => Ok(()),
        sparrow_task::exec::Exit::Code(c) => Err(format!("{} exited with status {c}", argv[0])),
        sparrow_task::exec::Exit::Signal(s) => Err(format!("{} was killed by signal {s}", argv[0])),
        sparrow_task::exec::Exit::TimedOut => Err(format!(
            "{} did not finish within the stage's time limit and was stopped",
            argv[0]
        )),
    }
}

#[cfg(test)]
mod tests;
