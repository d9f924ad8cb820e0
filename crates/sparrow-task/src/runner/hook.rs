//! A hook's run: its stdout is a control channel (`task: NAME` runs a
//! sub-task with the parameters announced before it, `ignore_error:`
//! forgives the next failure), and its `set_stdout` lines are the
//! directory's first output.

use serde_json::{Map, Value};

use super::{Run, Status};
use crate::exec::Exit;
use crate::layout::Script;
use crate::limits;
use crate::TaskError;

impl Run<'_> {
    /// Runs a hook; `Some(status)` ends the run.
    pub(super) fn hook(&mut self, hook: &Script) -> Result<Option<Status>, TaskError> {
        let cd = self.enter()?;
        let mut lines = Vec::new();
        let mut kept = std::mem::take(&mut self.kept);
        let ran = self.spawn_hook(hook, &cd, &mut |l| {
            if kept.take(&l) {
                lines.push(l)
            }
        });
        self.kept = kept;
        let ran = ran?;
        self.kept.cut += ran.cut;
        // A hook that failed (or was stopped) asked for nothing: its
        // sub-tasks run only once it has ended well (as Sparrow6 reads a
        // hook's output after it exits).
        if ran.exit == Exit::TimedOut || self.timed_out() {
            self.leave();
            self.out(&format!("hook {} {}", self.opts.name, super::stopped()));
            return Ok(Some(Status::TimedOut));
        }
        if ran.exit != Exit::Code(0) {
            // As Sparrow6 reports it: each stream under its header, when
            // the hook printed anything to it.
            self.out(&format!("hook exit status: {}", ran.exit.code()));
            self.out(&format!("hook {} FAILED", self.opts.name));
            if !lines.is_empty() {
                self.header("hook stdout");
                for l in &lines {
                    self.out(l);
                }
            }
            let stderr = self.keep(ran.stderr);
            if !stderr.is_empty() {
                self.header("hook stderr");
                for l in &stderr {
                    self.out(l);
                }
            }
            self.stderr = stderr;
            self.leave();
            return Ok(Some(Status::HookFailed(ran.exit.code())));
        }
        // Inside task_var_json_begin .. task_var_json_end, and a finished
        // one waiting for its `task:` line.
        let mut json: Option<String> = None;
        let mut pending: Option<String> = None;
        let mut bash_vars = Map::new();
        for line in &lines {
            let t = line.trim_start();
            if let Some(buf) = json.as_mut() {
                // At the end of the line (PHP's helper prints the JSON on
                // the same line): a value may contain the word.
                match line.trim_end().strip_suffix("task_var_json_end") {
                    Some(before) => {
                        buf.push_str(before);
                        pending = json.take();
                    }
                    None => {
                        buf.push_str(line);
                        buf.push('\n');
                    }
                }
                continue;
            }
            if t.starts_with("ignore_task_error:") || t.starts_with("ignore_error:") {
                self.ignore_error = true;
            } else if t.starts_with("ignore_task_check_error:") {
                self.ignore_check_error = true;
            } else if t.starts_with("task_var_json_begin") {
                json = Some(String::new());
            } else if let Some(rest) = t.strip_prefix("task_var_bash:") {
                let rest = rest.trim_start();
                let (k, v) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
                bash_vars.insert(k.to_string(), Value::String(v.trim_start().to_string()));
            } else if let Some(name) = t.strip_prefix("task:") {
                let name = name.trim();
                if name.is_empty() || name.contains(char::is_whitespace) {
                    continue;
                }
                // Sparrow6 resolves sub-tasks against the runner's root,
                // whichever hook asks. A missing one, a name leaving the
                // root, or nesting past the limit (a sub-task
                // running itself would until the stack overflows), fails
                // the hook before anything runs.
                let sub = match self.sub_task(name) {
                    Ok(Some(_)) if self.depth > limits::MAX_SUBTASK_DEPTH => Err(format!(
                        "task: {name}: sub-tasks nest more than {} deep (does one run itself?)",
                        limits::MAX_SUBTASK_DEPTH
                    )),
                    other => other,
                };
                // Parameters that do not parse fail the hook (as in
                // Sparrow6), rather than running the sub-task without.
                let vars = if !bash_vars.is_empty() {
                    Ok(Value::Object(std::mem::take(&mut bash_vars)))
                } else {
                    match pending.take().map(|t| serde_json::from_str::<Value>(&t)) {
                        None => Ok(Value::Object(Map::new())),
                        Some(Ok(v @ Value::Object(_))) => Ok(v),
                        Some(Ok(_)) => Err(format!("task: {name}: its parameters are not a map")),
                        Some(Err(e)) => {
                            Err(format!("task: {name}: its parameters are not JSON ({e})"))
                        }
                    }
                };
                let sub = match (sub, vars) {
                    (Ok(sub), Ok(vars)) => {
                        self.vars = vars;
                        sub
                    }
                    (Err(why), _) | (_, Err(why)) => {
                        self.out(&why);
                        self.out(&format!("hook {} FAILED", self.opts.name));
                        self.leave();
                        return Ok(Some(Status::HookFailed(1)));
                    }
                };
                if let Some(sub) = sub {
                    let status = self.dir(&sub)?;
                    if status != Status::Passed {
                        self.leave();
                        return Ok(Some(status));
                    }
                }
            }
        }
        // Sub-tasks' output was theirs; this directory's checks see the
        // hook's set_stdout lines, then its own task's output.
        self.stdout_data.clear();
        match limits::read_text(&cd.join("stdout"), limits::MAX_FILE) {
            Ok(text) => {
                self.header("hook stdout");
                for l in text.lines() {
                    if self.kept.take(l) {
                        self.out(l);
                        self.stdout_data.push(l.to_string());
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                self.out(&format!("hook {}: set_stdout's file: {e}", self.opts.name));
                self.leave();
                return Ok(Some(Status::HookFailed(1)));
            }
        }
        self.leave();
        Ok(None)
    }
}
