//! The core: one event loop, one closed set of events, decisions in
//! [`plan`] (pure), effects in spawned tasks that report back as events.
//!
//! ```text
//!  schedule (next due unit) ─┐
//!  systemd signals (watcher) ┤                        ┌─► pool.submit (evaluate closures)
//!  control socket (clients) ─┼─► mpsc<Event> ─► Core ─┼─► spawn: SetUnitProperties + read back
//!  evaluator pool (workers) ─┤     (bounded)          ├─► spawn: read live values / unit info
//!  signals, sources, bus ────┘                        └─► journal, state file, sd_notify
//! ```

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sparrow_host::runtime::UnitSnapshot;
use sparrow_host::RealHost;
use sparrow_lang::Host;
use sparrow_policy::{judge, Live, Machine, Millis, Prop, PropHistory, RateLimit, Target, Verdict};
use sparrow_source::{Mode, Owners, SourceKind};
use tokio::sync::{mpsc, oneshot};
use tracing::{error, info, warn};

use crate::control::{
    self, Applied, DaemonStatus, Decision, EvalRecord, EvalReport, Request, Response, Status,
    UnitStatus,
};
use crate::eval::{Evaluation, Origin, Pool, PoolConfig, PoolEvent, SourceText};
use crate::spec::Spec;
use crate::state::{self, Persisted};
use crate::systemd::{unit_of_path, unit_path, Bus, Systemd, UnitInfo, Via};

/// How the daemon runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// The control socket.
    pub control: PathBuf,
    /// The state file.
    pub state: PathBuf,
    /// Evaluator threads.
    pub workers: usize,
    /// Wall-clock limit of one closure call.
    pub call_limit: Duration,
    /// Live changes per minute across all units.
    pub max_changes_per_minute: usize,
}

impl Config {
    /// Defaults, with `SYSTEMD_SPARROWD_*` environment overrides.
    pub fn from_env() -> Config {
        let env = |k: &str| std::env::var(k).ok();
        let num = |k: &str, d: u64| env(k).and_then(|v| v.parse().ok()).unwrap_or(d);
        Config {
            control: control::socket_path(),
            state: env("SYSTEMD_SPARROWD_STATE").map_or_else(
                || PathBuf::from("/run/systemd-sparrow/state.json"),
                PathBuf::from,
            ),
            workers: num("SYSTEMD_SPARROWD_WORKERS", 2) as usize,
            call_limit: Duration::from_millis(num("SYSTEMD_SPARROWD_CALL_LIMIT_MS", 1000)),
            max_changes_per_minute: num("SYSTEMD_SPARROWD_MAX_CHANGES_PER_MINUTE", 60) as usize,
        }
    }
}

/// Everything that can happen to the core.
enum Event {
    Pool(PoolEvent),
    Control(Request, oneshot::Sender<Response>),
    Connected(Result<Bus, String>),
    BusLost(String),
    UnitChanged {
        unit: String,
        active_state: String,
    },
    Reloading(bool),
    Sources(Vec<SourceText>, Vec<String>),
    Info {
        unit: String,
        result: Result<UnitInfo, String>,
    },
    Live {
        unit: String,
        result: Result<BTreeMap<Prop, Live>, String>,
        then: Option<Pending>,
    },
    Applied {
        unit: String,
        changes: Vec<Change>,
        result: Result<BTreeMap<Prop, Live>, String>,
    },
    Terminate,
    Reload,
}

/// An evaluation waiting for live values before it can be decided.
struct Pending {
    targets: Vec<Target>,
    origin: Origin,
    record: EvalRecord,
}

/// One property being changed.
#[derive(Debug, Clone)]
struct Change {
    target: Target,
    old: Live,
    reason: String,
}

struct UnitRt {
    spec: Spec,
    info: Option<UnitInfo>,
    live: BTreeMap<Prop, Live>,
    next_due: Millis,
    in_flight: bool,
    applying: bool,
    cap: RateLimit,
    last_eval: Option<EvalRecord>,
    applied: VecDeque<Applied>,
    evaluations: u64,
    errors: u64,
    slow: u64,
    /// The last evaluation error, logged once until it changes.
    last_error: Option<String>,
    /// Why the unit is not evaluated any more: its evaluation took an
    /// evaluator process down. Cleared when the definitions are re-read.
    quarantined: Option<String>,
}

impl UnitRt {
    fn new(spec: Spec, now: Millis) -> UnitRt {
        // Spread first evaluations over the interval so that many units do
        // not all evaluate at once after a start.
        let jitter = spec
            .unit
            .bytes()
            .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)))
            % spec.interval_ms.max(1);
        UnitRt {
            cap: RateLimit::per_minute(spec.max_changes_per_minute),
            next_due: now + jitter.min(5_000),
            spec,
            info: None,
            live: BTreeMap::new(),
            in_flight: false,
            applying: false,
            last_eval: None,
            applied: VecDeque::new(),
            evaluations: 0,
            errors: 0,
            slow: 0,
            last_error: None,
            quarantined: None,
        }
    }

    fn active(&self) -> bool {
        self.info
            .as_ref()
            .is_some_and(|i| matches!(i.active_state.as_str(), "active" | "reloading"))
    }
}

/// The decision for one evaluation of one unit.
pub struct Plan {
    /// What was decided per property.
    pub decisions: Vec<Decision>,
    /// What to apply (with the reason), if anything.
    pub apply: Vec<(Target, String)>,
}

