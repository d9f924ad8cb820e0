//! The health feature: probes each active unit on its interval, keeps
//! Kubernetes' counts (`sparrow_policy::health::Check`), and on the edge to
//! unhealthy does what `on_failure` says: restart within the restart
//! budget, alert, call the closure, or nothing. Budgets are crash-only
//! state: they live in [`Persisted`](crate::state::Persisted), saved after
//! every change, so restarting the daemon does not give a flapping unit a
//! fresh budget.
//!
//! Probes run in the actuator (http, tcp and exec concurrently, bounded;
//! the `check` closure in the evaluators); each comes back as
//! [`Event::Probed`] with the probe's sequence number, so a result that
//! belongs to a previous run of the unit is ignored.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use sparrow_policy::health::{Allowance, Budget, Check, Edge, Health as State, Outcome};

use super::{Action, Cx, Event, Feature, Level, Millis, Now, Unit};
use crate::alert::{Alert, Severity};
use crate::control::{HealthStatus, Request, Response, UnitStatus};
use crate::spec::{FailureAction, HealthSpec, ProbeSpec};

impl Probing {
    /// A unit's probing from scratch, with `budget`; probed after the
    /// initial delay when `active`.
    fn new(spec: HealthSpec, active: bool, now: Millis, budget: Budget) -> Probing {
        let mut check = Check::default();
        if active {
            check.started(now, &spec.timing);
        }
        Probing {
            probe: Arc::new(spec.probe.clone()),
            spec,
            check,
            seq: 0,
            in_flight: None,
            quarantined: None,
            last_alert: None,
            probes: 0,
            restarts: 0,
            budget,
            queued: None,
            id: 0,
        }
    }
}

/// How early a probe may start to go with one that is due: a hundredth of
/// its interval, at most 10 ms. At a thousand probes a second a wake-up of
/// the daemon then starts about ten, not one (the wake-ups and the
/// scheduler were the largest cost after the probes' own system calls);
/// no schedule moves by more than that. (A tenth of the interval, tried
/// first, made bursts of a hundred connections that queued at the server.)
fn slack(interval_ms: Millis) -> Millis {
    (interval_ms / 100).min(10)
}

/// A probe no evaluator could take is tried again after this long.
const RETRY_MS: Millis = 1_000;

/// One unit's probing.
#[derive(Debug)]
struct Probing {
    spec: HealthSpec,
    check: Check,
    /// Bumped on every (re)start and change of the check: results of older
    /// probes are ignored.
    seq: u64,
    /// The probe in flight (its seq): at most one per unit, whatever run
    /// of the unit it belongs to.
    in_flight: Option<u64>,
    /// Why the check closure is no longer called (it took its evaluator
    /// process down); cleared when the definitions are read again.
    quarantined: Option<String>,
    /// When `on_failure: "alert"` last alerted (at most once per budget window).
    last_alert: Option<Millis>,
    probes: u64,
    restarts: u64,
    /// Restarts within the window; a copy of what is persisted.
    budget: Budget,
    /// Its entry in the queue of due probes, if any.
    queued: Option<Millis>,
    /// Its index in `Health::names` (set at each load).
    id: u32,
    /// `spec.probe`, shared with every probe action (no copy per probe).
    probe: Arc<ProbeSpec>,
}

/// The feature.
#[derive(Debug, Default)]
pub struct Health {
    /// By index (a unit's `id`): a probe that is due costs no string
    /// comparison to find.
    units: Vec<Probing>,
    /// Unit name → index in `units` and `names`.
    index: BTreeMap<String, u32>,
    /// When each unit's next probe is due, earliest first: a tick and the
    /// next wake-up cost O(log n) in the number of units, not a scan of
    /// all of them on every event (a thousand checks per second are a
    /// thousand events).
    /// Entries are (due, the unit's index in `names`): no allocation and no
    /// string comparison per probe.
    queue: BTreeSet<(Millis, u32)>,
    names: Vec<String>,
}

/// Puts `p`'s next probe in the queue (or takes it out): queued when it is
/// due at some time and neither in flight nor quarantined.
fn schedule(queue: &mut BTreeSet<(Millis, u32)>, p: &mut Probing) {
    let want = match (p.in_flight, &p.quarantined, p.check.due) {
        (None, None, Some(at)) => Some(at),
        _ => None,
    };
    if want == p.queued {
        return;
    }
    if let Some(at) = p.queued.take() {
        queue.remove(&(at, p.id));
    }
    if let Some(at) = want {
        queue.insert((at, p.id));
        p.queued = Some(at);
    }
}

/// `unit`'s probing (a free function: the queue is borrowed beside it).
fn slot<'a>(
    index: &BTreeMap<String, u32>,
    units: &'a mut [Probing],
    unit: &str,
) -> Option<&'a mut Probing> {
    units.get_mut(*index.get(unit)? as usize)
}

