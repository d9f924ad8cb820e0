//! The health feature through the core: probes only while active, the
//! unhealthy edge, restarts within the budget, ONE alert when it is spent,
//! a budget that survives a daemon restart, `reset`.

use sparrow_policy::health::{BudgetRule, Outcome, Timing};

use super::*;
use crate::alert::Severity;
use crate::spec::{FailureAction, HealthSpec, ProbeSpec};

const API: &str = "api.service";

fn health_spec(on_failure: FailureAction) -> Spec {
    Spec {
        unit: API.into(),
        source: PathBuf::from("/etc/systemd/sparrow/api.sparrow"),
        line: 1,
        features: vec!["health".into()],
        resources: None,
        health: Some(HealthSpec {
            check: "http".into(),
            probe: ProbeSpec::Http {
                url: "http://127.0.0.1:8080/health".into(),
                status: Some(200),
                body: None,
                body_regex: None,
                headers: vec![],
            },
            timing: Timing {
                interval_ms: 10_000,
                timeout_ms: 1_000,
                initial_delay_ms: 5_000,
                failure_threshold: 2,
                success_threshold: 1,
            },
            on_failure,
            budget: BudgetRule {
                max: 2,
                within_ms: 600_000,
            },
        }),
        kernel: None,
        pattern: None,
    }
}

fn probe_of(actions: &[Action]) -> Option<u64> {
    actions.iter().find_map(|a| match a {
        Action::Probe { unit, seq, .. } if unit == API => Some(*seq),
        _ => None,
    })
}

impl T {
    /// Ticks until a probe of `api` is asked for; its sequence number.
    fn until_probe(&mut self) -> u64 {
        for _ in 0..20 {
            if let Some(seq) = probe_of(&self.tick()) {
                return seq;
            }
        }
        panic!("no probe was asked for");
    }

    fn probed(&mut self, seq: u64, pass: bool) -> Vec<Action> {
        self.ev(Event::Probed {
            unit: API.into(),
            seq,
            outcome: if pass {
                Outcome::Passed(3)
            } else {
                Outcome::Failed(3, "HTTP 503 (wanted 200)".into())
            },
        })
    }

    /// Probes until the unit's failure edge; the actions of the last result.
    fn fail_until_edge(&mut self) -> Vec<Action> {
        let seq = self.until_probe();
        assert!(self
            .probed(seq, false)
            .iter()
            .all(|a| !matches!(a, Action::Restart(_) | Action::Alert(_))));
        let seq = self.until_probe();
        self.probed(seq, false)
    }

    /// systemd restarted the unit.
    fn restarted(&mut self) {
        self.ev(Event::UnitChanged {
            unit: API.into(),
            active_state: "activating".into(),
        });
        self.ev(Event::UnitChanged {
            unit: API.into(),
            active_state: "active".into(),
        });
    }

    fn health(&self) -> crate::control::HealthStatus {
        self.core.status(Some(API), self.now).units[0]
            .health
            .clone()
            .unwrap()
    }
}

fn restarts(a: &[Action]) -> usize {
    a.iter()
        .filter(|a| matches!(a, Action::Restart(u) if u == API))
        .count()
}

fn alerts(a: &[Action]) -> Vec<(Severity, String)> {
    a.iter()
        .filter_map(|a| match a {
            Action::Alert(al) => Some((al.severity, al.message.clone())),
            _ => None,
        })
        .collect()
}

fn saved(a: &[Action]) -> Option<Persisted> {
    a.iter().rev().find_map(|a| match a {
        Action::Save(p) => Some((**p).clone()),
        _ => None,
    })
}

