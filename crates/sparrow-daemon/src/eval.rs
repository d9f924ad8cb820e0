//! The evaluator pool: a few threads, each driving one evaluator process
//! (see `worker`) that holds every managed unit's closures.
//!
//! User code never runs in the daemon itself: a closure that overflows the
//! stack, exhausts memory or hangs inside a native call takes down only
//! its evaluator process. The thread that drives it reports the unit (or,
//! while loading, the definition) that was running, starts a fresh process
//! without it, and carries on. Only plain data crosses: [`Spec`]s after a
//! load, [`Desired`] values after an evaluation. The core sends work to the
//! least busy thread, so other units keep going.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rhai::Dynamic;
use serde::{Deserialize, Serialize};
use sparrow_host::runtime::UnitSnapshot;
use sparrow_isolate::{Failure, Limits, Worker};
use sparrow_lang::resource::{self, Resource};
use sparrow_lang::{keys, Facts};
use sparrow_policy::{Desired, Prop};
use sparrow_source::{Owners, Source};

use crate::core::{Event, Origin};
use crate::spec::Spec;
use crate::worker::{Evaluated, Request, SourceLoaded, ROLE};

mod call;
mod work;
use work::work;

/// A definition's path, kind and text, read once by the core.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SourceText {
    /// Where it is and what it is.
    pub source: Source,
    /// Its text.
    pub text: String,
}

/// The result of evaluating one unit's closures.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// The unit.
    pub unit: String,
    /// The definitions generation it was evaluated with.
    pub generation: u64,
    /// Desired values, or the error (file:line:col: message).
    pub result: Result<Vec<(Prop, Desired)>, String>,
    /// How long the closures took.
    pub took: Duration,
    /// The error was a limit being hit.
    pub timed_out: bool,
    /// The evaluation took its evaluator process down (or had to be
    /// killed): evaluating this unit again would do the same.
    pub crashed: bool,
    /// What the closures `log()`ged.
    pub logs: Vec<(String, String)>,
    /// Who asked.
    pub origin: Origin,
}

/// What a worker reports.
#[derive(Debug)]
pub enum PoolEvent {
    /// Definitions were (re)loaded (sent by worker 0 only).
    Loaded {
        /// The generation that was loaded.
        generation: u64,
        /// Units to manage.
        specs: Vec<Spec>,
        /// Problems with sources (one line each).
        problems: Vec<String>,
    },
    /// A batch of units was evaluated.
    Evaluated(Vec<Evaluation>),
    /// A health closure was called.
    Called(Vec<Event>),
    /// Closures called `alert()`.
    Alerts(Vec<crate::alert::Alert>),
    /// An evaluator's Raku worker changed (started, answered, failed).
    Raku(crate::control::RakuWorker),
}

/// The alerts closures of `unit` raised, as the daemon delivers them.
pub(crate) fn alerts_of(unit: &str, raised: Vec<(String, String)>) -> Vec<crate::alert::Alert> {
    let wall_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    raised
        .into_iter()
        .map(|(message, severity)| crate::alert::Alert {
            unit: unit.to_string(),
            check: "alert()".into(),
            severity: severity.parse().unwrap_or(crate::alert::Severity::Warning),
            message,
            wall_ms,
            failures: 0,
        })
        .collect()
}

pub use call::Call;

enum Job {
    Load(Arc<Vec<SourceText>>, u64),
    Units(Arc<HashMap<String, UnitSnapshot>>),
    Eval { units: Vec<String>, origin: Origin },
    Call(Call, Duration),
}

struct Thread {
    tx: mpsc::Sender<Job>,
    in_flight: Arc<AtomicUsize>,
}

/// How the pool runs.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Evaluator processes (one thread each).
    pub workers: usize,
    /// Jobs queued per worker before the pool says it is busy.
    pub per_worker: usize,
    /// Wall-clock limit of one unit's evaluation.
    pub limit: Duration,
    /// The host's facts.
    pub facts: Facts,
    /// Who may own `lib/` modules.
    pub owners: Owners,
    /// The executable that serves [`ROLE`] (normally `/proc/self/exe`).
    pub exe: PathBuf,
}

