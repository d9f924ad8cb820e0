//! The kernel feature: PSI triggers and `memory.events` watches, armed
//! exactly while a unit is active (its cgroup's files, or
//! `/proc/pressure/*` for `scope: "system"`), and the responses they call.
//!
//! The watches themselves are the actuator's (`watch.rs`: one descriptor per
//! trigger on the runtime's epoll, inotify for `memory.events`); this
//! module decides when they live and what a signal means. Every arming has
//! a sequence number, so a signal of a previous cgroup is ignored. A
//! signal calls `pressure_response(event)` and/or the adaptive strategy
//! (one request to an evaluator); what they return goes through the
//! resources feature's hysteresis and apply path. At most one response per
//! unit runs at a time, at most one starts per [`MIN_GAP_MS`]; signals in
//! between are folded into the next call (the latest readings win).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};
use sparrow_policy::kernel::{memory_deltas, show_us, Pressure, Resource, TriggerSpec};

use super::{Action, Cx, Event, Feature, Level, Millis, Now, Unit};
use crate::control::{KernelStatus, ResponseRecord, UnitStatus, WatchStatus};
use crate::spec::KernelSpec;

/// Least time between the starts of two responses of one unit.
pub const MIN_GAP_MS: Millis = 1_000;
/// A watch that ended while its unit is active is armed again this much later.
const REARM_MS: Millis = 1_000;

/// What the actuator is asked to watch for a unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arm {
    /// The unit.
    pub unit: String,
    /// This arming's number; its signals carry it.
    pub seq: u64,
    /// The unit's cgroup (`/system.slice/x.service`); `None` for the
    /// system's pressure files.
    pub cgroup: Option<String>,
    /// PSI triggers.
    pub triggers: Vec<TriggerSpec>,
    /// Also `memory.events` of the cgroup.
    pub memory_events: bool,
}

/// How arming one watch went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Armed {
    /// The file watched (or that could not be).
    pub file: String,
    /// Armed, with what was changed to make the kernel accept it; or why not.
    pub result: Result<Option<String>, String>,
}

/// What a watch saw.
#[derive(Debug, Clone, PartialEq)]
pub enum Signal {
    /// A PSI trigger fired.
    Pressure(Resource),
    /// `memory.events` changed; its counters now.
    Memory(BTreeMap<String, u64>),
    /// The watch ended (its cgroup went away, or reading failed).
    Lost(String),
}

/// What was read when a signal came: the pressure of each resource (the
/// cgroup's, or the system's), and the cgroup's memory figures.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Readings {
    /// By resource, those that could be read.
    pub psi: BTreeMap<Resource, Pressure>,
    /// `memory.current`, bytes.
    pub memory_current: Option<u64>,
    /// `memory.max`, bytes (`None`: no limit, or not readable).
    pub memory_max: Option<u64>,
    /// When the kernel woke the daemon for it (monotonic µs; 0: not a wake-up).
    pub woke_us: u64,
}

/// One unit's watches.
#[derive(Debug)]
struct Watching {
    spec: KernelSpec,
    seq: u64,
    /// Armed (results of arming may still be on their way).
    armed: bool,
    /// Per watch (triggers in order, then `memory.events`): its status.
    watches: Vec<WatchStatus>,
    /// Notes (rounding) and reasons already logged.
    told: BTreeSet<String>,
    baseline: Option<BTreeMap<String, u64>>,
    running: bool,
    last_start: Option<Millis>,
    /// An event waiting for the running response or the gap, and its wake-up.
    pending: Option<(Value, u64)>,
    not_before: Millis,
    responses: u64,
    errors: u64,
    coalesced: u64,
    last_error: Option<String>,
    last_response: Option<ResponseRecord>,
}

