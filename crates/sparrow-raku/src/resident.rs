//! The resident Raku worker: runtime subs of Raku definitions.
//!
//! A translated closure calls `raku_sub(file, desc, keys, args)`; the
//! runtime host hands that to a [`Resident`], which keeps one Raku process
//! (the same `bridge.raku`, in runtime mode) with the Raku definitions it
//! was asked about loaded, their subs alive. A call names the sub by its
//! declaration and key path; while it runs, the sub's runtime functions
//! (`get-available-memory()`, `task-run`, `log`, ...) come back as
//! callbacks that the caller answers with the native functions, so that
//! tasks reach our task runner and every limit is the native one.
//!
//! Each call has a time limit; a worker that dies, hangs or breaks the
//! protocol is killed and started again on a later call, after a wait that
//! doubles from 1 s to 60 s while it keeps failing (a worker that crashes
//! on load must not be restarted in a loop).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sparrow_isolate::{Failure, Limits, Worker};

use crate::bridge::{start_bridge, RakuError};
use sparrow_lang::Facts;
use sparrow_source::Owners;

/// Runs a native function a sub called: its name (snake case) and
/// arguments; the result goes back to the sub, an error is thrown there.
pub type Callback<'a> = dyn FnMut(&str, Vec<Value>) -> Result<Value, String> + 'a;

/// Raku's start-up and the shim's compilation.
const START_UP: Duration = Duration::from_secs(20);
/// Evaluating one definition in the worker (Raku compiles it: ~0.15 s).
const LOAD_LIMIT: Duration = Duration::from_secs(10);
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// How the worker is doing, for status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// Processes started so far.
    pub starts: u32,
    /// Calls answered (a sub's own error included).
    pub calls: u64,
    /// Why the last process ended, when one failed.
    pub last_failure: Option<String>,
}

/// One resident Raku process and what it has loaded.
pub struct Resident {
    raku: PathBuf,
    facts: Facts,
    limits: Limits,
    call_limit: Duration,
    worker: Option<Worker>,
    loaded: HashSet<PathBuf>,
    /// No new process before this (after a failure).
    resting_until: Option<Instant>,
    backoff: Duration,
    health: Health,
}

#[derive(Serialize)]
enum Request<'a> {
    #[serde(rename = "load")]
    Load { path: &'a Path, text: &'a str },
    #[serde(rename = "call")]
    Call {
        path: &'a Path,
        desc: &'a str,
        keys: &'a [String],
        args: &'a [Value],
    },
}

