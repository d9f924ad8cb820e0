//! The resources feature: a unit's `monitor.resources` closure and dynamic
//! resource properties, evaluated on its interval while it runs, decided
//! with hysteresis ([`plan`]) and applied live.

mod plan;

use std::collections::{BTreeMap, HashMap, VecDeque};

use sparrow_policy::{Live, Prop, PropHistory, RateLimit, Target};

use plan::{plan, show};

use super::{
    clip, Action, Change, Cx, Event, Feature, Level, LogRecord, Millis, Now, Origin, Unit,
};
use crate::control::{Applied, Decision, EvalRecord, EvalReport, Request, Response, UnitStatus};
use crate::eval::Evaluation;
use crate::spec::ResourcesSpec;

/// Changes remembered per unit for `status`.
const APPLIED_KEPT: usize = 20;
/// A unit busy elsewhere is retried this much later.
const RETRY_MS: Millis = 250;
/// Evaluations due within this share of their interval go together (one
/// wake-up for many), within these bounds.
const BATCH_SHARE: u64 = 10;
const BATCH_MIN_MS: Millis = 250;
const BATCH_MAX_MS: Millis = 5_000;

fn batch_window(interval: Millis) -> Millis {
    (interval / BATCH_SHARE).clamp(BATCH_MIN_MS, BATCH_MAX_MS)
}

/// One unit's resources state.
#[derive(Debug)]
struct State {
    spec: ResourcesSpec,
    live: BTreeMap<Prop, Live>,
    next_due: Millis,
    /// Not evaluated before this (postponed: every evaluator was busy).
    not_before: Millis,
    in_flight: bool,
    applying: bool,
    cap: RateLimit,
    last_eval: Option<EvalRecord>,
    applied: VecDeque<Applied>,
    evaluations: u64,
    errors: u64,
    slow: u64,
    /// The last error, logged once until it changes.
    last_error: Option<String>,
}

impl State {
    fn new(unit: &str, spec: ResourcesSpec, now: Millis) -> State {
        // Spread first evaluations over the interval so that many units do
        // not all evaluate at once after a start.
        let jitter = unit
            .bytes()
            .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)))
            % spec.interval_ms.max(1);
        State {
            cap: RateLimit::per_minute(spec.max_changes_per_minute),
            next_due: now + jitter.min(5_000),
            spec,
            live: BTreeMap::new(),
            not_before: 0,
            in_flight: false,
            applying: false,
            last_eval: None,
            applied: VecDeque::new(),
            evaluations: 0,
            errors: 0,
            slow: 0,
            last_error: None,
        }
    }
}

/// An evaluation waiting for live values before it can be decided.
#[derive(Debug)]
struct Pending {
    unit: String,
    targets: Vec<Target>,
    origin: Origin,
    record: EvalRecord,
}

/// The feature.
#[derive(Debug, Default)]
pub struct Resources {
    units: BTreeMap<String, State>,
    pending: HashMap<u64, Pending>,
    next_ticket: u64,
}

impl Resources {
    fn reply_eval(out: &mut Vec<Action>, id: u64, report: EvalReport) {
        out.push(Action::reply(
            id,
            Response {
                ok: true,
                eval: Some(report),
                ..Response::default()
            },
        ));
    }

