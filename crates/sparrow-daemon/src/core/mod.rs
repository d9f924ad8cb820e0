//! The core: a pure state machine. [`Core::handle`] takes an [`Event`] and
//! the time, updates the state, and returns [`Action`]s; [`Core::next_wake`]
//! says when it wants a [`Event::Tick`]. No I/O, no clock reads, no D-Bus
//! types, no threads: everything it knows came in as an event, everything
//! it wants done goes out as an action (see `actuator`).
//!
//! The core keeps what every feature shares (the units, their state in
//! systemd, the connection, definitions, control requests, readiness and
//! the watchdog); each runtime feature is a [`Feature`] in its own module.
//! Adding a feature is one module and one line in [`Core::new`].

mod alerts;
mod event;
mod health;
pub mod kernel;
pub mod pattern;
mod requests;
mod resources;
#[cfg(test)]
mod tests;
mod units;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use sparrow_host::runtime::UnitSnapshot;
use sparrow_policy::{Machine, RateLimit};

pub use event::{Action, Change, Event, Level, LogRecord, Millis, Notice, Now, Origin};
pub use health::outcome;

use crate::control::{Request, Response, UnitStatus};
use crate::spec::Spec;
use crate::state::Persisted;
use crate::systemd::Via;
use requests::via_name;

/// Reconnection backoff: from 100 ms, doubling, at most 5 s.
const BACKOFF_MIN: Millis = 100;
const BACKOFF_MAX: Millis = 5_000;
/// `STATUS=` at most once a second.
const STATUS_EVERY: Millis = 1_000;
/// Log lines are cut to this many characters.
const LOG_MAX: usize = 500;

/// How the daemon is configured (read once at start).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Live changes per minute across all units.
    pub max_changes_per_minute: usize,
    /// `WatchdogSec=`, if systemd asked for pings.
    pub watchdog: Option<Millis>,
    /// The machine, for resolving percentages.
    pub machine: Machine,
}

/// What every feature shares about one managed unit.
#[derive(Debug, Clone)]
pub struct Unit {
    /// What its definition asks for.
    pub spec: Spec,
    /// `ActiveState` as last seen, if known.
    pub active_state: Option<String>,
    /// Its cgroup, if known.
    pub control_group: String,
    /// Why it is no longer evaluated: its evaluation took an evaluator
    /// process down. Cleared when the definitions are read again.
    pub quarantined: Option<String>,
}

impl Unit {
    fn new(spec: Spec) -> Unit {
        Unit {
            spec,
            active_state: None,
            control_group: String::new(),
            quarantined: None,
        }
    }

    /// Whether the unit runs (`active` or `reloading`).
    pub fn active(&self) -> bool {
        matches!(self.active_state.as_deref(), Some("active" | "reloading"))
    }
}

/// Daemon-wide counters, for `status`.
#[derive(Debug, Clone, Default)]
pub struct Counters {
    /// Evaluations finished.
    pub evaluations: u64,
    /// Failed evaluations.
    pub errors: u64,
    /// Evaluations stopped by a limit.
    pub slow: u64,
    /// Evaluations postponed because every evaluator was busy.
    pub postponed: u64,
    /// Live changes made.
    pub applied: u64,
}

/// What a feature may touch while it handles something.
pub struct Cx<'a> {
    /// The time.
    pub now: Now,
    /// Connected to systemd.
    pub connected: bool,
    /// The machine, for percentages.
    pub machine: Machine,
    /// The daemon-wide cap on live changes.
    pub global: &'a mut RateLimit,
    /// What survives a restart.
    pub persisted: &'a mut Persisted,
    /// Daemon-wide counters.
    pub counters: &'a mut Counters,
    /// Where actions go.
    pub out: &'a mut Vec<Action>,
}

impl Cx<'_> {
    /// Logs `message` (cut to a readable length).
    pub fn log(&mut self, level: Level, unit: Option<&str>, message: &str) {
        self.out.push(Action::log(level, unit, clip(message)));
    }
}

