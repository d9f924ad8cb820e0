//! Running sources through evaluator processes, results in source order.
//!
//! Sources go out in small batches to a few evaluator processes (one per
//! feeding thread); each answers source by source. When a process dies or
//! overruns a source's time, that source (and only that one) fails with
//! the reason, a fresh process takes the rest of the batch, and the run
//! goes on. Results are handed to the caller strictly in source order, as
//! soon as they can be, and the number of results waiting for an earlier
//! one is bounded, so memory does not grow with the number of sources.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use sparrow_isolate::{Failure, Limits, Worker};
use sparrow_lang::{Diagnostic, Severity};

use crate::eval::Outcome;
use crate::scan::Source;
use crate::worker::{Request, ROLE};

/// Sources sent to a process at once.
const BATCH: usize = 16;
/// How many sources may be handed out beyond the last one committed.
const AHEAD: usize = 8 * BATCH;

/// How long one source may take before its process is killed: the
/// language's own wall-clock limit stops scripts with a proper diagnostic;
/// this catches the time spent inside a single native call, which that
/// limit cannot interrupt.
pub const HARD_LIMIT: Duration =
    Duration::from_millis(sparrow_lang::WALL_CLOCK.as_millis() as u64 * 3 / 2);

#[derive(Default)]
struct Queue {
    /// The first source not yet handed out.
    next: usize,
    /// Results waiting for an earlier one.
    ready: BTreeMap<usize, Outcome>,
    /// Every source before this one has been passed on.
    committed: usize,
    /// The caller stopped (panicked): feeders leave.
    abandoned: bool,
}

struct Shared<'a> {
    sources: &'a [Source],
    init: &'a Request,
    exe: &'a Path,
    queue: Mutex<Queue>,
    changed: Condvar,
}

/// Evaluates `sources` in up to `workers` processes started from `exe`,
/// calling `on` with each result in source order.
pub(crate) fn run(
    sources: &[Source],
    init: &Request,
    exe: &Path,
    workers: usize,
    on: &mut dyn FnMut(usize, Outcome),
) {
    let shared = Shared {
        sources,
        init,
        exe,
        queue: Mutex::default(),
        changed: Condvar::new(),
    };
    let workers = workers.clamp(1, sources.len().div_ceil(BATCH).max(1));
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| feed(&shared));
        }
        // Wakes the feeders if `on` panics, so the scope can end.
        struct Abandon<'a, 'b>(&'a Shared<'b>);
        impl Drop for Abandon<'_, '_> {
            fn drop(&mut self) {
                if let Ok(mut q) = self.0.queue.lock() {
                    q.abandoned = true;
                }
                self.0.changed.notify_all();
            }
        }
        let _guard = Abandon(&shared);
        let mut i = 0;
        while i < sources.len() {
            let done: Vec<Outcome> = {
                let mut q = shared.queue.lock().unwrap_or_else(|p| p.into_inner());
                while !q.ready.contains_key(&i) {
                    q = shared.changed.wait(q).unwrap_or_else(|p| p.into_inner());
                }
                let mut done = Vec::new();
                while let Some(o) = q.ready.remove(&(i + done.len())) {
                    done.push(o);
                }
                q.committed = i + done.len();
                done
            };
            shared.changed.notify_all();
            for o in done {
                on(i, o);
                i += 1;
            }
        }
    });
}

/// One feeding thread: owns one process at a time and keeps it busy.
fn feed(sh: &Shared) {
    let mut worker: Option<Worker> = None;
    loop {
        let (start, end) = {
            let mut q = sh.queue.lock().unwrap_or_else(|p| p.into_inner());
            loop {
                if q.abandoned || q.next >= sh.sources.len() {
                    return;
                }
                if q.next < q.committed + AHEAD {
                    break;
                }
                q = sh.changed.wait(q).unwrap_or_else(|p| p.into_inner());
            }
            let start = q.next;
            q.next = (start + BATCH).min(sh.sources.len());
            (start, q.next)
        };
        let mut i = start;
        let mut sent = false;
        while i < end {
            let result = step(sh, &mut worker, &mut sent, &sh.sources[i..end]);
            let outcome = result.unwrap_or_else(|f| {
                worker = None;
                sent = false;
                crashed(&sh.sources[i], &f)
            });
            {
                let mut q = sh.queue.lock().unwrap_or_else(|p| p.into_inner());
                q.ready.insert(i, outcome);
            }
            sh.changed.notify_all();
            i += 1;
        }
    }
}

/// The outcome of `rest[0]`, starting a process and sending `rest` first
/// when needed.
fn step(
    sh: &Shared,
    worker: &mut Option<Worker>,
    sent: &mut bool,
    rest: &[Source],
) -> Result<Outcome, Failure> {
    const SEND: Duration = Duration::from_secs(10);
    if worker.is_none() {
        let mut w = Worker::spawn(sh.exe, ROLE, Limits::default())?;
        w.send(sh.init, SEND)?;
        *worker = Some(w);
    }
    let w = worker.as_mut().expect("started above");
    if !*sent {
        w.send(&Request::Batch(rest.to_vec()), SEND)?;
        *sent = true;
    }
    w.recv(HARD_LIMIT)
}

/// A source whose evaluation took its process down (or had to be stopped).
fn crashed(src: &Source, f: &Failure) -> Outcome {
    let help = match f {
        Failure::TimedOut(_) => format!(
            "definitions run at every boot and must be quick: each file may take {} s, including time inside built-in functions (contains, ==, to_debug on large arrays)",
            sparrow_lang::WALL_CLOCK.as_secs()
        ),
        Failure::Died(d) if d.to_string().contains("stack") => {
            "look for data nested thousands of levels deep (an array inside an array, built in a loop) or recursion without an end".into()
        }
        Failure::Died(d) if d.to_string().contains("memory") => {
            "look for values that grow without bound, such as a string doubled in a loop and then replaced".into()
        }
        _ => "every other definition was still evaluated; this is a bug if the file is ordinary, please report it".into(),
    };
    Outcome::Failed(vec![Diagnostic {
        severity: Severity::Error,
        file: src.path.clone(),
        line: 0,
        col: 0,
        len: 1,
        message: format!("evaluating this file {f}"),
        help: Some(help),
    }])
}