    fn on_evaluated(&mut self, e: Evaluation, units: &mut BTreeMap<String, Unit>, cx: &mut Cx) {
        cx.counters.evaluations += 1;
        for (unit, msg) in &e.logs {
            cx.log(Level::Info, Some(unit), &format!("{unit}: {msg}"));
        }
        let (Some(u), Some(unit)) = (self.units.get_mut(&e.unit), units.get_mut(&e.unit)) else {
            if let Origin::Request(id) = e.origin {
                cx.out.push(Action::reply(
                    id,
                    Response::error(format!("{} is not managed", e.unit)),
                ));
            }
            return;
        };
        if e.origin == Origin::Schedule {
            u.in_flight = false;
            u.evaluations += 1;
        }
        let mut record = EvalRecord {
            at_ms: cx.now.wall,
            took_us: e.took.as_micros() as u64,
            error: None,
            decisions: Vec::new(),
        };
        let desired = match e.result {
            Ok(d) => d,
            Err(err) => {
                cx.counters.errors += 1;
                u.errors += 1;
                if e.timed_out {
                    cx.counters.slow += 1;
                    u.slow += 1;
                }
                if e.crashed {
                    unit.quarantined = Some(err.clone());
                    cx.log(Level::Error, Some(&e.unit), &format!("{}; {} is not evaluated again until its definition is re-read (systemd-sparrow reload)", clip(&err), e.unit));
                } else if u.last_error.as_deref() != Some(err.as_str()) {
                    // Once per distinct error, not at every interval.
                    cx.log(
                        Level::Warn,
                        Some(&e.unit),
                        &format!("evaluation of {} failed: {err}", e.unit),
                    );
                }
                record.error = Some(err.clone());
                match e.origin {
                    Origin::Schedule | Origin::Kernel(_) => {
                        u.last_error = Some(err);
                        u.last_eval = Some(record);
                    }
                    Origin::Request(id) => Self::reply_eval(
                        cx.out,
                        id,
                        EvalReport {
                            unit: e.unit.clone(),
                            took_us: record.took_us,
                            error: Some(err),
                            decisions: vec![],
                        },
                    ),
                }
                return;
            }
        };
        if e.origin == Origin::Schedule && u.last_error.take().is_some() {
            cx.log(
                Level::Info,
                Some(&e.unit),
                &format!("evaluation of {} works again", e.unit),
            );
        }
        let mut targets = Vec::new();
        for (prop, d) in desired {
            match d.resolve(prop, cx.machine) {
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
            unit: e.unit.clone(),
            targets,
            origin: e.origin,
            record,
        };
        if missing.is_empty() {
            self.decide(pending, units, cx);
            return;
        }
        if !cx.connected {
            if let Origin::Request(id) = pending.origin {
                cx.out.push(Action::reply(
                    id,
                    Response::error("not connected to systemd"),
                ));
            }
            return;
        }
        self.next_ticket += 1;
        let ticket = self.next_ticket;
        self.pending.insert(ticket, pending);
        cx.out.push(Action::ReadLive {
            unit: e.unit,
            props: missing,
            ticket: Some(ticket),
        });
    }

    fn decide(&mut self, p: Pending, units: &BTreeMap<String, Unit>, cx: &mut Cx) {
        let now = cx.now.mono;
        let history = cx.persisted.units.get(&p.unit).cloned().unwrap_or_default();
        let active = units.get(&p.unit).is_some_and(Unit::active);
        let Some(u) = self.units.get_mut(&p.unit) else {
            return;
        };
        let dry_run = matches!(p.origin, Origin::Request(_)) || u.applying || !active;
        let plan = plan(
            &p.targets, &u.live, &u.spec, &history, &mut u.cap, cx.global, now, dry_run,
        );
        let mut record = p.record;
        record.decisions.extend(plan.decisions);
        match p.origin {
            Origin::Request(id) => {
                Self::reply_eval(
                    cx.out,
                    id,
                    EvalReport {
                        unit: p.unit.clone(),
                        took_us: record.took_us,
                        error: None,
                        decisions: record.decisions,
                    },
                );
                return;
            }
            // A kernel response's decisions show as the last evaluation.
            Origin::Schedule | Origin::Kernel(_) => u.last_eval = Some(record),
        }
        if dry_run || plan.apply.is_empty() || !cx.connected {
            return;
        }
        u.applying = true;
        let changes = plan
            .apply
            .into_iter()
            .map(|(target, reason)| Change {
                old: u.live.get(&target.prop).cloned().unwrap_or(Live::Num(0)),
                target,
                reason,
            })
            .collect();
        let woke_us = match p.origin {
            Origin::Kernel(w) => w,
            _ => None,
        };
        cx.out.push(Action::Apply {
            unit: p.unit,
            changes,
            woke_us,
        });
    }

    fn on_applied(
        &mut self,
        unit: String,
        changes: Vec<Change>,
        result: Result<BTreeMap<Prop, Live>, String>,
        cx: &mut Cx,
    ) {
        let Some(u) = self.units.get_mut(&unit) else {
            return;
        };
        u.applying = false;
        match result {
            Ok(readback) => {
                let hist = cx.persisted.units.entry(unit.clone()).or_default();
                for c in changes {
                    let prop = c.target.prop;
                    let new = readback
                        .get(&prop)
                        .cloned()
                        .unwrap_or_else(|| c.target.value.clone());
                    hist.insert(
                        prop,
                        PropHistory {
                            last_change: Some(cx.now.mono),
                            last_value: Some(new.clone()),
                            last_target: Some(c.target.value.clone()),
                        },
                    );
                    u.live.insert(prop, new.clone());
                    let (old_s, new_s) = (show(prop, &c.old), show(prop, &new));
                    cx.out.push(Action::Log(LogRecord {
                        level: Level::Info,
                        unit: Some(unit.clone()),
                        message: format!(
                            "{unit}: {} {old_s} -> {new_s} ({})",
                            prop.directive(),
                            c.reason
                        ),
                        fields: vec![
                            ("PROPERTY", prop.directive().to_string()),
                            ("OLD", old_s.clone()),
                            ("NEW", new_s.clone()),
                            ("REASON", c.reason.clone()),
                        ],
                    }));
                    u.applied.push_back(Applied {
                        at_ms: cx.now.wall,
                        prop,
                        old: old_s,
                        new: new_s,
                        reason: c.reason,
                    });
                    if u.applied.len() > APPLIED_KEPT {
                        u.applied.pop_front();
                    }
                    cx.counters.applied += 1;
                }
                cx.out.push(Action::Save(Box::new(cx.persisted.clone())));
            }
            Err(e) => {
                cx.log(
                    Level::Error,
                    Some(&unit),
                    &format!("cannot apply to {unit}: {e}"),
                );
                u.errors += 1;
                for c in changes {
                    u.live.remove(&c.target.prop);
                }
            }
        }
    }
}

impl Feature for Resources {
    fn load(&mut self, units: &BTreeMap<String, Unit>, cx: &mut Cx) {
        let mut next = BTreeMap::new();
        for (name, unit) in units {
            let Some(spec) = unit.spec.resources.clone() else {
                continue;
            };
            let st = match self.units.remove(name) {
                // Keep what we know of units that stay: caps, history, status.
                Some(mut old) => {
                    if old.spec.interval_ms != spec.interval_ms {
                        old.next_due = cx.now.mono;
                    }
                    if old.spec.max_changes_per_minute != spec.max_changes_per_minute {
                        old.cap = RateLimit::per_minute(spec.max_changes_per_minute);
                    }
                    old.spec = spec;
                    old.live.clear();
                    old
                }
                None => State::new(name, spec, cx.now.mono),
            };
            next.insert(name.clone(), st);
        }
        self.units = next;
    }

