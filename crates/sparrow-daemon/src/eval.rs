//! The evaluator pool: a few threads, each owning a Rhai engine with the
//! runtime functions and every managed unit's closures.
//!
//! Rhai values are not `Send`, so each worker loads the definitions itself
//! (from the same texts, sent by the core) and only plain data leaves a
//! worker: [`Spec`]s after a load, [`Desired`] values after an evaluation.
//! Every call runs under an operation limit and a wall-clock limit; a slow
//! or failing closure occupies one worker for at most that long, and the
//! core sends work to the least busy worker, so other units keep going.

use std::collections::BTreeSet;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rhai::{Dynamic, Map};
use sparrow_generator::scan::Source;
use sparrow_generator::{load_text, LibCache, SharedHost};
use sparrow_lang::schema::{self, RtValue};
use sparrow_lang::{keys, value, Closure, Host, Loader, RuntimeHost};
use sparrow_policy::{Desired, Prop};

use crate::spec::{spec_of, Spec};

/// A definition's path, kind and text, read once by the core.
#[derive(Debug, Clone)]
pub struct SourceText {
    /// Where it is and what it is.
    pub source: Source,
    /// Its text.
    pub text: String,
}

/// Who asked for an evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The unit's interval.
    Schedule,
    /// `systemd-sparrow eval` (a control request id).
    Request(u64),
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
    /// A unit was evaluated.
    Evaluated(Evaluation),
}

enum Job {
    Load(Arc<Vec<SourceText>>, u64),
    Eval { unit: String, origin: Origin },
}

struct Worker {
    tx: mpsc::Sender<Job>,
    in_flight: Arc<AtomicUsize>,
}

/// The pool.
pub struct Pool {
    workers: Vec<Worker>,
    per_worker: usize,
}

/// The pool is full; try again later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

/// One unit's closures, on one worker.
#[derive(Default)]
struct UnitClosures {
    resources: Option<Closure>,
    dynamic: Vec<(Prop, Closure)>,
}

impl Pool {
    /// Starts `workers` threads. `per_worker` bounds the jobs queued on
    /// each; `limit` is the wall-clock limit of one closure call.
    pub fn start(
        workers: usize,
        per_worker: usize,
        limit: Duration,
        host: Arc<dyn Host + Send + Sync>,
        runtime: Arc<dyn RuntimeHost>,
        report: Arc<dyn Fn(PoolEvent) + Send + Sync>,
    ) -> Pool {
        let workers = (0..workers.max(1))
            .map(|i| {
                let (tx, rx) = mpsc::channel::<Job>();
                let in_flight = Arc::new(AtomicUsize::new(0));
                let (host, runtime, report, count) = (
                    host.clone(),
                    runtime.clone(),
                    report.clone(),
                    in_flight.clone(),
                );
                std::thread::Builder::new()
                    .name(format!("sparrow-eval-{i}"))
                    .spawn(move || work(i, rx, host, runtime, report, count, limit))
                    .expect("spawning an evaluator thread");
                Worker { tx, in_flight }
            })
            .collect();
        Pool {
            workers,
            per_worker,
        }
    }

    /// Loads definitions on every worker (queued behind their current work).
    pub fn load(&self, sources: Arc<Vec<SourceText>>, generation: u64) {
        for w in &self.workers {
            let _ = w.tx.send(Job::Load(sources.clone(), generation));
        }
    }

    /// Queues an evaluation on the least busy worker, or says the pool is full.
    pub fn submit(&self, unit: &str, origin: Origin) -> Result<(), Busy> {
        let w = self
            .workers
            .iter()
            .min_by_key(|w| w.in_flight.load(Ordering::Relaxed))
            .ok_or(Busy)?;
        if w.in_flight.load(Ordering::Relaxed) >= self.per_worker {
            return Err(Busy);
        }
        w.in_flight.fetch_add(1, Ordering::Relaxed);
        w.tx.send(Job::Eval {
            unit: unit.to_string(),
            origin,
        })
        .map_err(|_| Busy)
    }

    /// Jobs waiting or running, over all workers.
    pub fn in_flight(&self) -> usize {
        self.workers
            .iter()
            .map(|w| w.in_flight.load(Ordering::Relaxed))
            .sum()
    }
}

fn work(
    index: usize,
    rx: mpsc::Receiver<Job>,
    host: Arc<dyn Host + Send + Sync>,
    runtime: Arc<dyn RuntimeHost>,
    report: Arc<dyn Fn(PoolEvent) + Send + Sync>,
    in_flight: Arc<AtomicUsize>,
    limit: Duration,
) {
    let loader = Loader::with_runtime(Rc::new(SharedHost(host)), runtime);
    let mut units: HashMap<String, UnitClosures> = HashMap::new();
    let mut generation = 0;
    while let Ok(job) = rx.recv() {
        match job {
            Job::Load(sources, gen) => {
                let (closures, specs, problems) = load_all(&loader, &sources);
                units = closures;
                generation = gen;
                if index == 0 {
                    report(PoolEvent::Loaded {
                        generation: gen,
                        specs,
                        problems,
                    });
                }
            }
            Job::Eval { unit, origin } => {
                let start = Instant::now();
                let result = match units.get(&unit) {
                    Some(c) => evaluate(&loader, c, &unit, limit),
                    None => Err((
                        format!("{unit} is not managed by the loaded definitions"),
                        false,
                    )),
                };
                let took = start.elapsed();
                in_flight.fetch_sub(1, Ordering::Relaxed);
                let (result, timed_out) = match result {
                    Ok(v) => (Ok(v), false),
                    Err((e, t)) => (Err(e), t),
                };
                report(PoolEvent::Evaluated(Evaluation {
                    unit,
                    generation,
                    result,
                    took,
                    timed_out,
                    origin,
                }));
            }
        }
    }
}