/// The evaluator edge, as the actuator sees it: results come back through
/// the report function given at start ([`PoolEvent`]s).
pub trait Evaluator: Send + Sync + 'static {
    /// Loads definitions (replacing what was loaded).
    fn load(&self, sources: Arc<Vec<SourceText>>, generation: u64);
    /// Shares what is known of units (for `service_state()`).
    fn units(&self, units: Arc<HashMap<String, UnitSnapshot>>);
    /// Queues evaluations; returns the units there was no room for.
    fn submit(&self, units: Vec<String>, origin: Origin) -> Vec<String>;
    /// Queues a health closure's call with its wall-clock limit; returns
    /// it when there is no room.
    fn call(&self, call: Call, limit: Duration) -> Option<Call>;
}

/// The pool.
pub struct Pool {
    threads: Vec<Thread>,
    per_worker: usize,
}

impl Pool {
    /// Starts `cfg.workers` threads, each with its evaluator process.
    pub fn start(cfg: PoolConfig, report: Arc<dyn Fn(PoolEvent) + Send + Sync>) -> Pool {
        let threads = (0..cfg.workers.max(1))
            .map(|i| {
                let (tx, rx) = mpsc::channel::<Job>();
                let in_flight = Arc::new(AtomicUsize::new(0));
                let (cfg, report, count) = (cfg.clone(), report.clone(), in_flight.clone());
                std::thread::Builder::new()
                    .name(format!("sparrow-eval-{i}"))
                    .spawn(move || {
                        crate::slice::apply();
                        // The process is spawned by this thread: it dies with it.
                        let mut p = Proc::new(cfg);
                        work(i, rx, &mut p, &*report, &count);
                    })
                    .expect("spawning an evaluator thread");
                Thread { tx, in_flight }
            })
            .collect();
        Pool {
            threads,
            per_worker: cfg.per_worker,
        }
    }

    /// Jobs waiting or running, over all workers.
    pub fn in_flight(&self) -> usize {
        self.threads
            .iter()
            .map(|t| t.in_flight.load(Ordering::Relaxed))
            .sum()
    }
}

impl Evaluator for Pool {
    /// Loads definitions on every worker (queued behind their current work).
    fn load(&self, sources: Arc<Vec<SourceText>>, generation: u64) {
        for t in &self.threads {
            let _ = t.tx.send(Job::Load(sources.clone(), generation));
        }
    }

    /// Tells every worker what is known of units now.
    fn units(&self, units: Arc<HashMap<String, UnitSnapshot>>) {
        for t in &self.threads {
            let _ = t.tx.send(Job::Units(units.clone()));
        }
    }

    /// Queues evaluations, spread over the workers in batches (one message
    /// and one wake-up of a process for many units); returns the units no
    /// worker had room for.
    fn submit(&self, mut units: Vec<String>, origin: Origin) -> Vec<String> {
        let mut free: Vec<(&Thread, usize)> = self
            .threads
            .iter()
            .map(|t| {
                (
                    t,
                    self.per_worker
                        .saturating_sub(t.in_flight.load(Ordering::Relaxed)),
                )
            })
            .filter(|(_, room)| *room > 0)
            .collect();
        if free.is_empty() {
            return units;
        }
        // Equal shares, as far as each has room, but small batches stay
        // whole: one process woken instead of several.
        let share = units.len().div_ceil(free.len()).max(MIN_SHARE);
        for (t, room) in free.iter_mut() {
            let take = share.min(*room).min(units.len());
            if take == 0 {
                continue;
            }
            let batch: Vec<String> = units.drain(..take).collect();
            t.in_flight.fetch_add(batch.len(), Ordering::Relaxed);
            let n = batch.len();
            if t.tx
                .send(Job::Eval {
                    units: batch,
                    origin,
                })
                .is_err()
            {
                t.in_flight.fetch_sub(n, Ordering::Relaxed);
            }
        }
        units
    }

    /// Queues a call on the least busy worker with room.
    fn call(&self, call: Call, limit: Duration) -> Option<Call> {
        let Some(t) = self
            .threads
            .iter()
            .filter(|t| t.in_flight.load(Ordering::Relaxed) < self.per_worker)
            .min_by_key(|t| t.in_flight.load(Ordering::Relaxed))
        else {
            return Some(call);
        };
        t.in_flight.fetch_add(1, Ordering::Relaxed);
        match t.tx.send(Job::Call(call, limit)) {
            Ok(()) => None,
            Err(mpsc::SendError(job)) => {
                t.in_flight.fetch_sub(1, Ordering::Relaxed);
                match job {
                    Job::Call(c, _) => Some(c),
                    _ => None,
                }
            }
        }
    }
}