#[test]
fn restarts_stay_within_the_budget_and_one_alert_says_it_is_spent() {
    let mut t = T::new(Persisted::default(), None);
    t.boot(vec![health_spec(FailureAction::Restart)]);
    let start = t.now.mono;
    // The first probe waits out the initial delay.
    let seq = t.until_probe();
    assert_eq!(t.now.mono, start + 5_000);
    assert_eq!(t.health().state, "unknown");
    // A result from before a restart is ignored.
    t.probed(seq, true);
    assert_eq!(t.health().state, "healthy");

    let mut persisted = None;
    for n in 1..=2 {
        let a = t.fail_until_edge();
        assert_eq!(restarts(&a), 1, "restart {n}: {a:?}");
        persisted = saved(&a).or(persisted);
        assert_eq!(t.health().restarts_in_window, n);
        let stale = t.until_probe_or_none();
        t.restarted();
        // A probe that was running when it restarted does not count.
        if let Some(seq) = stale {
            t.probed(seq, false);
            assert_eq!(t.health().failures, 0);
        }
    }
    // The third failure episode within the window: no restart, one alert.
    let a = t.fail_until_edge();
    assert_eq!(restarts(&a), 0, "{a:?}");
    let al = alerts(&a);
    assert_eq!(al.len(), 1, "{a:?}");
    assert_eq!(al[0].0, Severity::Critical);
    assert!(
        al[0]
            .1
            .contains("restart budget exhausted (2 restarts within 10 min)"),
        "{}",
        al[0].1
    );
    let h = t.health();
    assert!(h.budget_exhausted && h.state == "unhealthy");
    let spent = saved(&a).expect("the spent budget is saved at once");
    assert!(spent.budgets[API].exhausted);
    assert!(persisted.is_some());
    // It keeps failing: no more restarts, no more alerts.
    for _ in 0..5 {
        let seq = t.until_probe();
        let a = t.probed(seq, false);
        assert_eq!((restarts(&a), alerts(&a).len()), (0, 0), "{a:?}");
    }

    // The daemon restarts (crash-only state): the budget is still spent;
    // the unit, still failing, is neither restarted nor alerted about again.
    let mut t2 = T::new(spent.clone(), None);
    t2.boot(vec![health_spec(FailureAction::Restart)]);
    let a = t2.fail_until_edge();
    assert_eq!((restarts(&a), alerts(&a).len()), (0, 0), "{a:?}");
    assert!(t2.health().budget_exhausted);

    // Healthy again: the budget may restart once the window has room.
    let seq = t2.until_probe();
    let a = t2.probed(seq, true);
    assert!(!saved(&a).unwrap().budgets[API].exhausted);
    assert_eq!(t2.health().state, "healthy");
    assert!(!t2.health().budget_exhausted);
    // ... but both restarts still count within the window: spent again,
    // without a second alert (a flapping unit pages once per window).
    let a = t2.fail_until_edge();
    assert_eq!((restarts(&a), alerts(&a).len()), (0, 0), "{a:?}");
    // Spent stays spent, even after the window, until healthy again.
    t2.at(t2.now.mono + 600_000);
    t2.restarted();
    let a = t2.fail_until_edge();
    assert_eq!((restarts(&a), alerts(&a).len()), (0, 0), "{a:?}");
    let seq = t2.until_probe();
    t2.probed(seq, true);
    let a = t2.fail_until_edge();
    assert_eq!(restarts(&a), 1, "{a:?}");
}

impl T {
    /// A probe asked for within the next tick, if any.
    fn until_probe_or_none(&mut self) -> Option<u64> {
        self.core.next_wake().and_then(|_| probe_of(&self.tick()))
    }
}