fn show(prop: Prop, v: &Live) -> String {
    match (prop, v) {
        (_, Live::Num(sparrow_policy::INFINITY)) => "infinity".into(),
        (Prop::CpuQuota, Live::Num(us)) => format!("{}%", *us as f64 / 10_000.0),
        (p, Live::Num(n)) if p.key().starts_with("memory") => sparrow_lang::value::render_size(*n),
        (_, v) => v.to_string(),
    }
}

/// Decides which of `targets` to apply now: hysteresis per property
/// (threshold, dwell), then the unit's and the daemon's caps. Pure: `now`
/// and the rate limits are passed in; the limits record what is approved.
#[allow(clippy::too_many_arguments)]
pub fn plan(
    targets: &[Target],
    live: &BTreeMap<Prop, Live>,
    spec: &Spec,
    history: &BTreeMap<Prop, PropHistory>,
    unit_cap: &mut RateLimit,
    global: &mut RateLimit,
    now: Millis,
    dry_run: bool,
) -> Plan {
    let mut decisions = Vec::new();
    let mut apply = Vec::new();
    for t in targets {
        let Some(l) = live.get(&t.prop) else { continue };
        let h = history.get(&t.prop).cloned().unwrap_or_default();
        let v = judge(
            &t.value,
            l,
            spec.thresholds.get(&t.prop).copied(),
            spec.min_dwell_ms,
            &h,
            now,
        );
        let verdict = match v {
            Verdict::Same => "same".to_string(),
            Verdict::BelowThreshold { delta } => format!(
                "below threshold (changes by {})",
                show(t.prop, &Live::Num(delta))
            ),
            Verdict::Dwell { wait_ms } => format!("dwell ({} s left)", wait_ms.div_ceil(1000)),
            Verdict::Apply { growing } => {
                if !unit_cap.allows(now) {
                    format!(
                        "unit cap ({} changes per minute)",
                        spec.max_changes_per_minute
                    )
                } else if !global.allows(now) {
                    "daemon cap (changes per minute across units)".to_string()
                } else {
                    if !dry_run {
                        unit_cap.record(now);
                        global.record(now);
                    }
                    let reason = if growing { "grow" } else { "shrink" };
                    apply.push((
                        t.clone(),
                        format!("{reason}: the closure asked for {}", show(t.prop, &t.value)),
                    ));
                    "apply".to_string()
                }
            }
        };
        decisions.push(Decision {
            prop: t.prop,
            desired: show(t.prop, &t.value),
            live: show(t.prop, l),
            verdict,
        });
    }
    Plan { decisions, apply }
}

/// The monotonic clock in ms (`CLOCK_MONOTONIC`: since boot, never set
/// back, the same for every process): what dwell times and rate limits
/// are measured with, so that setting the wall clock changes nothing.
pub fn now_ms() -> Millis {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime fills the struct; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000
}

/// Wall-clock time in ms since the epoch, for what people read (`status`).
fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A message for the log, cut to a readable length.
fn clip(msg: &str) -> String {
    const MAX: usize = 500;
    match msg.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}… ({} bytes in all)", &msg[..i], msg.len()),
        None => msg.to_string(),
    }
}

/// How the host's resources are sized, for percentages.
fn machine(host: &RealHost) -> Machine {
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
    };
    let tasks = match (
        read("/proc/sys/kernel/pid_max"),
        read("/proc/sys/kernel/threads-max"),
    ) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b).unwrap_or(4_194_304),
    };
    Machine {
        memory: host.facts().memory_total,
        tasks,
    }
}

/// Evaluations due within this window are started together.
const BATCH_MS: u64 = 250;

struct Counters {
    evaluations: u64,
    errors: u64,
    slow: u64,
    postponed: u64,
    applied: u64,
}

struct Core {
    cfg: Config,
    tx: mpsc::Sender<Event>,
    pool: Pool,
    bus: Option<Bus>,
    connecting: bool,
    reconnect_at: Option<Instant>,
    backoff: Duration,
    units: BTreeMap<String, UnitRt>,
    watched: Arc<RwLock<HashSet<String>>>,
    generation: u64,
    loaded: u64,
    problems: Vec<String>,
    global: RateLimit,
    persisted: Persisted,
    /// What evaluator processes know of units (`service_state()`).
    snapshot: HashMap<String, UnitSnapshot>,
    /// The snapshot changed since it was last sent to the pool.
    snapshot_dirty: bool,
    machine: Machine,
    counters: Counters,
    requests: HashMap<u64, oneshot::Sender<Response>>,
    next_request: u64,
    ready: bool,
    watchdog: Option<Duration>,
    last_ping: Instant,
    last_status: Instant,
    last_status_text: String,
    /// An event changed the schedule: run the timer now.
    reschedule: bool,
}