/// A runtime feature: one kind of work the daemon does for units.
pub trait Feature: Send {
    /// The definitions were (re)loaded: these are the units now.
    fn load(&mut self, units: &BTreeMap<String, Unit>, cx: &mut Cx);
    /// A unit became active (started, restarted, or first seen active).
    fn started(&mut self, unit: &str, cx: &mut Cx);
    /// A unit is no longer active (stopping, stopped, failed).
    fn stopped(&mut self, unit: &str, cx: &mut Cx) {
        let _ = (unit, cx);
    }
    /// (Re)connected to systemd: what was read from it may be stale.
    fn connected(&mut self, cx: &mut Cx) {
        let _ = cx;
    }
    /// Time passed: start what is due.
    fn tick(&mut self, units: &mut BTreeMap<String, Unit>, cx: &mut Cx);
    /// When it next wants a tick (monotonic ms).
    fn next_wake(&self, units: &BTreeMap<String, Unit>, connected: bool) -> Option<Millis>;
    /// An event meant for a feature; returned when it is not this one's.
    fn result(
        &mut self,
        ev: Event,
        units: &mut BTreeMap<String, Unit>,
        cx: &mut Cx,
    ) -> Option<Event>;
    /// A control request for this feature, answered now or later (`None`:
    /// not this feature's).
    fn request(
        &mut self,
        id: u64,
        req: &Request,
        units: &BTreeMap<String, Unit>,
        cx: &mut Cx,
    ) -> Option<Response> {
        let _ = (id, req, units, cx);
        None
    }
    /// Adds what it knows of `unit` to a status entry.
    fn status(&self, unit: &str, now: Now, entry: &mut UnitStatus);
}

/// Something done with each feature in turn.
type FeatureFn<'f> = dyn FnMut(&mut dyn Feature, &mut BTreeMap<String, Unit>, &mut Cx) + 'f;

/// The connection to systemd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    Down { retry_at: Option<Millis> },
    Connecting,
    Up(Via),
}

/// The state machine.
pub struct Core {
    settings: Settings,
    units: BTreeMap<String, Unit>,
    features: Vec<Box<dyn Feature>>,
    link: Link,
    backoff: Millis,
    generation: u64,
    loaded: u64,
    problems: Vec<String>,
    /// The evaluators' Raku workers, as last reported.
    raku: BTreeMap<usize, crate::control::RakuWorker>,
    global: RateLimit,
    persisted: Persisted,
    counters: Counters,
    snapshot: HashMap<String, UnitSnapshot>,
    snapshot_dirty: bool,
    ready: bool,
    last_ping: Millis,
    last_status_at: Option<Millis>,
    last_status: String,
    status_due: bool,
    /// Reloads asked for while one is being read.
    reload_queued: bool,
    reading: bool,
    pid: u32,
    /// Units active now.
    active: usize,
    /// When each (unit, message) of `alert()` was last raised.
    alerted: HashMap<(String, String), Millis>,
    /// Units whose state could not be read: when to read it again, and the
    /// wait after that (doubling to a minute).
    reread: BTreeMap<String, (Millis, Millis)>,
}

/// `msg`, cut to a readable length.
pub fn clip(msg: &str) -> String {
    match msg.char_indices().nth(LOG_MAX) {
        Some((i, _)) => format!("{}… ({} bytes in all)", &msg[..i], msg.len()),
        None => msg.to_string(),
    }
}

impl Core {
    /// A core with the state a previous run left (`persisted`) and these
    /// settings. `pid` is only shown in `status`.
    pub fn new(settings: Settings, persisted: Persisted, pid: u32) -> Core {
        Core {
            global: RateLimit::per_minute(settings.max_changes_per_minute),
            settings,
            units: BTreeMap::new(),
            features: vec![
                Box::new(resources::Resources::default()),
                Box::new(health::Health::default()),
                Box::new(kernel::Kernel::default()),
                Box::new(pattern::Pattern::default()),
            ],
            link: Link::Down { retry_at: None },
            backoff: BACKOFF_MIN,
            generation: 0,
            loaded: 0,
            problems: Vec::new(),
            raku: BTreeMap::new(),
            persisted,
            counters: Counters::default(),
            snapshot: HashMap::new(),
            snapshot_dirty: false,
            ready: false,
            last_ping: 0,
            last_status_at: None,
            last_status: String::new(),
            status_due: false,
            reload_queued: false,
            reading: false,
            pid,
            alerted: HashMap::new(),
            reread: BTreeMap::new(),
            active: 0,
        }
    }

    /// What to do first: connect and read the definitions.
    pub fn start(&mut self, now: Now) -> Vec<Action> {
        self.link = Link::Connecting;
        self.last_ping = now.mono;
        self.reading = true;
        vec![Action::Connect, Action::ReadSources]
    }