#[test]
fn reset_forgets_a_spent_budget_and_alert_and_nothing_act_as_said() {
    let mut t = T::new(Persisted::default(), None);
    t.boot(vec![health_spec(FailureAction::Restart)]);
    for _ in 0..2 {
        t.fail_until_edge();
        t.restarted();
    }
    t.fail_until_edge();
    assert!(t.health().budget_exhausted);
    let a = t.ev(Event::Control(7, Request::Reset { unit: API.into() }));
    assert!(
        a.iter().any(|a| matches!(a, Action::Reply(7, r) if r.ok)),
        "{a:?}"
    );
    assert!(saved(&a).unwrap().budgets[API].restarts.is_empty());
    assert!(!t.health().budget_exhausted);
    // A fresh episode: the next failures restart it.
    let a = t.fail_until_edge();
    assert_eq!(restarts(&a), 1);
    let a = t.ev(Event::Control(
        8,
        Request::Reset {
            unit: "other.service".into(),
        },
    ));
    assert!(a.iter().any(|a| matches!(a, Action::Reply(8, r) if !r.ok)));

    let mut t = T::new(Persisted::default(), None);
    t.boot(vec![health_spec(FailureAction::Alert)]);
    let a = t.fail_until_edge();
    assert_eq!(restarts(&a), 0);
    let al = alerts(&a);
    assert_eq!(al.len(), 1);
    assert_eq!(al[0].0, Severity::Warning);
    assert!(
        al[0]
            .1
            .contains("api.service is unhealthy: the http check failed 2 times in a row: HTTP 503"),
        "{}",
        al[0].1
    );

    let mut t = T::new(Persisted::default(), None);
    t.boot(vec![health_spec(FailureAction::Nothing)]);
    let a = t.fail_until_edge();
    assert_eq!((restarts(&a), alerts(&a).len()), (0, 0));
    assert_eq!(t.health().state, "unhealthy");

    let mut t = T::new(Persisted::default(), None);
    t.boot(vec![health_spec(FailureAction::Closure)]);
    let a = t.fail_until_edge();
    let event = a.iter().find_map(|a| match a {
        Action::OnFailure { unit, event } if unit == API => Some(event.clone()),
        _ => None,
    });
    let event = event.expect("the closure is called");
    assert_eq!(event["failures"], 2);
    assert_eq!(event["error"], "HTTP 503 (wanted 200)");
    assert_eq!(event["check"], "http");
}

#[test]
fn probes_run_only_while_the_unit_is_active() {
    let mut t = T::new(Persisted::default(), None);
    t.boot(vec![health_spec(FailureAction::Restart)]);
    let seq = t.until_probe();
    t.probed(seq, false);
    assert_eq!(t.health().failures, 1);
    t.ev(Event::UnitChanged {
        unit: API.into(),
        active_state: "inactive".into(),
    });
    assert_eq!(t.health().failures, 0, "counts reset when it stops");
    assert_eq!(
        t.core.next_wake(),
        None,
        "nothing to probe while it is stopped"
    );
    t.at(t.now.mono + 3_600_000);
    assert_eq!(probe_of(&t.ev(Event::Tick)), None);
    // Started again: probed after the initial delay, from zero.
    let a = t.ev(Event::UnitChanged {
        unit: API.into(),
        active_state: "active".into(),
    });
    assert_eq!(probe_of(&a), None);
    let started = t.now.mono;
    t.until_probe();
    assert_eq!(t.now.mono, started + 5_000);
}

#[test]
fn a_check_no_evaluator_could_take_is_tried_again_and_counts_as_nothing() {
    let mut t = T::new(Persisted::default(), None);
    t.boot(vec![health_spec(FailureAction::Restart)]);
    let seq = t.until_probe();
    let asked = t.now.mono;
    t.ev(Event::NotProbed {
        unit: API.into(),
        seq,
        why: "every evaluator is busy".into(),
        crashed: false,
    });
    let h = t.health();
    assert_eq!(
        (h.failures, h.successes, h.state.as_str()),
        (0, 0, "unknown")
    );
    let again = t.until_probe();
    assert_eq!((again, t.now.mono), (seq, asked + 1_000));
}

#[test]
fn alerts_from_closures_are_raised_at_most_once_a_minute_per_message() {
    let mut t = T::new(Persisted::default(), None);
    t.boot(vec![health_spec(FailureAction::Closure)]);
    let alert = |msg: &str| crate::alert::Alert {
        unit: API.into(),
        check: "alert()".into(),
        severity: Severity::Warning,
        message: msg.into(),
        wall_ms: 0,
        failures: 0,
    };
    let a = t.ev(Event::Alerts(vec![
        alert("disk full"),
        alert("disk full"),
        alert("slow"),
    ]));
    let raised: Vec<String> = alerts(&a).into_iter().map(|(_, m)| m).collect();
    assert_eq!(raised, ["disk full", "slow"]);
    t.at(t.now.mono + 30_000);
    assert!(alerts(&t.ev(Event::Alerts(vec![alert("disk full")]))).is_empty());
    t.at(t.now.mono + 31_000);
    assert_eq!(
        alerts(&t.ev(Event::Alerts(vec![alert("disk full")]))).len(),
        1
    );
}