fn window(ms: u64) -> String {
    match ms {
        m if m % 60_000 == 0 => format!("{} min", m / 60_000),
        m if m % 1_000 == 0 => format!("{} s", m / 1_000),
        m => format!("{m} ms"),
    }
}

impl Health {
    /// Keeps `unit`'s budget across daemon restarts (saved at once).
    fn persist(cx: &mut Cx, unit: &str, budget: &Budget) {
        cx.persisted
            .budgets
            .insert(unit.to_string(), budget.clone());
        cx.out.push(Action::Save(Box::new(cx.persisted.clone())));
    }

    fn alert(cx: &mut Cx, unit: &str, p: &Probing, severity: Severity, message: String) {
        cx.out.push(Action::Alert(Box::new(Alert {
            unit: unit.to_string(),
            check: p.spec.check.clone(),
            severity,
            message,
            wall_ms: cx.now.wall,
            failures: p.check.failures,
        })));
    }

    fn unhealthy(&mut self, unit: &str, cx: &mut Cx) {
        let Some(p) = slot(&self.index, &mut self.units, unit) else {
            return;
        };
        let what = match p.spec.check.as_str() {
            "check" => "the check closure".to_string(),
            c => format!("the {c} check"),
        };
        let why = format!(
            "{what} failed {} times in a row: {}",
            p.check.failures,
            p.check.last_error.as_deref().unwrap_or("?")
        );
        cx.log(
            Level::Warn,
            Some(unit),
            &format!("{unit} is unhealthy: {why}"),
        );
        let action = p.spec.on_failure;
        self.act(unit, action, why, cx);
    }

    /// Does what `on_failure` (or the word its closure returned) says.
    fn act(&mut self, unit: &str, action: FailureAction, why: String, cx: &mut Cx) {
        let Some(p) = slot(&self.index, &mut self.units, unit) else {
            return;
        };
        match action {
            FailureAction::Nothing => {}
            FailureAction::Alert => {
                // A flapping unit alerts once per window, not once per flap.
                let window = p.spec.budget.within_ms;
                let recent = p
                    .last_alert
                    .is_some_and(|t| cx.now.mono.saturating_sub(t) < window);
                if !recent {
                    p.last_alert = Some(cx.now.mono);
                    let msg = format!("{unit} is unhealthy: {why}");
                    Health::alert(cx, unit, p, Severity::Warning, msg);
                }
            }
            FailureAction::Closure => cx.out.push(Action::OnFailure {
                unit: unit.to_string(),
                event: serde_json::json!({
                    "unit": unit,
                    "check": p.spec.check,
                    "error": p.check.last_error,
                    "failures": p.check.failures,
                    "restarts": p.restarts,
                }),
            }),
            FailureAction::Restart if !cx.connected => {
                // Nothing spent: the next failures (after reconnecting) try again.
                cx.log(
                    Level::Error,
                    Some(unit),
                    &format!("cannot restart {unit}: not connected to systemd"),
                );
                p.check.health = State::Unknown;
                p.check.failures = 0;
            }
            FailureAction::Restart => {
                let rule = p.spec.budget;
                let allowance = p.budget.request(cx.now.mono, &rule);
                Health::persist(cx, unit, &p.budget);
                match allowance {
                    Allowance::Restart => {
                        let n = p.budget.restarts.len();
                        p.restarts += 1;
                        cx.log(
                            Level::Warn,
                            Some(unit),
                            &format!(
                                "restarting {unit} (restart {n} of at most {} within {}): {why}",
                                rule.max,
                                window(rule.within_ms)
                            ),
                        );
                        cx.out.push(Action::Restart(unit.to_string()));
                    }
                    Allowance::Exhausted { alert } => {
                        let msg = format!(
                            "{unit}: restart budget exhausted ({} restarts within {}); not restarting until it is healthy again or `systemd-sparrow reset {unit}`; {why}",
                            rule.max,
                            window(rule.within_ms)
                        );
                        cx.log(Level::Error, Some(unit), &msg);
                        if alert {
                            Health::alert(cx, unit, p, Severity::Critical, msg);
                        }
                    }
                }
            }
        }
    }
}