    fn connected(&self) -> bool {
        matches!(self.link, Link::Up(_))
    }

    /// The units managed now.
    pub fn units(&self) -> &BTreeMap<String, Unit> {
        &self.units
    }

    fn with_features(&mut self, now: Now, out: &mut Vec<Action>, f: &mut FeatureFn) {
        let mut cx = Cx {
            now,
            connected: self.connected(),
            machine: self.settings.machine,
            global: &mut self.global,
            persisted: &mut self.persisted,
            counters: &mut self.counters,
            out,
        };
        for feat in &mut self.features {
            f(feat.as_mut(), &mut self.units, &mut cx);
        }
    }

    /// Handles one event at `now`; returns what to do.
    pub fn handle(&mut self, ev: Event, now: Now) -> Vec<Action> {
        let mut out = Vec::new();
        match ev {
            Event::Tick => {}
            Event::Terminate => {
                out.push(Action::Notify(Notice::Stopping));
                out.push(Action::Save(Box::new(self.persisted.clone())));
                out.push(Action::log(Level::Info, None, "stopped"));
                out.push(Action::Exit);
                return out;
            }
            Event::Reload | Event::Reloading(false) => {
                if matches!(ev, Event::Reloading(false)) {
                    out.push(Action::log(
                        Level::Info,
                        None,
                        "systemd reloaded; re-reading definitions",
                    ));
                }
                self.read_sources(&mut out);
            }
            Event::Reloading(true) => {
                out.push(Action::log(Level::Info, None, "systemd is reloading"))
            }
            Event::Sources(texts, problems) => {
                self.reading = false;
                self.generation += 1;
                self.problems = problems;
                out.push(Action::Load(Arc::new(texts), self.generation));
                if std::mem::take(&mut self.reload_queued) {
                    self.read_sources(&mut out);
                }
            }
            Event::Loaded {
                generation,
                specs,
                problems,
            } => self.on_loaded(generation, specs, problems, now, &mut out),
            Event::Connected(Ok(via)) => {
                self.link = Link::Up(via);
                self.backoff = BACKOFF_MIN;
                out.push(Action::log(
                    Level::Info,
                    None,
                    format!("connected to systemd ({})", via_name(Some(via))),
                ));
                out.push(Action::Watch(self.units.keys().cloned().collect()));
                for u in self.units.keys() {
                    out.push(Action::ReadInfo(u.clone()));
                }
                self.with_features(now, &mut out, &mut |f, _, cx| f.connected(cx));
                self.maybe_ready(&mut out);
            }
            Event::Connected(Err(e)) => {
                out.push(Action::log(
                    Level::Warn,
                    None,
                    format!(
                        "cannot connect to systemd: {e}; retrying in {} ms",
                        self.backoff
                    ),
                ));
                self.link_down(now);
            }
            Event::BusLost(why) => {
                if self.connected() {
                    out.push(Action::log(
                        Level::Warn,
                        None,
                        format!("lost the connection to systemd: {why}; reconnecting"),
                    ));
                }
                self.link_down(now);
            }
            Event::UnitChanged { unit, active_state } => {
                self.unit_state(&unit, Some(active_state), None, now, &mut out);
            }
            Event::Info { unit, result } => match result {
                Ok(info) => {
                    self.reread.remove(&unit);
                    self.unit_state(
                        &unit,
                        Some(info.active_state),
                        Some(info.control_group),
                        now,
                        &mut out,
                    )
                }
                Err(e) => self.unread(unit, &e, now, &mut out),
            },
            Event::Control(id, req) => self.on_control(id, req, now, &mut out),
            Event::Alerts(alerts) => self.on_alerts(alerts, now, &mut out),
            Event::Raku(w) => {
                self.raku.insert(w.evaluator, w);
            }
            other => {
                let mut ev = Some(other);
                self.with_features(now, &mut out, &mut |f, units, cx| {
                    if let Some(e) = ev.take() {
                        ev = f.result(e, units, cx);
                    }
                });
            }
        }
        self.after(now, &mut out);
        out
    }

    fn read_sources(&mut self, out: &mut Vec<Action>) {
        if self.reading {
            // Read again once this read is in: it may predate the change.
            self.reload_queued = true;
        } else {
            self.reading = true;
            out.push(Action::ReadSources);
        }
    }