type Loaded = (HashMap<String, UnitClosures>, Vec<Spec>, Vec<String>);

fn load_all(loader: &Loader, sources: &[SourceText]) -> Loaded {
    let mut libs = LibCache::default();
    let mut closures = HashMap::new();
    let mut specs = Vec::new();
    let mut problems = Vec::new();
    for s in sources {
        // The generator refused unsafe files already; the daemon reads what it wrote from.
        let loaded = match load_text(loader, &mut libs, &s.source, &s.text, false) {
            Ok(l) => l,
            Err(r) => {
                problems.push(format!("{}: {}", r.path.display(), r.reason));
                continue;
            }
        };
        if loaded.has_errors() {
            for d in loaded.diagnostics.iter().filter(|d| d.is_error()) {
                problems.push(d.to_string());
            }
            continue;
        }
        for decl in &loaded.units {
            let Some(spec) = spec_of(decl) else { continue };
            let resources = ["monitor", "hooks"].iter().find_map(|k| {
                match decl.runtime.get(*k).and_then(|m| m.get("resources")) {
                    Some(RtValue::Closure(c)) => Some(c.clone()),
                    _ => None,
                }
            });
            let dynamic = decl
                .dynamic
                .iter()
                .filter_map(|(k, c)| Prop::from_key(k).map(|p| (p, c.clone())))
                .collect();
            closures.insert(spec.unit.clone(), UnitClosures { resources, dynamic });
            specs.push(spec);
        }
    }
    (closures, specs, problems)
}

fn evaluate(
    loader: &Loader,
    c: &UnitClosures,
    unit: &str,
    limit: Duration,
) -> Result<Vec<(Prop, Desired)>, (String, bool)> {
    let fail = |d: sparrow_lang::Diagnostic| {
        let timed_out =
            d.message.contains("ran longer than its limit") || d.message.contains("exceeded");
        (d.to_string(), timed_out)
    };
    let mut out = BTreeMap::new();
    for (prop, closure) in &c.dynamic {
        let v = loader.call(closure, vec![], unit, limit).map_err(fail)?;
        out.insert(
            *prop,
            desired(*prop, &v).map_err(|e| (format!("{}: {prop}: {e}", closure.source), false))?,
        );
    }
    if let Some(closure) = &c.resources {
        let v = loader.call(closure, vec![], unit, limit).map_err(fail)?;
        let Some(map) = v.read_lock::<Map>().map(|m| m.clone()) else {
            return Err((
                format!(
                    "{}: the resources closure returned {}, not a map of resource keys",
                    closure.source,
                    value::type_name(&v)
                ),
                false,
            ));
        };
        for (k, v) in &map {
            let prop = keys::lookup(k)
                .filter(|spec| schema::is_resource(spec))
                .and_then(|spec| Prop::from_key(spec.name))
                .ok_or_else(|| {
                    (
                        format!(
                            "{}: the resources closure returned {k:?}, which is not a resource key",
                            closure.source
                        ),
                        false,
                    )
                })?;
            out.insert(
                prop,
                desired(prop, v)
                    .map_err(|e| (format!("{}: {prop}: {e}", closure.source), false))?,
            );
        }
    }
    Ok(out.into_iter().collect())
}

/// Parses `"0-3,6 8"` into CPUs.
fn cpu_list(s: &str) -> Result<BTreeSet<u32>, String> {
    let mut set = BTreeSet::new();
    for part in s.split([',', ' ']).filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b): (u32, u32) = (
            a.trim()
                .parse()
                .map_err(|_| format!("{s:?} is not a CPU list"))?,
            b.trim()
                .parse()
                .map_err(|_| format!("{s:?} is not a CPU list"))?,
        );
        if a > b || b > 8191 {
            return Err(format!("{s:?} is not a CPU list"));
        }
        set.extend(a..=b);
    }
    Ok(set)
}

/// A closure's value for `prop`, read with the definition language's rules.
pub fn desired(prop: Prop, v: &Dynamic) -> Result<Desired, String> {
    let issue = |i: value::Issue| i.message;
    let is_infinity = v
        .clone()
        .into_string()
        .is_ok_and(|s| s.trim() == "infinity");
    match prop {
        Prop::AllowedCpus => {
            let set = match value::array(v) {
                Some(items) => items
                    .iter()
                    .map(|i| value::integer(i, 0, 8191).map(|n| n as u32))
                    .collect::<Result<BTreeSet<u32>, _>>()
                    .map_err(issue)?,
                None => cpu_list(&value::text(v).map_err(issue)?.text)?,
            };
            Ok(Desired::Cpus(set))
        }
        Prop::CpuQuota if is_infinity => Ok(Desired::Infinity),
        Prop::CpuQuota => value::percent(v).map(Desired::Percent).map_err(issue),
        Prop::CpuWeight | Prop::IoWeight => value::integer(v, 1, 10_000)
            .map(|n| Desired::Amount(n as u64))
            .map_err(issue),
        Prop::TasksMax if v.is_int() => value::integer(v, 1, i64::MAX)
            .map(|n| Desired::Amount(n as u64))
            .map_err(issue),
        _ => match value::size(v).map_err(issue)? {
            value::Size::Bytes(n) => Ok(Desired::Amount(n)),
            value::Size::Percent(p) => Ok(Desired::Percent(p)),
            value::Size::Infinity => Ok(Desired::Infinity),
        },
    }
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
        assert_eq!(
            d(Prop::CpuQuota, Dynamic::from(50_i64)),
            Ok(Desired::Percent(50.0))
        );
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
