//! Running sources through evaluator processes, results in source order.
//!
//! Sources go out in small batches to a few evaluator processes (one per
//! feeding thread); each answers source by source. When a process dies or
//! overruns a source's time, that source (and only that one) fails with
//! the reason, a fresh process takes the rest of the batch, and the run
//! goes on. Results are handed to the caller strictly in source order, as
//! soon as they can be, and the number of results waiting for an earlier
//! one is bounded, so memory does not grow with the number of sources.

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use sparrow_isolate::{Failure, Limits, Worker};
use sparrow_lang::{Diagnostic, Severity};

use crate::eval::Outcome;
use crate::worker::{attach, Reply, Request, ROLE};
use sparrow_source::Source;

/// Sources sent to a process at once.
const BATCH: usize = 16;
/// Sources a feeder keeps queued in its process's pipe, so the process
/// never waits for the feeder (which reads replies only every [`PACE`]).
/// Sources answered but not yet read count as queued, so this is several
/// [`PACE`]s of work: at half this, processes sat idle for ~1 ms at a time
/// (measured: 6% of the wall-clock time, on one CPU and on two).
const QUEUED: usize = 8 * BATCH;
/// How many sources may be handed out beyond the last one committed: what
/// bounds the results held in memory (a few hundred KiB).
const AHEAD: usize = 32 * BATCH;

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
    /// Counts the times the committing thread had to wait for a result:
    /// a pausing feeder then takes its replies at once rather than at the
    /// end of its [`PACE`].
    starved: u64,
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
                if !q.ready.contains_key(&i) {
                    q.starved += 1;
                    shared.changed.notify_all();
                }
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

/// How long a feeder lets replies gather before reading them: one wake-up
/// for many replies instead of one each (on one CPU each wake-up is a
/// context switch away from the evaluator). Cut short when the committing
/// thread has nothing left to write: the reply it needs may be in the pipe
/// while the evaluator waits for room or work (measured on one CPU: up to
/// 8 ms of 50 idle before).
const PACE: Duration = Duration::from_millis(1);

/// One feeding thread: owns one process at a time and keeps it busy, with
/// the next batch already queued in its pipe while it works on one.
fn feed(sh: &Shared) {
    let mut worker: Option<Worker> = None;
    // The committer's waits this feeder has answered.
    let mut seen = 0;
    // Sources sent to the current process and not answered yet, in order.
    let mut pending: VecDeque<usize> = VecDeque::new();
    loop {
        while pending.len() < QUEUED {
            let Some(range) = take_batch(sh, pending.is_empty()) else {
                break;
            };
            let fresh: Vec<usize> = range.collect();
            if let Err(f) = send(sh, &mut worker, &fresh) {
                pending.extend(fresh);
                fail_first(sh, &mut worker, &mut pending, &f);
                continue;
            }
            pending.extend(fresh);
        }
        if pending.is_empty() {
            return;
        }
        let w = worker
            .as_mut()
            .expect("a process holds the pending sources");
        match w.recv_with::<Reply>(HARD_LIMIT).and_then(received) {
            Ok(o) => {
                let mut done = vec![(pending.pop_front().expect("pending"), o)];
                // Whatever else has arrived, in one go; then let more gather,
                // taking what is there whenever the committer runs dry.
                let mut failed = drain(w, &mut pending, &mut done).err();
                publish(sh, done);
                while failed.is_none() && !pending.is_empty() && pause(sh, &mut seen) {
                    let mut done = Vec::new();
                    failed = drain(w, &mut pending, &mut done).err();
                    if !done.is_empty() {
                        publish(sh, done);
                    }
                }
                if let Some(f) = failed {
                    fail_first(sh, &mut worker, &mut pending, &f);
                }
            }
            Err(f) => fail_first(sh, &mut worker, &mut pending, &f),
        }
    }
}

/// A reply with its units' texts back in place.
fn received((reply, texts): (Reply, Vec<u8>)) -> Result<Outcome, Failure> {
    attach(reply, texts).map_err(Failure::Protocol)
}

/// Takes the replies that have arrived, without waiting.
fn drain(
    w: &mut Worker,
    pending: &mut VecDeque<usize>,
    done: &mut Vec<(usize, Outcome)>,
) -> Result<(), Failure> {
    while !pending.is_empty() {
        match w.try_recv_with::<Reply>()? {
            Some(r) => {
                // Checked before the source leaves `pending`: a bad reply
                // is that source's failure (`fail_first`), not a lost one.
                let o = received(r)?;
                done.push((pending.pop_front().expect("pending"), o));
            }
            None => break,
        }
    }
    Ok(())
}

/// Waits for [`PACE`]; true when cut short because the committing thread
/// started waiting for a result since `seen` (which is updated).
fn pause(sh: &Shared, seen: &mut u64) -> bool {
    let q = sh.queue.lock().unwrap_or_else(|p| p.into_inner());
    let (q, _) = sh
        .changed
        .wait_timeout_while(q, PACE, |q| q.starved == *seen && !q.abandoned)
        .unwrap_or_else(|p| p.into_inner());
    let starved = q.starved != *seen && !q.abandoned;
    *seen = q.starved;
    starved
}

/// The next batch of sources, waiting for room when `block` (and the
/// feeder has nothing else to do); `None` when there is no more work.
fn take_batch(sh: &Shared, block: bool) -> Option<std::ops::Range<usize>> {
    let mut q = sh.queue.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        if q.abandoned || q.next >= sh.sources.len() {
            return None;
        }
        if q.next < q.committed + AHEAD {
            break;
        }
        if !block {
            return None;
        }
        q = sh.changed.wait(q).unwrap_or_else(|p| p.into_inner());
    }
    let start = q.next;
    q.next = (start + BATCH).min(sh.sources.len());
    Some(start..q.next)
}