impl Watching {
    fn new(spec: KernelSpec) -> Watching {
        let mut watches: Vec<WatchStatus> = spec
            .triggers
            .iter()
            .map(|t| WatchStatus {
                what: format!(
                    "{} {} {} / {}",
                    t.resource.name(),
                    if t.full { "full" } else { "some" },
                    show_us(t.threshold_us),
                    show_us(t.window_us)
                ),
                ..WatchStatus::default()
            })
            .collect();
        if spec.memory_events {
            watches.push(WatchStatus {
                what: "memory.events".into(),
                ..WatchStatus::default()
            });
        }
        let mut w = Watching {
            spec,
            seq: 0,
            armed: false,
            watches,
            told: BTreeSet::new(),
            baseline: None,
            running: false,
            last_start: None,
            pending: None,
            not_before: 0,
            responses: 0,
            errors: 0,
            coalesced: 0,
            last_error: None,
            last_response: None,
        };
        w.set_state("not armed (the unit is not active)");
        w
    }

    fn set_state(&mut self, state: &str) {
        // A unit waiting for its cgroup is looked at after every event: no
        // new strings when nothing changed.
        for w in self.watches.iter_mut().filter(|w| w.state != state) {
            w.state = state.to_string();
        }
    }

    fn responds(&self) -> bool {
        self.spec.response || self.spec.strategy
    }
}

/// The feature.
#[derive(Debug, Default)]
pub struct Kernel {
    units: BTreeMap<String, Watching>,
    /// Units to arm when they can be (active, cgroup known, not too soon).
    want: BTreeSet<String>,
    /// Units with an event waiting for the gap after their last response.
    waiting: BTreeSet<String>,
}

/// The event a response receives (and the strategy's `signals`: the same map).
pub fn event_json(unit: &str, kind: &str, count: u64, system: bool, r: &Readings) -> Value {
    let line = |l: &sparrow_policy::kernel::PressureLine| json!({ "avg10": l.avg10, "avg60": l.avg60, "avg300": l.avg300, "total": l.total });
    let psi: serde_json::Map<String, Value> = r
        .psi
        .iter()
        .map(|(res, p)| {
            let mut v = line(&p.some);
            v["full"] = p.full.as_ref().map_or(Value::Null, line);
            (res.name().to_string(), v)
        })
        .collect();
    json!({
        "type": kind,
        "unit": unit,
        "scope": if system { "system" } else { "service" },
        "count": count,
        "psi": psi,
        "memory": { "current": r.memory_current, "limit": r.memory_max },
    })
}

impl Kernel {
    fn arm(&mut self, unit: &str, units: &BTreeMap<String, Unit>, cx: &mut Cx) -> bool {
        let (Some(w), Some(u)) = (self.units.get_mut(unit), units.get(unit)) else {
            return true; // gone: nothing to wait for
        };
        if !u.active() {
            return true;
        }
        if cx.now.mono < w.not_before {
            return false;
        }
        let cgroup = if w.spec.system {
            None
        } else if u.control_group.is_empty() {
            w.set_state("waiting for the unit's cgroup");
            return false;
        } else {
            Some(u.control_group.clone())
        };
        w.seq += 1;
        w.armed = true;
        w.baseline = None;
        cx.out.push(Action::Arm(Box::new(Arm {
            unit: unit.to_string(),
            seq: w.seq,
            cgroup,
            triggers: w.spec.triggers.clone(),
            memory_events: w.spec.memory_events && !w.spec.system,
        })));
        true
    }

    fn disarm(w: &mut Watching, unit: &str, cx: &mut Cx) {
        if w.armed {
            cx.out.push(Action::Disarm(unit.to_string()));
        }
        w.armed = false;
        w.seq += 1;
        w.set_state("not armed (the unit is not active)");
    }