impl Feature for Health {
    fn load(&mut self, units: &BTreeMap<String, Unit>, cx: &mut Cx) {
        let mut next = BTreeMap::new();
        let mut old: Vec<Option<Probing>> = std::mem::take(&mut self.units)
            .into_iter()
            .map(Some)
            .collect();
        for (name, unit) in units {
            let Some(spec) = unit.spec.health.clone() else {
                continue;
            };
            let before = self
                .index
                .get(name)
                .and_then(|&i| old.get_mut(i as usize)?.take());
            let p = match before {
                Some(mut old) if old.spec == spec => {
                    // Read again: a quarantined check gets another chance.
                    old.quarantined = None;
                    old
                }
                // Its check changed: count afresh, but a probe of the old
                // check still in flight stays the only one (its result is
                // ignored), and the budget is the unit's, not the check's.
                Some(old) => Probing {
                    seq: old.seq + 1,
                    in_flight: old.in_flight,
                    last_alert: old.last_alert,
                    probes: old.probes,
                    restarts: old.restarts,
                    ..Probing::new(spec, unit.active(), cx.now.mono, old.budget)
                },
                // What a previous run of the daemon (or an earlier load that
                // lacked the unit) spent.
                None => {
                    let budget = cx.persisted.budgets.get(name).cloned().unwrap_or_default();
                    Probing::new(spec, unit.active(), cx.now.mono, budget)
                }
            };
            next.insert(name.clone(), p);
        }
        // A unit missing from one load (its file broken for a moment) keeps
        // its spent budget; budgets with nothing left to remember go.
        let keep = |b: &Budget| b.exhausted || !b.restarts.is_empty();
        cx.persisted
            .budgets
            .retain(|u, b| next.contains_key(u) || keep(b));
        self.queue.clear();
        self.names.clear();
        self.index.clear();
        for (name, mut p) in next {
            p.id = self.names.len() as u32;
            p.queued = None;
            schedule(&mut self.queue, &mut p);
            self.index.insert(name.clone(), p.id);
            self.names.push(name);
            self.units.push(p);
        }
    }

    fn started(&mut self, unit: &str, cx: &mut Cx) {
        if let Some(p) = slot(&self.index, &mut self.units, unit) {
            p.check.started(cx.now.mono, &p.spec.timing);
            p.seq += 1;
            schedule(&mut self.queue, p);
        }
    }

    fn stopped(&mut self, unit: &str, _cx: &mut Cx) {
        // Checks run only while the unit is active; its counts start afresh
        // when it starts again.
        if let Some(p) = slot(&self.index, &mut self.units, unit) {
            p.check.stopped();
            p.seq += 1;
            schedule(&mut self.queue, p);
        }
    }

    fn tick(&mut self, units: &mut BTreeMap<String, Unit>, cx: &mut Cx) {
        let now = cx.now.mono;
        let slack_of = |units: &[Probing], id: u32| {
            units
                .get(id as usize)
                .map_or(0, |p| slack(p.spec.timing.interval_ms))
        };
        while self
            .queue
            .first()
            .is_some_and(|(at, id)| *at <= now + slack_of(&self.units, *id))
        {
            let Some((_, id)) = self.queue.pop_first() else {
                break;
            };
            let (Some(name), Some(p)) =
                (self.names.get(id as usize), self.units.get_mut(id as usize))
            else {
                continue;
            };
            p.queued = None;
            if !units.get(name).is_some_and(Unit::active) {
                // Not (yet) seen active: `started` schedules it again.
                continue;
            }
            p.in_flight = Some(p.seq);
            p.probes += 1;
            cx.out.push(Action::Probe {
                unit: name.clone(),
                seq: p.seq,
                probe: p.probe.clone(),
                timeout_ms: p.spec.timing.timeout_ms,
            });
        }
    }

    fn next_wake(&self, _units: &BTreeMap<String, Unit>, _connected: bool) -> Option<Millis> {
        self.queue.first().map(|(at, _)| *at)
    }