/// Sends sources to the current process, starting one if there is none.
fn send(sh: &Shared, worker: &mut Option<Worker>, sources: &[usize]) -> Result<(), Failure> {
    const SEND: Duration = Duration::from_secs(10);
    if worker.is_none() {
        let mut w = Worker::spawn(sh.exe, ROLE, Limits::default())?;
        w.send(sh.init, SEND)?;
        *worker = Some(w);
    }
    let batch: Vec<Source> = sources.iter().map(|i| sh.sources[*i].clone()).collect();
    let w = worker.as_mut().expect("started above");
    w.send(&Request::Batch(batch), SEND)
        .inspect_err(|_| *worker = None)
}

/// The process failed while the first pending source was running: that
/// source fails with the reason; a fresh process gets the rest.
fn fail_first(
    sh: &Shared,
    worker: &mut Option<Worker>,
    pending: &mut VecDeque<usize>,
    f: &Failure,
) {
    *worker = None;
    let Some(culprit) = pending.pop_front() else {
        return;
    };
    publish(sh, vec![(culprit, crashed(&sh.sources[culprit], f))]);
    let rest: Vec<usize> = pending.iter().copied().collect();
    if !rest.is_empty() {
        if let Err(f) = send(sh, worker, &rest) {
            fail_first(sh, worker, pending, &f);
        }
    }
}

/// Hands results to the committing thread.
fn publish(sh: &Shared, done: Vec<(usize, Outcome)>) {
    {
        let mut q = sh.queue.lock().unwrap_or_else(|p| p.into_inner());
        q.ready.extend(done);
    }
    sh.changed.notify_all();
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

#[cfg(test)]
mod tests {
    use super::*;
    use sparrow_source::SourceKind;
    use std::os::unix::fs::PermissionsExt;

    /// An "evaluator" that answers the first source of each batch it gets,
    /// then does `then` (hang, crash) on the next.
    fn fake(dir: &Path, then: &str) -> std::path::PathBuf {
        let exe = dir.join("fake-evaluator");
        std::fs::write(
            &exe,
            format!(
                "#!/bin/sh\nread init\nread batch\necho '[{{\"Units\":[[],[]]}},[]]'\n{then}\n"
            ),
        )
        .unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        exe
    }

    fn sources(n: usize) -> Vec<Source> {
        (0..n)
            .map(|i| Source {
                path: format!("/defs/{i}.sparrow").into(),
                kind: SourceKind::Definition,
                listed_regular: false,
                translation: None,
            })
            .collect()
    }

    fn outcomes(exe: &Path, n: usize) -> Vec<Result<(), String>> {
        let init = Request::Init {
            facts: sparrow_lang::FixedHost::debian().facts,
            owners: sparrow_source::Owners::Any,
        };
        let mut got = Vec::new();
        run(&sources(n), &init, exe, 1, &mut |i, o| {
            assert_eq!(i, got.len(), "results come in source order");
            got.push(match o {
                Outcome::Units(..) => Ok(()),
                Outcome::Failed(d) => Err(d[0].message.clone()),
                Outcome::Refused(r) => Err(r.reason),
            });
        });
        got
    }

    #[test]
    fn a_hung_source_is_killed_at_the_hard_limit_and_the_rest_still_run() {
        let d = tempfile::tempdir().unwrap();
        let start = std::time::Instant::now();
        let got = outcomes(&fake(d.path(), "sleep 30"), 3);
        assert!(start.elapsed() < HARD_LIMIT * 2, "{:?}", start.elapsed());
        assert_eq!(got[0], Ok(()));
        assert!(
            got[1]
                .as_ref()
                .unwrap_err()
                .contains("did not finish within 3000 ms"),
            "{got:?}"
        );
        assert_eq!(got[2], Ok(()));
    }

    #[test]
    fn a_reply_whose_texts_do_not_add_up_fails_its_own_source_only() {
        // A good, a bad and a good reply in one write: the bad one is
        // taken while draining; the run must neither lose it nor hang.
        let d = tempfile::tempdir().unwrap();
        let good = r#"[{"Units":[[],[]]},[]]"#;
        let bad = r#"[{"Units":[[],[]]},[5]]"#;
        let then = format!("printf '%s\\n%s\\n%s\\n' '{good}' '{bad}' '{good}'; sleep 30");
        let got = outcomes(&fake(d.path(), &then), 4);
        assert_eq!(got.len(), 4);
        assert_eq!(&got[..2], &[Ok(()), Ok(())]);
        assert!(
            got[2].as_ref().is_err_and(|e| e.contains("protocol")),
            "{:?}",
            got[2]
        );
        assert_eq!(got[3], Ok(()), "a fresh process takes the rest");
    }

    #[test]
    fn a_crash_fails_only_the_source_that_was_running() {
        let d = tempfile::tempdir().unwrap();
        let got = outcomes(&fake(d.path(), "kill -SEGV $$"), 4);
        assert_eq!(got[0], Ok(()));
        assert_eq!(
            got[1],
            Err("evaluating this file crashed (SIGSEGV)".to_string())
        );
        assert_eq!(got[2], Ok(()));
        assert!(got[3].is_err(), "{got:?}");
    }

    #[test]
    fn an_evaluator_that_cannot_start_fails_each_source_with_the_reason() {
        let got = outcomes(Path::new("/nonexistent/evaluator"), 2);
        assert_eq!(got.len(), 2);
        for g in got {
            assert!(
                g.as_ref()
                    .unwrap_err()
                    .contains("cannot start an evaluator process"),
                "{g:?}"
            );
        }
    }
}