    fn respond(&mut self, unit: &str, event: Value, woke_us: u64, cx: &mut Cx) {
        let Some(w) = self.units.get_mut(unit) else {
            return;
        };
        let now = cx.now.mono;
        let soon = w.last_start.is_some_and(|t| now < t + MIN_GAP_MS);
        if w.running || soon {
            if w.pending.replace((event, woke_us)).is_some() {
                w.coalesced += 1;
            }
            if !w.running {
                self.waiting.insert(unit.to_string());
            }
            return;
        }
        w.running = true;
        w.last_start = Some(now);
        w.responses += 1;
        w.last_response = Some(ResponseRecord {
            at_ms: cx.now.wall,
            event: event["type"].as_str().unwrap_or_default().to_string(),
            outcome: "running".into(),
        });
        cx.out.push(Action::Respond {
            unit: unit.to_string(),
            event,
            woke_us: (woke_us > 0).then_some(woke_us),
        });
    }

    fn signal(&mut self, unit: &str, seq: u64, signal: Signal, readings: Readings, cx: &mut Cx) {
        let Some(w) = self.units.get_mut(unit) else {
            return;
        };
        if w.seq != seq || !w.armed {
            return; // from a previous arming (another cgroup)
        }
        let system = w.spec.system;
        let events: Vec<(&str, u64, usize)> = match signal {
            Signal::Pressure(r) => match w.spec.triggers.iter().position(|t| t.resource == r) {
                Some(i) => vec![(r.event_type(), 1, i)],
                None => vec![],
            },
            Signal::Memory(counters) => {
                let deltas = memory_deltas(w.baseline.as_ref(), &counters);
                w.baseline = Some(counters);
                let i = w.watches.len().saturating_sub(1);
                deltas.into_iter().map(|(t, n)| (t, n, i)).collect()
            }
            Signal::Lost(why) => {
                let msg = format!("{unit}: a kernel watch ended ({why}); arming again");
                cx.log(Level::Info, Some(unit), &msg);
                w.armed = false;
                w.not_before = cx.now.mono + REARM_MS;
                w.set_state(&format!("ended ({why}); arming again"));
                self.want.insert(unit.to_string());
                return;
            }
        };
        for (kind, count, i) in events {
            let w = self.units.get_mut(unit).expect("looked up above");
            if let Some(s) = w.watches.get_mut(i) {
                s.fired += 1;
                s.last_fired_ms = Some(cx.now.wall);
            }
            cx.log(
                Level::Info,
                Some(unit),
                &format!("{unit}: {kind} ({count})"),
            );
            if w.responds() {
                let ev = event_json(unit, kind, count, system, &readings);
                self.respond(unit, ev, readings.woke_us, cx);
            }
        }
    }
}

impl Feature for Kernel {
    fn load(&mut self, units: &BTreeMap<String, Unit>, cx: &mut Cx) {
        let mut next = BTreeMap::new();
        for (name, unit) in units {
            let Some(spec) = unit.spec.kernel.clone() else {
                continue;
            };
            let w = match self.units.remove(name) {
                Some(old) if old.spec == spec => old,
                Some(mut old) => {
                    Kernel::disarm(&mut old, name, cx);
                    Watching {
                        seq: old.seq,
                        ..Watching::new(spec)
                    }
                }
                None => Watching::new(spec),
            };
            if unit.active() && !w.armed {
                self.want.insert(name.clone());
            }
            next.insert(name.clone(), w);
        }
        for (name, mut old) in std::mem::take(&mut self.units) {
            Kernel::disarm(&mut old, &name, cx);
        }
        self.units = next;
        self.want.retain(|u| self.units.contains_key(u));
        self.waiting.retain(|u| self.units.contains_key(u));
    }

    fn started(&mut self, unit: &str, cx: &mut Cx) {
        if let Some(w) = self.units.get_mut(unit) {
            // A new run: a new cgroup (its path may be the same).
            Kernel::disarm(w, unit, cx);
            w.not_before = 0;
            self.want.insert(unit.to_string());
        }
    }

    fn stopped(&mut self, unit: &str, cx: &mut Cx) {
        if let Some(w) = self.units.get_mut(unit) {
            Kernel::disarm(w, unit, cx);
            w.pending = None;
            self.want.remove(unit);
            self.waiting.remove(unit);
        }
    }