    fn link_down(&mut self, now: Now) {
        self.link = Link::Down {
            retry_at: Some(now.mono + self.backoff),
        };
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
    }

    fn on_loaded(
        &mut self,
        generation: u64,
        specs: Vec<Spec>,
        problems: Vec<String>,
        now: Now,
        out: &mut Vec<Action>,
    ) {
        if generation != self.generation {
            return; // a newer load is on its way
        }
        self.loaded = generation;
        self.problems.extend(problems);
        for p in &self.problems {
            out.push(Action::log(
                Level::Warn,
                None,
                format!("definition problem: {}", clip(p)),
            ));
        }
        let mut next = BTreeMap::new();
        for spec in specs {
            let name = spec.unit.clone();
            let unit = match self.units.remove(&name) {
                // Keep what is known of units that stay; a new reading of
                // the definitions gives a quarantined unit another chance.
                Some(mut old) => {
                    old.spec = spec;
                    old.quarantined = None;
                    old
                }
                None => Unit::new(spec),
            };
            next.insert(name, unit);
        }
        self.snapshot.retain(|u, _| next.contains_key(u));
        self.units = next;
        self.active = self.units.values().filter(|u| u.active()).count();
        out.push(Action::Watch(self.units.keys().cloned().collect()));
        if self.connected() {
            for u in self.units.keys() {
                out.push(Action::ReadInfo(u.clone()));
            }
        }
        self.with_features(now, out, &mut |f, units, cx| f.load(units, cx));
        out.push(Action::log(
            Level::Info,
            None,
            format!(
                "loaded definitions (generation {generation}): managing {} units",
                self.units.len()
            ),
        ));
        self.maybe_ready(out);
    }

    fn maybe_ready(&mut self, out: &mut Vec<Action>) {
        if !self.ready && self.connected() && self.loaded > 0 {
            self.ready = true;
            let line = self.status_line();
            out.push(Action::log(Level::Info, None, format!("ready: {line}")));
            out.push(Action::Notify(Notice::Ready(line.clone())));
            self.last_status = line;
        }
    }

    /// What every event ends with: timers that are due, the snapshot for
    /// the evaluators, `STATUS=`, the watchdog.
    fn after(&mut self, now: Now, out: &mut Vec<Action>) {
        if let Link::Down { retry_at: Some(at) } = self.link {
            if now.mono >= at {
                self.link = Link::Connecting;
                out.push(Action::Connect);
            }
        }
        self.with_features(now, out, &mut |f, units, cx| f.tick(units, cx));
        if self.snapshot_dirty {
            self.snapshot_dirty = false;
            out.push(Action::ShareUnits(Arc::new(self.snapshot.clone())));
        }
        self.reread_due(now, out);
        if let Some(wd) = self.settings.watchdog {
            // Pinged from the loop itself: a stuck loop gets restarted.
            if now.mono >= self.last_ping + wd / 3 {
                out.push(Action::Notify(Notice::Watchdog));
                self.last_ping = now.mono;
            }
        }
        if self.ready {
            let line = self.status_line();
            if line != self.last_status {
                let recent = self
                    .last_status_at
                    .is_some_and(|at| now.mono < at + STATUS_EVERY);
                if recent {
                    self.status_due = true;
                } else {
                    out.push(Action::Notify(Notice::Status(line.clone())));
                    self.last_status = line;
                    self.last_status_at = Some(now.mono);
                    self.status_due = false;
                }
            } else {
                self.status_due = false;
            }
        }
    }

    /// When the core next wants an [`Event::Tick`], or `None`: nothing is
    /// scheduled, wait for an event.
    pub fn next_wake(&self) -> Option<Millis> {
        let mut wake: Option<Millis> = None;
        let mut at = |t: Millis| wake = Some(wake.map_or(t, |w| w.min(t)));
        if let Link::Down { retry_at: Some(t) } = self.link {
            at(t);
        }
        for f in &self.features {
            if let Some(t) = f.next_wake(&self.units, self.connected()) {
                at(t);
            }
        }
        if let Some(wd) = self.settings.watchdog {
            at(self.last_ping + wd / 3);
        }
        if let Some(t) = self.reread_at() {
            at(t);
        }
        if self.status_due {
            if let Some(t) = self.last_status_at {
                at(t + STATUS_EVERY);
            }
        }
        wake
    }
}
