//! A directory's `task.check`, evaluated over its output, with code
//! blocks run as scripts of the same run.

use std::fs;
use std::path::Path;
use std::time::Instant;

use super::{Run, Status};
use crate::check::{self, ReportLine};
use crate::exec;
use crate::layout::{Lang, Script};
use crate::limits;
use crate::TaskError;

/// A directory's `task.check`, checked before anything in the directory
/// runs (a broken check file must not let a task with side effects run
/// first).
pub(super) fn precheck(
    file: &Path,
    deadline: Option<std::time::Instant>,
) -> Result<bool, TaskError> {
    let text = limits::read_text(file, limits::MAX_FILE)
        .map_err(|e| TaskError::Check(format!("{}: {e}", file.display())))?;
    check::precheck(&text, &file.display().to_string(), deadline)
}

impl Run<'_> {
    /// Evaluates `task.check` over what the directory printed; whether it
    /// passed (or its failures are forgiven), or the status a failing
    /// code block ends the run with.
    pub(super) fn checks(&mut self, file: &Path) -> Result<Result<bool, Status>, TaskError> {
        let text = limits::read_text(file, limits::MAX_FILE)
            .map_err(|e| TaskError::Check(format!("{}: {e}", file.display())))?;
        let data = self.stdout_data.clone();
        let cache_root = self.cache_root.clone();
        let name = file.display().to_string();
        let report = {
            let mut blocks = CheckBlocks { run: self };
            let mut cx = check::Context {
                file: &name,
                cache_root: &cache_root,
                blocks: &mut blocks,
            };
            check::evaluate(&text, &data, &mut cx)?
        };
        if !report.lines.is_empty() {
            self.header("task check");
        }
        for l in &report.lines {
            match l {
                ReportLine::Check { message, ok } => {
                    self.say(format!("{message} {}", if *ok { "True" } else { "False" }))
                }
                // Sparrow6 prints notes as they are (without colours).
                ReportLine::Note(n) => self.say(n.clone()),
            }
        }
        // The evaluation stopped at the deadline, or a block was killed
        // there (its 124 is no failure of its own).
        if report.timed_out || (report.aborted.is_some() && self.timed_out()) {
            self.out(&format!("task.check {}", super::stopped()));
            return Ok(Err(Status::TimedOut));
        }
        if let Some(a) = report.aborted {
            self.say(format!("task exit status: {}", a.code));
            self.say("task task-check FAILED".into());
            for l in &a.stderr {
                self.say(l.clone());
            }
            self.stderr = a.stderr;
            return Ok(Err(Status::TaskFailed(a.code)));
        }
        let forgiven = std::mem::take(&mut self.ignore_check_error);
        self.check_errors += report.failed;
        Ok(Ok(report.failed == 0 || forgiven))
    }
}

/// Runs task.check's code blocks as scripts of this run: same helpers,
/// configuration, state and deadline (Sparrow6 runs them as a nested task
/// from `.checks/` in the cache root).
struct CheckBlocks<'r, 'a> {
    run: &'r mut Run<'a>,
}

impl check::Blocks for CheckBlocks<'_, '_> {
    fn run(&mut self, lang: Lang, code: &str) -> Result<check::BlockRun, TaskError> {
        let dir = self.run.cache_root.join(".checks");
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).map_err(TaskError::io("making .checks"))?;
        let path = dir.join(format!("task.{}", lang.ext()));
        fs::write(&path, code).map_err(TaskError::io("writing a check block"))?;
        let script = Script { path, lang };
        let cd = self.run.enter()?;
        let cmd = self.run.command(&script, &cd);
        let mut stdout = Vec::new();
        let kept = &mut self.run.kept;
        let ran = cmd.and_then(|cmd| {
            let mut keep = |l: String| {
                if kept.take(&l) {
                    stdout.push(l)
                }
            };
            exec::run(cmd, self.run.deadline, &mut keep).map_err(|e| TaskError::Io {
                what: format!("running a task.check block ({} is needed)", lang.program()),
                source: e,
            })
        });
        self.run.leave();
        let ran = ran?;
        self.run.kept.cut += ran.cut;
        Ok(check::BlockRun {
            exit: ran.exit.code(),
            stdout,
            stderr: self.run.keep(ran.stderr),
        })
    }

    fn deadline(&self) -> Option<Instant> {
        self.run.deadline
    }
}