    fn tick(&mut self, units: &mut BTreeMap<String, Unit>, cx: &mut Cx) {
        for unit in std::mem::take(&mut self.want) {
            if !self.arm(&unit, units, cx) {
                self.want.insert(unit);
            }
        }
        let now = cx.now.mono;
        for unit in std::mem::take(&mut self.waiting) {
            let Some(w) = self.units.get_mut(&unit) else {
                continue;
            };
            if w.running {
                continue; // served when it ends
            }
            if w.last_start.is_some_and(|t| now < t + MIN_GAP_MS) {
                self.waiting.insert(unit);
            } else if let Some((ev, woke)) = w.pending.take() {
                self.respond(&unit, ev, woke, cx);
            }
        }
    }

    fn next_wake(&self, _units: &BTreeMap<String, Unit>, _connected: bool) -> Option<Millis> {
        let gaps = self
            .waiting
            .iter()
            .filter_map(|u| self.units.get(u)?.last_start.map(|t| t + MIN_GAP_MS));
        let rearm = self
            .want
            .iter()
            .filter_map(|u| self.units.get(u).map(|w| w.not_before))
            .filter(|t| *t > 0);
        gaps.chain(rearm).min()
    }

    fn result(
        &mut self,
        ev: Event,
        _units: &mut BTreeMap<String, Unit>,
        cx: &mut Cx,
    ) -> Option<Event> {
        match ev {
            Event::Armed { unit, seq, results } => {
                let w = self.units.get_mut(&unit)?;
                if w.seq != seq {
                    return None;
                }
                for (status, armed) in w.watches.iter_mut().zip(results) {
                    status.file = armed.file;
                    match armed.result {
                        Ok(note) => {
                            status.state = "armed".into();
                            if let Some(n) = &note {
                                if w.told.insert(n.clone()) {
                                    cx.log(
                                        Level::Info,
                                        Some(&unit),
                                        &format!("{unit}: {}: {n}", status.what),
                                    );
                                }
                            }
                            status.note = note;
                        }
                        Err(why) => {
                            if w.told.insert(why.clone()) {
                                cx.log(
                                    Level::Warn,
                                    Some(&unit),
                                    &format!("{unit}: {} cannot be armed: {why}", status.what),
                                );
                            }
                            status.state = format!("unavailable: {why}");
                        }
                    }
                }
            }
            Event::Signal {
                unit,
                seq,
                signal,
                readings,
            } => self.signal(&unit, seq, signal, readings, cx),
            Event::Responded { unit, result, logs } => {
                let w = self.units.get_mut(&unit)?;
                w.running = false;
                for l in logs {
                    cx.log(Level::Info, Some(&unit), &format!("{unit}: {l}"));
                }
                let outcome = match result {
                    Ok(0) => "nothing to change".to_string(),
                    Ok(n) => format!("{n} propert{} returned", if n == 1 { "y" } else { "ies" }),
                    Err(e) => {
                        w.errors += 1;
                        if w.last_error.as_deref() != Some(e.as_str()) {
                            cx.log(
                                Level::Warn,
                                Some(&unit),
                                &format!("the kernel response of {unit} failed: {e}"),
                            );
                        }
                        w.last_error = Some(e.clone());
                        e
                    }
                };
                if let Some(r) = w.last_response.as_mut() {
                    r.outcome = outcome;
                }
                if w.pending.is_some() {
                    self.waiting.insert(unit);
                }
            }
            other => return Some(other),
        }
        None
    }

    fn status(&self, unit: &str, _now: Now, entry: &mut UnitStatus) {
        let Some(w) = self.units.get(unit) else {
            return;
        };
        entry.kernel = Some(KernelStatus {
            watches: w.watches.clone(),
            responses: w.responses,
            errors: w.errors,
            coalesced: w.coalesced,
            last_response: w.last_response.clone(),
        });
    }
}