    fn started(&mut self, unit: &str, cx: &mut Cx) {
        if let Some(u) = self.units.get_mut(unit) {
            // A (re)started unit gets its limits right away.
            u.next_due = cx.now.mono;
            u.live.clear();
        }
    }

    fn connected(&mut self, _cx: &mut Cx) {
        for u in self.units.values_mut() {
            // Anything may have changed while we were away.
            u.live.clear();
        }
    }

    fn tick(&mut self, units: &mut BTreeMap<String, Unit>, cx: &mut Cx) {
        if !cx.connected {
            return;
        }
        let now = cx.now.mono;
        let mut batch = Vec::new();
        for (name, u) in &mut self.units {
            if !u.spec.scheduled() {
                continue; // only kernel responses and pattern checks change it
            }
            let due = u.next_due <= now + batch_window(u.spec.interval_ms) && u.not_before <= now;
            if !due || u.in_flight || u.applying {
                continue;
            }
            let unit = units.get(name);
            if unit.is_some_and(|x| x.quarantined.is_some()) {
                continue;
            }
            u.next_due = now + u.spec.interval_ms;
            if unit.is_some_and(Unit::active) {
                u.in_flight = true;
                batch.push(name.clone());
            }
        }
        if !batch.is_empty() {
            cx.out.push(Action::Evaluate(batch, Origin::Schedule));
        }
    }