/// Called with each unit's result: the unit, the reply or why there is
/// none, whether the process was killed for time, and how long it took.
type Done<'a> = dyn FnMut(&str, Result<Evaluated, String>, bool, Duration) + 'a;

/// Batches up to this size go to one evaluator process.
const MIN_SHARE: usize = 64;

/// How long a request to a process may take beyond its own limit.
const SEND: Duration = Duration::from_secs(10);

/// One evaluator process and what it must hold.
struct Proc {
    cfg: PoolConfig,
    child: Option<Worker>,
    sources: Arc<Vec<SourceText>>,
    /// Sources that took a process down while loading: left out.
    skip: BTreeSet<usize>,
    /// Why they were left out.
    crashes: Vec<String>,
    units: Option<Arc<HashMap<String, UnitSnapshot>>>,
}

impl Proc {
    fn new(cfg: PoolConfig) -> Proc {
        Proc {
            cfg,
            child: None,
            sources: Arc::default(),
            skip: BTreeSet::new(),
            crashes: Vec::new(),
            units: None,
        }
    }

    /// Makes sure a process holds the current definitions; when it had to
    /// load them, returns what they gave.
    fn ensure(&mut self) -> Option<SourceLoaded> {
        if self.child.is_some() {
            return None;
        }
        loop {
            match self.start() {
                Ok(loaded) => return Some(loaded),
                Err((Some(i), f)) => {
                    // That definition kills its process: load without it.
                    self.skip.insert(i);
                    self.crashes.push(format!(
                        "{}: evaluating this file {f}; it is left out until it changes",
                        self.sources[i].source.path.display()
                    ));
                }
                Err((None, f)) => {
                    return Some(SourceLoaded {
                        specs: Vec::new(),
                        problems: vec![format!("cannot run definitions: an evaluator process {f}")],
                    })
                }
            }
        }
    }

    fn start(&mut self) -> Result<SourceLoaded, (Option<usize>, Failure)> {
        let mut w = Worker::spawn(&self.cfg.exe, ROLE, Limits::default()).map_err(|f| (None, f))?;
        let init = Request::Init {
            facts: self.cfg.facts.clone(),
            owners: self.cfg.owners,
        };
        w.send(&init, SEND).map_err(|f| (None, f))?;
        let list: Vec<usize> = (0..self.sources.len())
            .filter(|i| !self.skip.contains(i))
            .collect();
        let texts = list.iter().map(|i| self.sources[*i].clone()).collect();
        w.send(&Request::Load(texts), SEND).map_err(|f| (None, f))?;
        let mut out = SourceLoaded {
            specs: Vec::new(),
            problems: self.crashes.clone(),
        };
        let script = sparrow_isolate::hard_limit(sparrow_lang::WALL_CLOCK);
        // A Raku source is translated and then loaded into the resident
        // Raku worker: each may take the bridge's own limit (Raku starts
        // in about a second, more on a loaded machine).
        let raku = sparrow_raku::Options::for_writers(&|k: &str| std::env::var(k).ok()).limit;
        for i in list {
            let wait = if self.sources[i].source.kind.is_raku() {
                script + raku * 2
            } else {
                script
            };
            let r: SourceLoaded = w.recv(wait).map_err(|f| (Some(i), f))?;
            out.specs.extend(r.specs);
            out.problems.extend(r.problems);
        }
        if let Some(u) = &self.units {
            w.send(&Request::Units((**u).clone()), SEND)
                .map_err(|f| (None, f))?;
        }
        self.child = Some(w);
        Ok(out)
    }