fn reload(t: &mut T, gen: u64, specs: Vec<Spec>) -> Vec<Action> {
    t.ev(Event::Sources(vec![], vec![]));
    t.ev(Event::Loaded {
        generation: gen,
        specs,
        problems: vec![],
    })
}

#[test]
fn a_reload_keeps_budgets_and_one_probe_in_flight() {
    let mut t = T::new(Persisted::default(), None);
    t.boot(vec![health_spec(FailureAction::Restart)]);
    for _ in 0..2 {
        t.fail_until_edge();
        t.restarted();
    }
    t.fail_until_edge();
    assert!(t.health().budget_exhausted);
    // The definition is broken for a moment (the unit is missing from a
    // load), then fixed: the spent budget is still spent.
    let a = reload(&mut t, 2, vec![]);
    assert!(saved(&a).is_none_or(|p| p.budgets[API].exhausted));
    reload(&mut t, 3, vec![health_spec(FailureAction::Restart)]);
    assert!(t.health().budget_exhausted);
    let a = t.info(API, "active");
    let mut last = Vec::new();
    let mut seq = probe_of(&a);
    for _ in 0..3 {
        let s = seq.unwrap_or_else(|| t.until_probe());
        last = t.probed(s, false);
        seq = None;
    }
    assert_eq!(restarts(&last), 0, "{last:?}");
    assert!(t.health().budget_exhausted);

    // The check changes while a probe is in flight: no second probe until
    // it is back, and its result does not count.
    let mut t = T::new(Persisted::default(), None);
    t.boot(vec![health_spec(FailureAction::Restart)]);
    let old = t.until_probe();
    let mut changed = health_spec(FailureAction::Restart);
    if let Some(h) = changed.health.as_mut() {
        h.timing.failure_threshold = 1;
    }
    let a = reload(&mut t, 2, vec![changed]);
    assert_eq!(probe_of(&a), None, "a second probe went out: {a:?}");
    t.at(t.now.mono + 60_000);
    assert_eq!(
        probe_of(&t.ev(Event::Tick)),
        None,
        "a second probe went out"
    );
    let a = t.probed(old, false);
    assert_eq!(restarts(&a), 0, "a result of the old check counted: {a:?}");
    assert_eq!(t.health().failures, 0);
    let seq = probe_of(&a).unwrap_or_else(|| t.until_probe());
    assert_ne!(seq, old);
    assert_eq!(restarts(&t.probed(seq, false)), 1);
}

#[test]
fn a_check_that_crashes_its_evaluator_is_quarantined_not_failed() {
    let mut t = T::new(Persisted::default(), None);
    t.boot(vec![health_spec(FailureAction::Restart)]);
    let seq = t.until_probe();
    let a = t.ev(Event::NotProbed {
        unit: API.into(),
        seq,
        why: "the closure's evaluator process ran out of memory".into(),
        crashed: true,
    });
    assert_eq!(restarts(&a), 0);
    let h = t.health();
    assert_eq!((h.failures, h.state.as_str()), (0, "unknown"));
    assert!(h.quarantined.unwrap().contains("out of memory"));
    t.at(t.now.mono + 3_600_000);
    assert_eq!(
        probe_of(&t.ev(Event::Tick)),
        None,
        "a quarantined check was called again"
    );
    // Reading the definitions again gives it another chance.
    let a = reload(&mut t, 2, vec![health_spec(FailureAction::Restart)]);
    assert!(probe_of(&a).is_some(), "{a:?}");
}