#[derive(Serialize)]
#[serde(rename_all = "lowercase")]
enum Answer {
    Result(Value),
    Error(String),
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum Reply {
    Ready(#[allow(dead_code)] bool),
    Ok(Value),
    Error(RakuError),
    Callback(Call),
}

#[derive(Deserialize)]
struct Call {
    #[serde(rename = "fn")]
    name: String,
    #[serde(default)]
    args: Vec<Value>,
}

impl Resident {
    /// A worker running `raku`, each call limited to `call_limit`.
    pub fn new(raku: PathBuf, facts: Facts, call_limit: Duration) -> Resident {
        Resident {
            raku,
            facts,
            limits: crate::bridge::raku_limits(),
            call_limit,
            worker: None,
            loaded: HashSet::new(),
            resting_until: None,
            backoff: FIRST_BACKOFF,
            health: Health::default(),
        }
    }

    /// How it is doing.
    pub fn health(&self) -> &Health {
        &self.health
    }

    /// The process id of the running worker, if any.
    pub fn pid(&self) -> Option<u32> {
        self.worker.as_ref().map(Worker::pid)
    }

    /// Starts the process now (so that a first call does not pay Raku's
    /// start-up inside its own limit).
    pub fn warm(&mut self) -> Result<(), String> {
        self.worker().map(|_| ())
    }

    fn worker(&mut self) -> Result<&mut Worker, String> {
        if self.worker.is_none() {
            if let Some(t) = self.resting_until {
                if Instant::now() < t {
                    return Err(format!(
                        "the Raku worker is resting after a failure ({}); it starts again in {} s",
                        self.health.last_failure.as_deref().unwrap_or("unknown"),
                        t.saturating_duration_since(Instant::now()).as_secs() + 1
                    ));
                }
            }
            let started = start_bridge(&self.raku, &self.facts, true, self.limits, START_UP);
            self.health.starts += 1;
            self.loaded.clear();
            match started {
                Ok(w) => self.worker = Some(w),
                Err(e) => return Err(self.failed(format!("could not start: {e}"))),
            }
        }
        Ok(self.worker.as_mut().expect("started above"))
    }

    /// Records a failure: the process is gone; the next start waits.
    fn failed(&mut self, why: String) -> String {
        self.worker = None;
        self.loaded.clear();
        self.resting_until = Some(Instant::now() + self.backoff);
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        self.health.last_failure = Some(why.clone());
        format!("the Raku worker {why}; it was stopped and starts again on a later call")
    }

    /// Loads the Raku file `path` (once per process), starting the process
    /// when it is not running. A definition's top level calls no runtime
    /// function, so there are no callbacks here.
    pub fn load(&mut self, path: &Path) -> Result<(), String> {
        self.worker()?;
        if self.loaded.contains(path) {
            return Ok(());
        }
        // The loader's one reader and rule (the daemon and the hook runner
        // read the definition with it too).
        let text = sparrow_source::read_source(path, Owners::for_generator())
            .map_err(|e| format!("{}: {}", path.display(), e.reason))?
            .text;
        let limit = LOAD_LIMIT.max(self.call_limit);
        let mut none = |name: &str, _: Vec<Value>| Err(format!("{name}() while loading"));
        self.exchange(&Request::Load { path, text: &text }, limit, &mut none)?
            .map_err(|e| format!("{}: {e}", path.display()))?;
        self.loaded.insert(path.to_path_buf());
        Ok(())
    }

    /// Calls the sub at `keys` of `desc` in the Raku file `path` with
    /// `args`, loading the file first when this process has not.
    pub fn call(
        &mut self,
        path: &Path,
        desc: &str,
        keys: &[String],
        args: &[Value],
        callback: &mut Callback<'_>,
    ) -> Result<Value, String> {
        // Starting and loading are not the call's time: each has its own.
        self.load(path)?;
        let r = self.exchange(
            &Request::Call {
                path,
                desc,
                keys,
                args,
            },
            self.call_limit,
            callback,
        )?;
        self.health.calls += 1;
        // Healthy again: the next failure waits the shortest time.
        self.backoff = FIRST_BACKOFF;
        r
    }

    /// One request and its reply, answering callbacks in between. The
    /// outer error is the worker's (it was stopped); the inner, Raku's.
    fn exchange(
        &mut self,
        req: &Request<'_>,
        limit: Duration,
        callback: &mut Callback<'_>,
    ) -> Result<Result<Value, String>, String> {
        let deadline = Instant::now() + limit;
        let left = |d: Instant| d.saturating_duration_since(Instant::now());
        let w = self.worker()?;
        if let Err(e) = w.send(req, left(deadline)) {
            return Err(self.failed(e.to_string()));
        }
        loop {
            let w = self.worker.as_mut().expect("running");
            let reply = match w.recv::<Reply>(left(deadline)) {
                Ok(r) => r,
                Err(Failure::TimedOut(_)) => {
                    let why = format!("did not answer within {} ms", limit.as_millis());
                    return Err(self.failed(why));
                }
                Err(e) => return Err(self.failed(e.to_string())),
            };
            match reply {
                Reply::Ok(v) => return Ok(Ok(v)),
                Reply::Error(e) if e.line > 0 => {
                    return Ok(Err(format!("{} (line {})", e.message, e.line)))
                }
                Reply::Error(e) => return Ok(Err(e.message)),
                Reply::Ready(_) => return Err(self.failed("sent a second ready line".into())),
                Reply::Callback(c) => {
                    let answer = match callback(&c.name, c.args) {
                        Ok(v) => Answer::Result(v),
                        Err(e) => Answer::Error(e),
                    };
                    let w = self.worker.as_mut().expect("running");
                    if let Err(e) = w.send(&answer, left(deadline)) {
                        return Err(self.failed(e.to_string()));
                    }
                }
            }
        }
    }
}