    /// Evaluates `units`, calling `done` with each result (and how long
    /// it took). They go to the process as one batch and come back as one
    /// reply. A unit whose evaluation takes the process down (or stalls it
    /// past the hard limit) is found from the process's progress file and
    /// gets the reason; the others, including those whose results died
    /// with the process, are evaluated again in a fresh one.
    fn evaluate(&mut self, units: &[String], done: &mut Done) {
        let limit = self.cfg.limit;
        // The process enforces `limit` itself; this catches what it cannot
        // interrupt (time inside one native call).
        let hard = sparrow_isolate::hard_limit(limit).max(Duration::from_millis(500));
        let mut left: Vec<String> = units.to_vec();
        while !left.is_empty() {
            self.ensure();
            let Some(w) = self.child.as_mut() else {
                for u in &left {
                    let why = "no evaluator process could be started".to_string();
                    done(u, Err(why), false, Duration::ZERO);
                }
                return;
            };
            let req = Request::Eval {
                units: left.clone(),
                limit_ms: limit.as_millis() as u64,
            };
            let start = Instant::now();
            match w
                .send(&req, SEND)
                .and_then(|()| w.recv_progress::<Vec<Evaluated>>(hard))
            {
                Ok(replies) if replies.len() == left.len() => {
                    for (u, e) in left.iter().zip(replies) {
                        let took = Duration::from_micros(e.took_us);
                        done(u, Ok(e), false, took);
                    }
                    return;
                }
                Ok(replies) => {
                    self.child = None;
                    let why = format!(
                        "the evaluator answered {} of {} units",
                        replies.len(),
                        left.len()
                    );
                    for u in &left {
                        done(u, Err(why.clone()), false, Duration::ZERO);
                    }
                    return;
                }
                Err(f) => {
                    // The unit it was on (positions count from 1; 0: it
                    // died before starting, blame the first).
                    let at = (w.progress().max(1) as usize).min(left.len()) - 1;
                    self.child = None;
                    let timed_out = matches!(f, Failure::TimedOut(_));
                    let unit = left.remove(at);
                    let msg = format!("evaluating the closures of {unit} {f}");
                    done(&unit, Err(msg), timed_out, start.elapsed());
                }
            }
        }
    }
}

/// A closure's value for `prop`, read with the definition language's own
/// reader for that key (the one the unit file was rendered with).
pub fn desired(prop: Prop, v: &Dynamic) -> Result<Desired, String> {
    let kind = match keys::lookup(prop.key()).map(|k| k.kind) {
        Some(keys::Kind::Resource(kind)) => kind,
        _ => return Err(format!("{prop} is not a resource key")),
    };
    Ok(match resource::resource(kind, v).map_err(|i| i.message)? {
        Resource::Amount(n) => Desired::Amount(n),
        Resource::Percent(p) => Desired::Percent(p),
        Resource::Infinity => Desired::Infinity,
        Resource::Idle => Desired::Idle,
        Resource::Cpus(set) => Desired::Cpus(set),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closure_values_become_desired_values() {
        let d = |p: Prop, v: Dynamic| desired(p, &v);
        assert_eq!(
            d(Prop::MemoryMax, Dynamic::from("512M")),
            Ok(Desired::Amount(512 << 20))
        );
        assert_eq!(
            d(Prop::MemoryMax, Dynamic::from(1_i64 << 30)),
            Ok(Desired::Amount(1 << 30))
        );
        assert_eq!(
            d(Prop::MemoryHigh, Dynamic::from("50%")),
            Ok(Desired::Percent(50.0))
        );
        assert_eq!(
            d(Prop::MemoryMax, Dynamic::from("infinity")),
            Ok(Desired::Infinity)
        );
        assert_eq!(
            d(Prop::CpuQuota, Dynamic::from("150%")),
            Ok(Desired::Percent(150.0))
        );
        // A bare number is refused, as at generation time (1.5 means
        // 1.5 CPUs to a person, 1.5 % to systemd).
        assert!(d(Prop::CpuQuota, Dynamic::from(50_i64))
            .unwrap_err()
            .contains("bare number"));
        assert_eq!(
            d(Prop::CpuQuota, Dynamic::from("infinity")),
            Ok(Desired::Infinity)
        );
        assert_eq!(
            d(Prop::CpuWeight, Dynamic::from(200_i64)),
            Ok(Desired::Amount(200))
        );
        assert_eq!(
            d(Prop::TasksMax, Dynamic::from(64_i64)),
            Ok(Desired::Amount(64))
        );
        assert_eq!(
            d(Prop::TasksMax, Dynamic::from("10%")),
            Ok(Desired::Percent(10.0))
        );
        assert_eq!(
            d(Prop::AllowedCpus, Dynamic::from("0-2,5")),
            Ok(Desired::Cpus([0, 1, 2, 5].into()))
        );
        assert_eq!(
            d(
                Prop::AllowedCpus,
                Dynamic::from_array(vec![Dynamic::from(1_i64), Dynamic::from(3_i64)])
            ),
            Ok(Desired::Cpus([1, 3].into()))
        );
        assert!(d(Prop::MemoryMax, Dynamic::from("lots"))
            .unwrap_err()
            .contains("is not a size"));
        assert!(d(Prop::CpuWeight, Dynamic::from(0_i64))
            .unwrap_err()
            .contains("out of range"));
        assert!(d(Prop::AllowedCpus, Dynamic::from("3-1")).is_err());
    }
}