impl Core {
    fn send_later(&self, ev: impl std::future::Future<Output = Event> + Send + 'static) {
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let _ = tx.send(ev.await).await;
        });
    }

    fn read_sources(&self) {
        let tx = self.tx.clone();
        tokio::task::spawn_blocking(move || {
            let env = |k: &str| std::env::var(k).ok();
            let (sources, refused) = sparrow_source::find(Mode::System, &env);
            let mut problems: Vec<String> = refused
                .iter()
                .map(|r| format!("{}: {}", r.path.display(), r.reason))
                .collect();
            let mut texts = Vec::new();
            for s in sources {
                if s.kind == SourceKind::RakuShebang {
                    // The evaluator reports it (the Raku bridge is not here yet).
                    texts.push(SourceText {
                        source: s,
                        text: String::new(),
                    });
                    continue;
                }
                // The same rule as the generator: a file someone else could
                // write is not run as root; only regular files are read.
                match sparrow_source::read_source(&s.path, Owners::for_generator()) {
                    Ok(t) => texts.push(SourceText {
                        source: s,
                        text: t.text,
                    }),
                    Err(e) => problems.push(format!("{}: {}", s.path.display(), e.reason)),
                }
            }
            let _ = tx.blocking_send(Event::Sources(texts, problems));
        });
    }

    fn connect(&mut self) {
        if self.connecting {
            return;
        }
        self.connecting = true;
        self.send_later(async { Event::Connected(Bus::connect(Duration::from_secs(5)).await) });
    }

    fn refresh_info(&self, unit: &str) {
        let Some(bus) = self.bus.clone() else { return };
        let unit = unit.to_string();
        self.send_later(async move {
            let result = bus.info(&unit).await;
            Event::Info { unit, result }
        });
    }

    fn update_snapshot(&mut self, unit: &str) {
        if let Some(u) = self.units.get(unit) {
            let info = u.info.clone().unwrap_or_default();
            let snap = UnitSnapshot {
                active_state: info.active_state,
                control_group: info.control_group,
            };
            if self.snapshot.get(unit) != Some(&snap) {
                self.snapshot.insert(unit.to_string(), snap);
                // Sent with the next timer run: many changes, one message.
                self.snapshot_dirty = true;
                self.reschedule = true;
            }
        }
    }

    fn handle(&mut self, ev: Event) -> bool {
        match ev {
            Event::Terminate => return false,
            Event::Reload => self.read_sources(),
            Event::Sources(texts, problems) => {
                self.generation += 1;
                self.problems = problems;
                self.pool.load(Arc::new(texts), self.generation);
            }
            Event::Pool(PoolEvent::Loaded {
                generation,
                specs,
                problems,
            }) => self.on_loaded(generation, specs, problems),
            Event::Pool(PoolEvent::Evaluated(e)) => self.on_evaluated(e),
            Event::Connected(Ok(bus)) => {
                self.connecting = false;
                self.backoff = Duration::from_millis(100);
                info!(VIA = ?bus.via(), "connected to systemd ({})", via_name(Some(bus.via())));
                self.watch(bus.clone());
                self.bus = Some(bus);
                self.reschedule = true;
                for u in self.units.values_mut() {
                    // Anything may have changed while we were away.
                    u.live.clear();
                }
                let names: Vec<String> = self.units.keys().cloned().collect();
                for n in names {
                    self.refresh_info(&n);
                }
                self.maybe_ready();
            }
            Event::Connected(Err(e)) => {
                self.connecting = false;
                warn!(
                    "cannot connect to systemd: {e}; retrying in {:?}",
                    self.backoff
                );
                self.reconnect_at = Some(Instant::now() + self.backoff);
                self.backoff = (self.backoff * 2).min(Duration::from_secs(5));
                self.reschedule = true;
            }
            Event::BusLost(why) => {
                if self.bus.take().is_some() {
                    warn!("lost the connection to systemd: {why}; reconnecting");
                }
                self.reconnect_at = Some(Instant::now() + self.backoff);
                self.reschedule = true;
            }
            Event::Reloading(true) => info!("systemd is reloading"),
            Event::Reloading(false) => {
                info!("systemd reloaded; re-reading definitions");
                self.read_sources();
            }
            Event::UnitChanged { unit, active_state } => {
                let Some(u) = self.units.get_mut(&unit) else {
                    return true;
                };
                let was_active = u.active();
                u.info.get_or_insert_with(UnitInfo::default).active_state = active_state;
                let now_active = u.active();
                if now_active && !was_active {
                    // A (re)started unit gets its limits right away.
                    u.next_due = now_ms();
                    self.reschedule = true;
                    u.live.clear();
                    self.refresh_info(&unit);
                }
                self.update_snapshot(&unit);
            }
            Event::Info { unit, result } => match result {
                Ok(info) => {
                    if let Some(u) = self.units.get_mut(&unit) {
                        let was_active = u.active();
                        u.info = Some(info);
                        if u.active() && !was_active {
                            // Started before we watched it (its signal came
                            // before the unit was ours): evaluate it now, as
                            // on any start.
                            u.next_due = now_ms();
                            u.live.clear();
                            self.reschedule = true;
                        }
                        self.update_snapshot(&unit);
                    }
                }
                Err(e) => warn!(UNIT = %unit, "cannot read the state of {unit}: {e}"),
            },
            Event::Live { unit, result, then } => match result {
                Ok(live) => {
                    if let Some(u) = self.units.get_mut(&unit) {
                        u.live.extend(live);
                    }
                    if let Some(p) = then {
                        self.decide(&unit, p);
                    }
                }
                Err(e) => {
                    warn!(UNIT = %unit, "cannot read live values of {unit}: {e}");
                    if let Some(p) = then {
                        if let Origin::Request(id) = p.origin {
                            self.reply(
                                id,
                                Response::error(format!("cannot read live values of {unit}: {e}")),
                            );
                        }
                    }
                }
            },
            Event::Applied {
                unit,
                changes,
                result,
            } => self.on_applied(unit, changes, result),
            Event::Control(req, reply) => self.on_control(req, reply),
        }
        true
    }

    fn watch(&self, bus: Bus) {
        let tx = self.tx.clone();
        let watched = self.watched.clone();
        tokio::spawn(async move {
            let why = watch_bus(&bus, &tx, &watched).await;
            let _ = tx.send(Event::BusLost(why)).await;
        });
    }

    fn maybe_ready(&mut self) {
        if !self.ready && self.bus.is_some() && self.loaded > 0 {
            self.ready = true;
            let _ = sd_notify::notify(&[
                sd_notify::NotifyState::Ready,
                sd_notify::NotifyState::Status(&self.status_line()),
            ]);
            info!("ready: {}", self.status_line());
        }
    }

    fn status_line(&self) -> String {
        let active = self.units.values().filter(|u| u.active()).count();
        format!(
            "managing {} units ({active} active); {} changes applied; {} evaluation errors; {}",
            self.units.len(),
            self.counters.applied,
            self.counters.errors,
            via_name(self.bus.as_ref().map(Bus::via))
        )
    }

    fn on_loaded(&mut self, generation: u64, specs: Vec<Spec>, problems: Vec<String>) {
        if generation != self.generation {
            return; // a newer load is on its way
        }
        self.loaded = generation;
        self.problems.extend(problems);
        for p in &self.problems {
            warn!("definition problem: {}", clip(p));
        }
        let now = now_ms();
        let mut next: BTreeMap<String, UnitRt> = BTreeMap::new();
        for spec in specs {
            let name = spec.unit.clone();
            let rt = match self.units.remove(&name) {
                // Keep what we know of units that stay: state, caps, history.
                Some(mut old) => {
                    if old.spec.interval_ms != spec.interval_ms {
                        old.next_due = now;
                    }
                    old.spec = spec;
                    old.live.clear();
                    // The definitions were read again: give it another chance.
                    old.quarantined = None;
                    old
                }
                None => UnitRt::new(spec, now),
            };
            next.insert(name, rt);
        }
        self.units = next;
        self.reschedule = true;
        if let Ok(mut w) = self.watched.write() {
            *w = self.units.keys().map(|u| unit_path(u)).collect();
        }
        let names: Vec<String> = self.units.keys().cloned().collect();
        for n in &names {
            self.refresh_info(n);
        }
        info!(
            "loaded definitions (generation {generation}): managing {} units",
            self.units.len()
        );
        self.maybe_ready();
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Status(&self.status_line())]);
    }

    fn on_evaluated(&mut self, e: Evaluation) {
        self.counters.evaluations += 1;
        for (unit, msg) in &e.logs {
            info!(UNIT = %unit, "{unit}: {}", clip(msg));
        }
        let Some(u) = self.units.get_mut(&e.unit) else {
            if let Origin::Request(id) = e.origin {
                self.reply(id, Response::error(format!("{} is not managed", e.unit)));
            }
            return;
        };
        if e.origin == Origin::Schedule {
            u.in_flight = false;
            u.evaluations += 1;
        }
        let mut record = EvalRecord {
            at_ms: wall_ms(),
            took_us: e.took.as_micros() as u64,
            error: None,
            decisions: Vec::new(),
        };
        let desired = match e.result {
            Ok(d) => d,
            Err(err) => {
                self.counters.errors += 1;
                u.errors += 1;
                if e.timed_out {
                    self.counters.slow += 1;
                    u.slow += 1;
                }
                if e.crashed {
                    u.quarantined = Some(err.clone());
                    error!(UNIT = %e.unit, "{}; {} is not evaluated again until its definition is re-read (systemd-sparrow reload)", clip(&err), e.unit);
                } else if u.last_error.as_deref() != Some(err.as_str()) {
                    // Once per distinct error, not at every interval.
                    warn!(UNIT = %e.unit, "evaluation of {} failed: {}", e.unit, clip(&err));
                }
                if e.origin == Origin::Schedule {
                    u.last_error = Some(err.clone());
                }
                record.error = Some(err.clone());
                match e.origin {
                    Origin::Schedule => u.last_eval = Some(record),
                    Origin::Request(id) => {
                        let report = EvalReport {
                            unit: e.unit.clone(),
                            took_us: record.took_us,
                            error: Some(err),
                            decisions: vec![],
                        };
                        self.reply_eval(id, report);
                    }
                }
                return;
            }
        };
        if e.origin == Origin::Schedule && u.last_error.take().is_some() {
            info!(UNIT = %e.unit, "evaluation of {} works again", e.unit);
        }
        let mut targets = Vec::new();
        for (prop, d) in desired {
            match d.resolve(prop, self.machine) {
                Ok(t) => targets.push(t),
                Err(msg) => record.decisions.push(Decision {
                    prop,
                    desired: format!("{d:?}"),
                    live: String::new(),
                    verdict: format!("invalid: {msg}"),
                }),
            }
        }
        let missing: Vec<Prop> = targets
            .iter()
            .map(|t| t.prop)
            .filter(|p| !u.live.contains_key(p))
            .collect();
        let pending = Pending {
            targets,
            origin: e.origin,
            record,
        };
        if missing.is_empty() {
            self.decide(&e.unit, pending);
            return;
        }
        let Some(bus) = self.bus.clone() else {
            if let Origin::Request(id) = pending.origin {
                self.reply(id, Response::error("not connected to systemd"));
            }
            return;
        };
        let unit = e.unit.clone();
        self.send_later(async move {
            let result = bus.live(&unit, missing).await;
            Event::Live {
                unit,
                result,
                then: Some(pending),
            }
        });
    }

    fn decide(&mut self, unit: &str, p: Pending) {
        let now = now_ms();
        let history = self.persisted.units.get(unit).cloned().unwrap_or_default();
        let Some(u) = self.units.get_mut(unit) else {
            return;
        };
        let dry_run = matches!(p.origin, Origin::Request(_)) || u.applying || !u.active();
        let plan = plan(
            &p.targets,
            &u.live,
            &u.spec,
            &history,
            &mut u.cap,
            &mut self.global,
            now,
            dry_run,
        );
        let mut record = p.record;
        record.decisions.extend(plan.decisions);
        match p.origin {
            Origin::Request(id) => {
                let report = EvalReport {
                    unit: unit.to_string(),
                    took_us: record.took_us,
                    error: None,
                    decisions: record.decisions,
                };
                self.reply_eval(id, report);
                return;
            }
            Origin::Schedule => u.last_eval = Some(record),
        }
        if dry_run || plan.apply.is_empty() {
            return;
        }
        let Some(bus) = self.bus.clone() else { return };
        u.applying = true;
        let changes: Vec<Change> = plan
            .apply
            .into_iter()
            .map(|(target, reason)| Change {
                old: u.live.get(&target.prop).cloned().unwrap_or(Live::Num(0)),
                target,
                reason,
            })
            .collect();
        let unit = unit.to_string();
        self.send_later(async move {
            let settings = changes.iter().map(|c| c.target.setting.clone()).collect();
            let props = changes.iter().map(|c| c.target.prop).collect();
            let result = match bus.set(&unit, settings).await {
                Ok(()) => bus.live(&unit, props).await,
                Err(e) => Err(e),
            };
            Event::Applied {
                unit,
                changes,
                result,
            }
        });
    }

    fn on_applied(
        &mut self,
        unit: String,
        changes: Vec<Change>,
        result: Result<BTreeMap<Prop, Live>, String>,
    ) {
        let now = now_ms();
        let Some(u) = self.units.get_mut(&unit) else {
            return;
        };
        u.applying = false;
        match result {
            Ok(readback) => {
                let hist = self.persisted.units.entry(unit.clone()).or_default();
                for c in changes {
                    let prop = c.target.prop;
                    let new = readback
                        .get(&prop)
                        .cloned()
                        .unwrap_or_else(|| c.target.value.clone());
                    hist.insert(
                        prop,
                        PropHistory {
                            last_change: Some(now),
                            last_value: Some(new.clone()),
                            last_target: Some(c.target.value.clone()),
                        },
                    );
                    u.live.insert(prop, new.clone());
                    let (old_s, new_s) = (show(prop, &c.old), show(prop, &new));
                    info!(
                        UNIT = %unit, PROPERTY = %prop.dbus_name(), OLD = %old_s, NEW = %new_s, REASON = %c.reason,
                        "{unit}: {} {old_s} -> {new_s} ({})", prop.dbus_name(), c.reason
                    );
                    u.applied.push_back(Applied {
                        at_ms: wall_ms(),
                        prop,
                        old: old_s,
                        new: new_s,
                        reason: c.reason,
                    });
                    if u.applied.len() > 20 {
                        u.applied.pop_front();
                    }
                    self.counters.applied += 1;
                }
                if let Err(e) = state::save(&self.cfg.state, &self.persisted) {
                    warn!("cannot save {}: {e}", self.cfg.state.display());
                }
            }
            Err(e) => {
                error!(UNIT = %unit, "cannot apply to {unit}: {e}");
                u.errors += 1;
                for c in changes {
                    u.live.remove(&c.target.prop);
                }
            }
        }
    }

    fn reply_eval(&mut self, id: u64, report: EvalReport) {
        self.reply(
            id,
            Response {
                ok: true,
                eval: Some(report),
                ..Response::default()
            },
        );
    }

    fn reply(&mut self, id: u64, resp: Response) {
        if let Some(tx) = self.requests.remove(&id) {
            let _ = tx.send(resp);
        }
    }

    fn on_control(&mut self, req: Request, reply: oneshot::Sender<Response>) {
        match req {
            Request::Status { unit } => {
                if let Some(u) = &unit {
                    if !self.units.contains_key(u) {
                        let _ = reply.send(Response::error(format!("{u} is not managed by systemd-sparrowd (no monitor.resources and no dynamic resource property)")));
                        return;
                    }
                }
                let _ = reply.send(Response {
                    ok: true,
                    status: Some(self.status(unit.as_deref())),
                    ..Response::default()
                });
            }
            Request::Eval { unit } => {
                let Some(u) = self.units.get(&unit) else {
                    let _ = reply.send(Response::error(format!(
                        "{unit} is not managed by systemd-sparrowd"
                    )));
                    return;
                };
                if let Some(why) = &u.quarantined {
                    let _ = reply.send(Response::error(format!(
                        "{unit} is not evaluated: {why}; fix its definition, then systemd-sparrow reload"
                    )));
                    return;
                }
                self.next_request += 1;
                let id = self.next_request;
                match self.pool.submit(&unit, Origin::Request(id)) {
                    Ok(()) => {
                        self.requests.insert(id, reply);
                    }
                    Err(_) => {
                        let _ = reply.send(Response::error("every evaluator is busy; try again"));
                    }
                }
            }
            Request::Reload => {
                self.read_sources();
                let _ = reply.send(Response {
                    ok: true,
                    message: Some("re-reading definitions".into()),
                    ..Response::default()
                });
            }
        }
    }

    fn status(&mut self, only: Option<&str>) -> Status {
        let now = now_ms();
        let units = self
            .units
            .values()
            .filter(|u| only.is_none_or(|o| o == u.spec.unit))
            .map(|u| UnitStatus {
                unit: u.spec.unit.clone(),
                definition: format!("{}:{}", u.spec.source.display(), u.spec.line),
                active_state: u
                    .info
                    .as_ref()
                    .map(|i| i.active_state.clone())
                    .unwrap_or_else(|| "unknown".into()),
                interval_ms: u.spec.interval_ms,
                next_eval_in_ms: u.active().then(|| u.next_due.saturating_sub(now)),
                last_eval: u.last_eval.clone(),
                applied: u.applied.iter().cloned().collect(),
                live: u.live.iter().map(|(p, v)| (*p, show(*p, v))).collect(),
                evaluations: u.evaluations,
                errors: u.errors,
                slow: u.slow,
                quarantined: u.quarantined.clone(),
            })
            .collect();
        Status {
            daemon: DaemonStatus {
                pid: std::process::id(),
                bus: via_name(self.bus.as_ref().map(Bus::via)).into(),
                generation: self.loaded,
                managed: self.units.len(),
                changes_last_minute: self.global.used(now),
                max_changes_per_minute: self.cfg.max_changes_per_minute,
                evaluations: self.counters.evaluations,
                errors: self.counters.errors,
                slow: self.counters.slow,
                postponed: self.counters.postponed,
                problems: self.problems.clone(),
            },
            units,
        }
    }

    /// Runs what is due; returns when to wake up next.
    fn on_timer(&mut self) -> Instant {
        let now = now_ms();
        let mut next = now + 60_000;
        self.reschedule = false;
        if self.snapshot_dirty {
            self.snapshot_dirty = false;
            self.pool.units(Arc::new(self.snapshot.clone()));
        }
        if self.bus.is_some() {
            // Units due within the next batch window go now, together: one
            // wake-up of the loop and of the workers for many evaluations.
            let due: Vec<String> = self
                .units
                .iter()
                .filter(|(_, u)| {
                    u.next_due <= now + BATCH_MS
                        && !u.in_flight
                        && !u.applying
                        && u.quarantined.is_none()
                })
                .map(|(n, _)| n.clone())
                .collect();
            let mut batch = Vec::new();
            for name in due {
                let u = self.units.get_mut(&name).expect("due unit exists");
                u.next_due = now + u.spec.interval_ms;
                if u.active() {
                    u.in_flight = true;
                    batch.push(name);
                }
            }
            if !batch.is_empty() {
                let left = self.pool.submit_many(batch, Origin::Schedule);
                for name in left {
                    // Every worker is busy: try again shortly, never wait here.
                    let u = self.units.get_mut(&name).expect("due unit exists");
                    self.counters.postponed += 1;
                    u.in_flight = false;
                    u.next_due = now + 250;
                }
            }
            for u in self.units.values() {
                if !u.in_flight && u.quarantined.is_none() {
                    next = next.min(u.next_due);
                }
            }
        } else if let Some(at) = self.reconnect_at {
            if Instant::now() >= at {
                self.reconnect_at = None;
                self.connect();
            }
        }
        let mut wake =
            Instant::now() + Duration::from_millis(next.saturating_sub(now_ms()).max(BATCH_MS));
        if let Some(at) = self.reconnect_at {
            wake = wake.min(at);
        }
        if let Some(wd) = self.watchdog {
            // Pinging from the loop itself: a stuck loop gets restarted.
            if self.last_ping.elapsed() >= wd / 3 {
                let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
                self.last_ping = Instant::now();
            }
            wake = wake.min(self.last_ping + wd / 3);
        }
        // STATUS= follows what changes, at most once a second.
        if self.ready && self.last_status.elapsed() >= Duration::from_secs(1) {
            let line = self.status_line();
            if line != self.last_status_text {
                let _ = sd_notify::notify(&[sd_notify::NotifyState::Status(&line)]);
                self.last_status_text = line;
            }
            self.last_status = Instant::now();
        }
        if self.ready {
            wake = wake.min(self.last_status + Duration::from_secs(1));
        }
        wake
    }
}