#[test]
fn without_systemd_a_restart_spends_nothing_and_alerts_flap_once_per_window() {
    let mut t = T::new(Persisted::default(), None);
    t.boot(vec![health_spec(FailureAction::Restart)]);
    t.ev(Event::BusLost("gone".into()));
    let a = t.fail_until_edge();
    assert_eq!(restarts(&a), 0);
    assert!(saved(&a).is_none(), "budget spent without a restart: {a:?}");
    assert_eq!(t.health().restarts_in_window, 0);
    // Still failing once reconnected: a new episode, a restart.
    t.ev(Event::Connected(Ok(Via::SystemBus)));
    let a = t.fail_until_edge();
    assert_eq!(restarts(&a), 1, "{a:?}");

    let mut t = T::new(Persisted::default(), None);
    t.boot(vec![health_spec(FailureAction::Alert)]);
    assert_eq!(alerts(&t.fail_until_edge()).len(), 1);
    for _ in 0..3 {
        let seq = t.until_probe();
        t.probed(seq, true);
        assert!(
            alerts(&t.fail_until_edge()).is_empty(),
            "a flap alerted again"
        );
    }
    t.at(t.now.mono + 600_000);
    let seq = t.until_probe();
    t.probed(seq, true);
    assert_eq!(alerts(&t.fail_until_edge()).len(), 1);
}

#[test]
fn probes_due_within_a_hundredth_of_their_interval_go_together() {
    let spec = |unit: &str, delay: u64| {
        let mut s = health_spec(FailureAction::Nothing);
        s.unit = unit.into();
        if let Some(h) = s.health.as_mut() {
            h.timing.interval_ms = 1_000;
            h.timing.initial_delay_ms = delay;
        }
        s
    };
    let mut t = T::new(Persisted::default(), None);
    // Due at +1000, +1004 and +1010 ms: within 10 ms of the first; +1011 is not.
    t.boot(vec![
        spec("a.service", 1_000),
        spec("b.service", 1_004),
        spec("c.service", 1_010),
        spec("d.service", 1_011),
    ]);
    let start = t.now.mono;
    let probed = |actions: Vec<Action>| -> Vec<String> {
        actions
            .into_iter()
            .filter_map(|a| match a {
                Action::Probe { unit, .. } => Some(unit),
                _ => None,
            })
            .collect()
    };
    let a = t.tick();
    assert_eq!(t.now.mono, start + 1_000);
    assert_eq!(probed(a), ["a.service", "b.service", "c.service"]);
    assert_eq!(t.core.next_wake(), Some(start + 1_011));
    assert_eq!(probed(t.tick()), ["d.service"]);
}

/// An `on_failure` closure that returns `"restart"` or `"alert"` has the
/// daemon do that, within the same budget; any other value does nothing,
/// and neither does a word that comes back after the unit is healthy again.
#[test]
fn an_on_failure_closure_may_name_the_action() {
    let done = |t: &mut T, word: Option<&str>| {
        t.ev(Event::OnFailureDone {
            unit: API.into(),
            result: Ok(()),
            logs: vec!["paged the on-call".into()],
            action: word.map(String::from),
        })
    };
    let mut t = T::new(Persisted::default(), None);
    t.boot(vec![health_spec(FailureAction::Closure)]);
    let a = t.fail_until_edge();
    assert_eq!(restarts(&a), 0, "the closure decides");
    let a = done(&mut t, Some("restart"));
    assert_eq!(restarts(&a), 1, "{a:?}");
    assert_eq!(t.health().restarts, 1);
    assert!(saved(&a).is_some(), "the budget is spent and persisted");

    let mut t = T::new(Persisted::default(), None);
    t.boot(vec![health_spec(FailureAction::Closure)]);
    t.fail_until_edge();
    let a = done(&mut t, Some("alert"));
    assert_eq!((restarts(&a), alerts(&a).len()), (0, 1), "{a:?}");

    for word in [None, Some("none"), Some("restrat"), Some("ok")] {
        let mut t = T::new(Persisted::default(), None);
        t.boot(vec![health_spec(FailureAction::Closure)]);
        t.fail_until_edge();
        let a = done(&mut t, word);
        assert_eq!((restarts(&a), alerts(&a).len()), (0, 0), "{word:?}: {a:?}");
    }

    // Healthy again before the closure answered: nothing to restart.
    let mut t = T::new(Persisted::default(), None);
    t.boot(vec![health_spec(FailureAction::Closure)]);
    t.fail_until_edge();
    let seq = t.until_probe();
    t.probed(seq, true);
    let a = done(&mut t, Some("restart"));
    assert_eq!(restarts(&a), 0, "{a:?}");
}