    fn next_wake(&self, units: &BTreeMap<String, Unit>, connected: bool) -> Option<Millis> {
        if !connected {
            return None;
        }
        self.units
            .iter()
            .filter(|(n, u)| {
                u.spec.scheduled()
                    && !u.in_flight
                    && !u.applying
                    && units
                        .get(*n)
                        .is_some_and(|x| x.active() && x.quarantined.is_none())
            })
            // When the first unit is due, the ones due within its batch
            // window go too (a little early): one wake-up for all, and
            // from then on they share a schedule.
            .map(|(_, u)| u.next_due.max(u.not_before))
            .min()
    }

    fn result(
        &mut self,
        ev: Event,
        units: &mut BTreeMap<String, Unit>,
        cx: &mut Cx,
    ) -> Option<Event> {
        match ev {
            Event::Evaluated(e) => self.on_evaluated(e, units, cx),
            Event::Rejected(names, origin) => {
                for name in names {
                    match origin {
                        Origin::Schedule => {
                            cx.counters.postponed += 1;
                            if let Some(u) = self.units.get_mut(&name) {
                                // Every evaluator is busy: try again shortly.
                                u.in_flight = false;
                                u.next_due = cx.now.mono + RETRY_MS;
                                u.not_before = u.next_due;
                            }
                        }
                        Origin::Request(id) => cx.out.push(Action::reply(
                            id,
                            Response::error("every evaluator is busy; try again"),
                        )),
                        Origin::Kernel(_) => {}
                    }
                }
            }
            Event::Live {
                unit,
                result,
                ticket,
            } => {
                let pending = ticket.and_then(|t| self.pending.remove(&t));
                match result {
                    Ok(live) => {
                        if let Some(u) = self.units.get_mut(&unit) {
                            u.live.extend(live);
                        }
                        if let Some(p) = pending {
                            self.decide(p, units, cx);
                        }
                    }
                    Err(e) => {
                        cx.log(
                            Level::Warn,
                            Some(&unit),
                            &format!("cannot read live values of {unit}: {e}"),
                        );
                        if let Some(Pending {
                            origin: Origin::Request(id),
                            ..
                        }) = pending
                        {
                            cx.out.push(Action::reply(
                                id,
                                Response::error(format!("cannot read live values of {unit}: {e}")),
                            ));
                        }
                    }
                }
            }
            Event::Applied {
                unit,
                changes,
                result,
            } => self.on_applied(unit, changes, result, cx),
            other => return Some(other),
        }
        None
    }

    fn request(
        &mut self,
        id: u64,
        req: &Request,
        _units: &BTreeMap<String, Unit>,
        cx: &mut Cx,
    ) -> Option<Response> {
        let Request::Eval { unit } = req else {
            return None;
        };
        if !self.units.get(unit).is_some_and(|u| u.spec.scheduled()) {
            return Some(Response::error(format!(
                "{unit} has no resources to evaluate (no monitor.resources and no dynamic resource property)"
            )));
        }
        cx.out
            .push(Action::Evaluate(vec![unit.clone()], Origin::Request(id)));
        None
    }

    fn status(&self, unit: &str, now: Now, entry: &mut UnitStatus) {
        let Some(u) = self.units.get(unit) else {
            return;
        };
        entry.interval_ms = u.spec.interval_ms;
        entry.next_eval_in_ms =
            (entry.active_state == "active").then(|| u.next_due.saturating_sub(now.mono));
        entry.last_eval = u.last_eval.clone();
        entry.applied = u.applied.iter().cloned().collect();
        entry.live = u.live.iter().map(|(p, v)| (*p, show(*p, v))).collect();
        entry.evaluations = u.evaluations;
        entry.errors = u.errors;
        entry.slow = u.slow;
    }
}