fn via_name(via: Option<Via>) -> &'static str {
    match via {
        Some(Via::SystemBus) => "system bus",
        Some(Via::Private) => "private socket",
        None => "disconnected",
    }
}

/// Forwards systemd's signals until the connection ends; returns why.
async fn watch_bus(
    bus: &Bus,
    tx: &mpsc::Sender<Event>,
    watched: &Arc<RwLock<HashSet<String>>>,
) -> String {
    use futures_lite::StreamExt;
    let conn = bus.connection();
    // No sender in the rules: a direct connection to systemd has no bus names.
    let props = "type='signal',interface='org.freedesktop.DBus.Properties',member='PropertiesChanged',path_namespace='/org/freedesktop/systemd1/unit'";
    let reloading = "type='signal',interface='org.freedesktop.systemd1.Manager',member='Reloading'";
    let (mut props, mut reloading) = match (
        zbus::MessageStream::for_match_rule(props, conn, None).await,
        zbus::MessageStream::for_match_rule(reloading, conn, None).await,
    ) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return format!("cannot watch systemd's signals: {e}"),
    };
    loop {
        tokio::select! {
            m = props.next() => {
                let Some(Ok(msg)) = m else { return "the connection closed".into() };
                let header = msg.header();
                let Some(path) = header.path().map(|p| p.to_string()) else { continue };
                if !watched.read().is_ok_and(|w| w.contains(&path)) {
                    continue;
                }
                let Ok((iface, changed, _)) = msg.body().deserialize::<(String, HashMap<String, zbus::OwnedVariant>, Vec<String>)>() else { continue };
                if iface != "org.freedesktop.systemd1.Unit" {
                    continue;
                }
                if let (Some(unit), Some(state)) = (unit_of_path(&path), changed.get("ActiveState").and_then(|v| String::try_from(v.try_clone().ok()?).ok())) {
                    let _ = tx.send(Event::UnitChanged { unit, active_state: state }).await;
                }
            }
            m = reloading.next() => {
                let Some(Ok(msg)) = m else { return "the connection closed".into() };
                if let Ok(active) = msg.body().deserialize::<bool>() {
                    let _ = tx.send(Event::Reloading(active)).await;
                }
            }
        }
    }
}