    fn result(
        &mut self,
        ev: Event,
        _units: &mut BTreeMap<String, Unit>,
        cx: &mut Cx,
    ) -> Option<Event> {
        match ev {
            Event::Probed { unit, seq, outcome } => {
                // Not a unit with a check (any more): consumed all the same.
                let p = slot(&self.index, &mut self.units, &unit)?;
                if p.in_flight == Some(seq) {
                    p.in_flight = None;
                }
                if p.seq != seq {
                    schedule(&mut self.queue, p);
                    return None; // from before a restart, a stop or a change
                }
                let edge = p.check.record(cx.now.mono, outcome, &p.spec.timing);
                schedule(&mut self.queue, p);
                match edge {
                    Edge::None => {}
                    Edge::BecameHealthy => {
                        cx.log(Level::Info, Some(&unit), &format!("{unit} is healthy"));
                        if p.budget.exhausted {
                            p.budget.healthy_again();
                            Health::persist(cx, &unit, &p.budget);
                        }
                    }
                    Edge::BecameUnhealthy => self.unhealthy(&unit, cx),
                }
            }
            Event::NotProbed {
                unit,
                seq,
                why,
                crashed,
            } => {
                let p = slot(&self.index, &mut self.units, &unit)?;
                if p.in_flight == Some(seq) {
                    p.in_flight = None;
                }
                if crashed {
                    // Calling it again would crash again: not the unit's
                    // failure, and not retried until the definitions change.
                    cx.log(
                        Level::Error,
                        Some(&unit),
                        &format!("the check of {unit} is not run any more: {why}; fix its definition, then systemd-sparrow reload"),
                    );
                    p.quarantined = Some(why);
                } else if p.seq == seq {
                    p.check.due = Some(cx.now.mono + RETRY_MS);
                    cx.log(
                        Level::Warn,
                        Some(&unit),
                        &format!("the check of {unit} could not run ({why}); trying again in 1 s"),
                    );
                }
                schedule(&mut self.queue, p);
            }
            Event::Restarted { unit, result } => {
                if let Err(e) = result {
                    cx.log(
                        Level::Error,
                        Some(&unit),
                        &format!("cannot restart {unit}: {e}"),
                    );
                }
            }
            Event::OnFailureDone {
                unit,
                result,
                logs,
                action,
            } => {
                for l in logs {
                    cx.log(Level::Info, Some(&unit), &l);
                }
                if let Err(e) = result {
                    cx.log(
                        Level::Error,
                        Some(&unit),
                        &format!("the on_failure closure of {unit} failed: {e}"),
                    );
                }
                // A closure may end by naming what the daemon should do.
                let then = match action.as_deref() {
                    Some("restart") => Some(FailureAction::Restart),
                    Some("alert") => Some(FailureAction::Alert),
                    _ => None,
                };
                let still = slot(&self.index, &mut self.units, &unit)
                    .filter(|p| p.check.health == State::Unhealthy)
                    .map(|p| {
                        format!(
                            "its on_failure closure said {:?} after {} failed checks: {}",
                            action.as_deref().unwrap_or(""),
                            p.check.failures,
                            p.check.last_error.as_deref().unwrap_or("?")
                        )
                    });
                if let (Some(then), Some(why)) = (then, still) {
                    self.act(&unit, then, why, cx);
                }
            }
            other => return Some(other),
        }
        None
    }

    fn request(
        &mut self,
        _id: u64,
        req: &Request,
        units: &BTreeMap<String, Unit>,
        cx: &mut Cx,
    ) -> Option<Response> {
        let Request::Reset { unit } = req else {
            return None;
        };
        let Some(p) = slot(&self.index, &mut self.units, unit) else {
            return Some(Response::error(format!("{unit} has no health check")));
        };
        p.budget.reset();
        Health::persist(cx, unit, &p.budget);
        // A fresh episode: if it is still failing, the next failures act again.
        if units.get(unit).is_some_and(Unit::active) {
            p.check.started(cx.now.mono, &p.spec.timing);
            p.seq += 1;
        }
        p.last_alert = None;
        schedule(&mut self.queue, p);
        cx.log(
            Level::Info,
            Some(unit),
            &format!("restart budget of {unit} reset"),
        );
        Some(Response {
            ok: true,
            message: Some(format!("{unit}: restart budget reset")),
            ..Response::default()
        })
    }

    fn status(&self, unit: &str, now: Now, entry: &mut UnitStatus) {
        let Some(p) = self
            .index
            .get(unit)
            .and_then(|&i| self.units.get(i as usize))
        else {
            return;
        };
        entry.health = Some(HealthStatus {
            check: p.spec.check.clone(),
            state: match p.check.health {
                State::Unknown => "unknown",
                State::Healthy => "healthy",
                State::Unhealthy => "unhealthy",
            }
            .into(),
            failures: p.check.failures,
            successes: p.check.successes,
            last_error: p.check.last_error.clone(),
            last_latency_ms: p.check.last_latency_ms,
            next_probe_in_ms: p
                .check
                .due
                .filter(|_| p.in_flight.is_none() && p.quarantined.is_none())
                .map(|d| d.saturating_sub(now.mono)),
            quarantined: p.quarantined.clone(),
            probes: p.probes,
            restarts: p.restarts,
            restarts_in_window: p
                .budget
                .restarts
                .iter()
                .filter(|t| now.mono.saturating_sub(**t) < p.spec.budget.within_ms)
                .count() as u32,
            budget_max: p.spec.budget.max,
            budget_window_ms: p.spec.budget.within_ms,
            budget_exhausted: p.budget.exhausted,
        });
    }
}

/// The outcome of a probe, for the core.
pub fn outcome(latency_ms: u64, result: Result<(), String>) -> Outcome {
    match result {
        Ok(()) => Outcome::Passed(latency_ms),
        Err(e) => Outcome::Failed(latency_ms, e),
    }
}