/// The longest request line the control socket reads.
pub const MAX_REQUEST: usize = 64 * 1024;

/// Accepts control connections: root only (SO_PEERCRED, checked before a
/// byte is read), one request line of at most [`MAX_REQUEST`] each.
async fn serve_control(path: PathBuf, tx: mpsc::Sender<Event>) -> Result<(), String> {
    use tokio::io::AsyncWriteExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let _ = std::fs::remove_file(&path);
    let listener =
        tokio::net::UnixListener::bind(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
    let mut backoff = Duration::from_millis(10);
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => {
                backoff = Duration::from_millis(10);
                s
            }
            Err(e) => {
                // Out of descriptors (EMFILE/ENFILE) or memory: the pending
                // connection stays queued and accept would fail again at
                // once; wait instead of spinning.
                warn!("control socket: accept failed: {e}; pausing {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let tx = tx.clone();
        tokio::spawn(async move {
            let uid = stream.peer_cred().map(|c| c.uid()).unwrap_or(u32::MAX);
            let (read, mut write) = stream.into_split();
            let resp = if uid != 0 {
                Response::error(format!(
                    "permission denied: the control socket is for root (you are uid {uid})"
                ))
            } else {
                match tokio::time::timeout(Duration::from_secs(5), read_request(read)).await {
                    Ok(Ok(line)) => match serde_json::from_slice::<Request>(&line) {
                        Err(e) => Response::error(format!("bad request: {e}")),
                        Ok(req) => {
                            let (rtx, rrx) = oneshot::channel();
                            if tx.send(Event::Control(req, rtx)).await.is_err() {
                                return;
                            }
                            match tokio::time::timeout(Duration::from_secs(15), rrx).await {
                                Ok(Ok(r)) => r,
                                _ => Response::error("systemd-sparrowd did not answer in time"),
                            }
                        }
                    },
                    Ok(Err(e)) => Response::error(e),
                    Err(_) => Response::error("no request within 5 s"),
                }
            };
            let mut text = serde_json::to_string(&resp).unwrap_or_else(|_| "{\"ok\":false}".into());
            text.push('\n');
            let _ = write.write_all(text.as_bytes()).await;
        });
    }
}

/// Reads one request line, refusing more than [`MAX_REQUEST`] bytes.
async fn read_request(read: tokio::net::unix::OwnedReadHalf) -> Result<Vec<u8>, String> {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
    let mut line = Vec::new();
    let mut limited = BufReader::new(read).take(MAX_REQUEST as u64 + 1);
    limited
        .read_until(b'\n', &mut line)
        .await
        .map_err(|e| format!("cannot read the request: {e}"))?;
    if line.len() > MAX_REQUEST {
        return Err(format!("request longer than {MAX_REQUEST} bytes"));
    }
    if line.is_empty() {
        return Err("empty request".into());
    }
    Ok(line)
}

/// Runs the daemon until SIGTERM.
pub async fn run(cfg: Config) -> Result<(), String> {
    let (tx, mut rx) = mpsc::channel::<Event>(4096);
    let (host, facts_err) = RealHost::from_env();
    if let Some(e) = facts_err {
        warn!("facts override: {e}");
    }
    let machine = machine(&host);
    let report_tx = tx.clone();
    let pool = Pool::start(
        PoolConfig {
            workers: cfg.workers,
            per_worker: 64,
            limit: cfg.call_limit,
            facts: host.facts().clone(),
            owners: Owners::for_generator(),
            exe: PathBuf::from("/proc/self/exe"),
        },
        Arc::new(move |ev| {
            let _ = report_tx.blocking_send(Event::Pool(ev));
        }),
    );
    let (persisted, warning) = state::load(&cfg.state);
    if let Some(w) = warning {
        warn!("{w}");
    }
    {
        let (tx, path) = (tx.clone(), cfg.control.clone());
        tokio::spawn(async move {
            if let Err(e) = serve_control(path, tx).await {
                error!("control socket: {e}");
            }
        });
    }
    {
        let tx = tx.clone();
        tokio::spawn(async move {
            use tokio::signal::unix::{signal, SignalKind};
            let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
                signal(SignalKind::hangup()),
            ) else {
                return;
            };
            loop {
                let ev = tokio::select! {
                    _ = term.recv() => Event::Terminate,
                    _ = int.recv() => Event::Terminate,
                    _ = hup.recv() => Event::Reload,
                };
                let _ = tx.send(ev).await;
            }
        });
    }
    let mut core = Core {
        global: RateLimit::per_minute(cfg.max_changes_per_minute),
        cfg,
        tx,
        pool,
        bus: None,
        connecting: false,
        reconnect_at: None,
        backoff: Duration::from_millis(100),
        units: BTreeMap::new(),
        watched: Arc::default(),
        generation: 0,
        loaded: 0,
        problems: Vec::new(),
        persisted,
        snapshot: HashMap::new(),
        snapshot_dirty: false,
        machine,
        counters: Counters {
            evaluations: 0,
            errors: 0,
            slow: 0,
            postponed: 0,
            applied: 0,
        },
        requests: HashMap::new(),
        next_request: 0,
        ready: false,
        watchdog: sd_notify::watchdog_enabled(),
        last_ping: Instant::now(),
        last_status: Instant::now(),
        last_status_text: String::new(),
        reschedule: true,
    };
    core.connect();
    core.read_sources();
    let mut wake = Instant::now();
    loop {
        tokio::select! {
            ev = rx.recv() => {
                let Some(ev) = ev else { break };
                if !core.handle(ev) {
                    break;
                }
                if core.reschedule {
                    wake = Instant::now();
                }
            }
            _ = tokio::time::sleep_until(wake.into()) => {
                wake = core.on_timer();
            }
        }
    }
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    if let Err(e) = state::save(&core.cfg.state, &core.persisted) {
        warn!("cannot save {}: {e}", core.cfg.state.display());
    }
    let _ = std::fs::remove_file(&core.cfg.control);
    info!("stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sparrow_policy::{Setting, SettingValue, Threshold};

    const MIB: u64 = 1 << 20;

    fn spec() -> Spec {
        Spec {
            unit: "web.service".into(),
            source: "/etc/systemd/sparrow/web.sparrow".into(),
            line: 1,
            interval_ms: 10_000,
            min_dwell_ms: 60_000,
            max_changes_per_minute: 2,
            thresholds: [(Prop::MemoryMax, Threshold::Abs(100 * MIB))].into(),
            resources: true,
            dynamic: vec![],
        }
    }

    fn mem(n: u64) -> Target {
        Target {
            prop: Prop::MemoryMax,
            value: Live::Num(n),
            setting: Setting {
                name: "MemoryMax",
                value: SettingValue::U64(n),
            },
        }
    }

    fn cpu(us: u64) -> Target {
        Target {
            prop: Prop::CpuQuota,
            value: Live::Num(us),
            setting: Setting {
                name: "CPUQuotaPerSecUSec",
                value: SettingValue::U64(us),
            },
        }
    }

    #[test]
    fn plan_applies_only_what_passes_threshold_dwell_and_caps() {
        let s = spec();
        let live: BTreeMap<Prop, Live> = [
            (Prop::MemoryMax, Live::Num(512 * MIB)),
            (Prop::CpuQuota, Live::Num(1_000_000)),
        ]
        .into();
        let mut unit = RateLimit::per_minute(2);
        let mut global = RateLimit::per_minute(60);
        let hist = BTreeMap::new();

        // Under the threshold: recorded, not applied.
        let p = plan(
            &[mem(560 * MIB)],
            &live,
            &s,
            &hist,
            &mut unit,
            &mut global,
            0,
            false,
        );
        assert!(p.apply.is_empty());
        assert_eq!(p.decisions[0].verdict, "below threshold (changes by 48M)");

        // Over it, and a CPU change: both applied, both counted.
        let p = plan(
            &[mem(1024 * MIB), cpu(500_000)],
            &live,
            &s,
            &hist,
            &mut unit,
            &mut global,
            1_000,
            false,
        );
        assert_eq!(p.apply.len(), 2);
        assert_eq!(p.decisions[0].desired, "1G");
        assert_eq!(p.decisions[1].desired, "50%");
        assert!(p.apply[1].1.starts_with("shrink"));
        assert_eq!(global.used(1_000), 2);

        // The unit's cap (2 per minute) is spent.
        let p = plan(
            &[cpu(2_000_000)],
            &live,
            &s,
            &hist,
            &mut unit,
            &mut global,
            2_000,
            false,
        );
        assert!(p.apply.is_empty());
        assert_eq!(p.decisions[0].verdict, "unit cap (2 changes per minute)");

        // A dry run (systemd-sparrow eval) decides but does not count.
        let mut fresh = RateLimit::per_minute(2);
        let p = plan(
            &[cpu(2_000_000)],
            &live,
            &s,
            &hist,
            &mut fresh,
            &mut global,
            2_000,
            true,
        );
        assert_eq!(p.decisions[0].verdict, "apply");
        assert_eq!(fresh.used(2_000), 0);

        // The daemon-wide cap.
        let mut tight = RateLimit::per_minute(0);
        let p = plan(
            &[cpu(2_000_000)],
            &live,
            &s,
            &hist,
            &mut RateLimit::per_minute(5),
            &mut tight,
            3_000,
            false,
        );
        assert_eq!(
            p.decisions[0].verdict,
            "daemon cap (changes per minute across units)"
        );

        // A shrink soon after a change waits for min_dwell.
        let hist: BTreeMap<Prop, PropHistory> = [(
            Prop::MemoryMax,
            PropHistory {
                last_change: Some(10_000),
                ..PropHistory::default()
            },
        )]
        .into();
        let p = plan(
            &[mem(256 * MIB)],
            &live,
            &s,
            &hist,
            &mut RateLimit::per_minute(5),
            &mut global,
            40_000,
            false,
        );
        assert_eq!(p.decisions[0].verdict, "dwell (30 s left)");
        // Without a live value there is nothing to compare yet.
        let p = plan(
            &[mem(256 * MIB)],
            &BTreeMap::new(),
            &s,
            &hist,
            &mut RateLimit::per_minute(5),
            &mut global,
            40_000,
            false,
        );
        assert!(p.decisions.is_empty());
    }
}
