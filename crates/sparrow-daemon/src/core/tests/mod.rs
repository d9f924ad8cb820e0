//! The core, driven by event sequences: what it decides, as actions. No
//! root, no D-Bus, no clock: time is whatever the test says it is.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use sparrow_policy::{Desired, Live, Machine, Prop, Threshold};

use super::*;
use crate::control::Request;
use crate::eval::Evaluation;
use crate::spec::{ResourcesSpec, Spec};
use crate::systemd::UnitInfo;

const MIB: u64 = 1 << 20;
const WEB: &str = "web.service";

fn spec(unit: &str, interval_ms: u64) -> Spec {
    Spec {
        unit: unit.into(),
        source: PathBuf::from("/etc/systemd/sparrow/web.sparrow"),
        line: 1,
        features: vec!["resources".into()],
        resources: Some(ResourcesSpec {
            interval_ms,
            min_dwell_ms: 60_000,
            max_changes_per_minute: 2,
            thresholds: [(Prop::MemoryMax, Threshold::Abs(100 * MIB))].into(),
            closure: true,
            dynamic: vec![],
        }),
        health: None,
        kernel: None,
        pattern: None,
    }
}

/// A core and the time, with helpers that feed events and check actions.
struct T {
    core: Core,
    now: Now,
    /// A scheduled evaluation the last event asked for, not yet taken.
    asked: Option<Vec<String>>,
}

impl T {
    fn new(persisted: Persisted, watchdog: Option<Millis>) -> T {
        T::with_cap(persisted, watchdog, 60)
    }

    fn with_cap(persisted: Persisted, watchdog: Option<Millis>, cap: usize) -> T {
        let settings = Settings {
            max_changes_per_minute: cap,
            watchdog,
            machine: Machine {
                memory: 8 << 30,
                tasks: 4_194_304,
            },
        };
        let mut t = T {
            core: Core::new(settings, persisted, 1),
            now: Now {
                mono: 1_000_000,
                wall: 1_700_000_000_000,
            },
            asked: None,
        };
        let first = t.core.start(t.now);
        assert!(matches!(first[..], [Action::Connect, Action::ReadSources]));
        t
    }

    fn ev(&mut self, e: Event) -> Vec<Action> {
        let a = self.core.handle(e, self.now);
        self.asked = a.iter().find_map(|a| match a {
            Action::Evaluate(units, Origin::Schedule) => Some(units.clone()),
            _ => None,
        });
        a
    }

    fn at(&mut self, mono: Millis) {
        self.now.wall += mono - self.now.mono;
        self.now.mono = mono;
    }

    /// Definitions loaded, connected, the units active.
    fn boot(&mut self, specs: Vec<Spec>) {
        let names: Vec<String> = specs.iter().map(|s| s.unit.clone()).collect();
        let a = self.ev(Event::Sources(vec![], vec![]));
        assert!(a.iter().any(|a| matches!(a, Action::Load(_, 1))), "{a:?}");
        self.ev(Event::Loaded {
            generation: 1,
            specs,
            problems: vec![],
        });
        let a = self.ev(Event::Connected(Ok(Via::SystemBus)));
        assert!(
            a.iter()
                .any(|a| matches!(a, Action::Notify(Notice::Ready(_)))),
            "{a:?}"
        );
        for n in &names {
            assert!(a.iter().any(|a| matches!(a, Action::ReadInfo(u) if u == n)));
            let a = self.info(n, "active");
            // That was the read: no second one.
            assert!(!a.iter().any(|a| matches!(a, Action::ReadInfo(_))), "{a:?}");
        }
    }

    fn info(&mut self, unit: &str, state: &str) -> Vec<Action> {
        self.ev(Event::Info {
            unit: unit.into(),
            result: Ok(UnitInfo {
                active_state: state.into(),
                control_group: format!("/system.slice/{unit}"),
            }),
        })
    }

    /// Runs the clock to the next wake-up and ticks; returns the actions.
    fn tick(&mut self) -> Vec<Action> {
        let at = self.core.next_wake().expect("something is scheduled");
        if at > self.now.mono {
            self.at(at);
        }
        self.ev(Event::Tick)
    }

    /// Ticks until the core asks to evaluate; returns the batch.
    fn until_evaluate(&mut self) -> Vec<String> {
        // The last event may have asked already (a unit seen starting).
        if let Some(units) = self.asked.take() {
            return units;
        }
        for _ in 0..20 {
            for a in self.tick() {
                if let Action::Evaluate(units, Origin::Schedule) = a {
                    return units;
                }
            }
        }
        panic!("no evaluation was scheduled");
    }

    fn evaluated(
        &mut self,
        unit: &str,
        result: Result<Vec<(Prop, Desired)>, String>,
    ) -> Vec<Action> {
        self.evaluated_as(unit, result, false, false, Origin::Schedule)
    }

    fn evaluated_as(
        &mut self,
        unit: &str,
        result: Result<Vec<(Prop, Desired)>, String>,
        timed_out: bool,
        crashed: bool,
        origin: Origin,
    ) -> Vec<Action> {
        self.ev(Event::Evaluated(Evaluation {
            unit: unit.into(),
            generation: 1,
            result,
            took: Duration::from_micros(30),
            timed_out,
            crashed,
            logs: vec![],
            origin,
        }))
    }

    /// Answers a ReadLive among `actions` with `live`; returns what follows.
    fn live(&mut self, actions: &[Action], live: &[(Prop, u64)]) -> Vec<Action> {
        let (unit, ticket) = actions
            .iter()
            .find_map(|a| match a {
                Action::ReadLive { unit, ticket, .. } => Some((unit.clone(), *ticket)),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no ReadLive in {actions:?}"));
        self.ev(Event::Live {
            unit,
            result: Ok(live.iter().map(|(p, v)| (*p, Live::Num(*v))).collect()),
            ticket,
        })
    }

    /// One scheduled evaluation of `unit` asking for `memory_max = want`,
    /// with the live value `live` when it must be read; the actions that follow.
    fn round(&mut self, want: u64, live: Option<u64>) -> Vec<Action> {
        assert_eq!(self.until_evaluate(), vec![WEB.to_string()]);
        let a = self.evaluated(WEB, Ok(vec![(Prop::MemoryMax, Desired::Amount(want))]));
        match live {
            Some(l) => self.live(&a, &[(Prop::MemoryMax, l)]),
            None => a,
        }
    }

    fn verdict(&self) -> String {
        let st = self.core.status(Some(WEB), self.now);
        st.units[0]
            .last_eval
            .as_ref()
            .expect("an evaluation")
            .decisions
            .iter()
            .find(|d| d.prop == Prop::MemoryMax)
            .map(|d| d.verdict.clone())
            .unwrap_or_default()
    }
}

fn applied(actions: &[Action]) -> Option<Vec<Change>> {
    actions.iter().find_map(|a| match a {
        Action::Apply { changes, .. } => Some(changes.clone()),
        _ => None,
    })
}

fn applied_ok(t: &mut T, changes: Vec<Change>) -> Vec<Action> {
    let readback = changes
        .iter()
        .map(|c| (c.target.prop, c.target.value.clone()))
        .collect::<BTreeMap<_, _>>();
    t.ev(Event::Applied {
        unit: WEB.into(),
        changes,
        result: Ok(readback),
    })
}

fn logs(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Log(r) => Some(r.message.clone()),
            _ => None,
        })
        .collect()
}

mod health;
mod kernel;
mod pattern;
mod resources;

#[test]
fn while_disconnected_nothing_is_evaluated_and_reconnection_backs_off() {
    let mut t = T::new(Persisted::default(), None);
    t.boot(vec![spec(WEB, 10_000)]);
    let first = t.until_evaluate();
    t.ev(Event::BusLost("the connection closed".into()));
    // The evaluation out when the bus went away: nothing read, nothing set.
    assert_eq!(first, vec![WEB.to_string()]);
    let a = t.evaluated(WEB, Ok(vec![(Prop::MemoryMax, Desired::Amount(512 * MIB))]));
    assert!(
        !a.iter()
            .any(|a| matches!(a, Action::ReadLive { .. } | Action::Apply { .. })),
        "{a:?}"
    );
    let mut waits = Vec::new();
    for _ in 0..8 {
        // Other wake-ups (a STATUS= update) may come between the retries.
        let failed_at = t.now.mono;
        loop {
            let a = t.tick();
            assert!(
                !a.iter().any(|a| matches!(a, Action::Evaluate(..))),
                "{a:?}"
            );
            if a.iter().any(|a| matches!(a, Action::Connect)) {
                break;
            }
        }
        waits.push(t.now.mono - failed_at);
        t.ev(Event::Connected(Err("no bus".into())));
    }
    assert_eq!(waits, vec![100, 200, 400, 800, 1600, 3200, 5000, 5000]);
    // Back: every unit's state is read again and evaluation resumes.
    t.tick();
    let a = t.ev(Event::Connected(Ok(Via::Private)));
    assert!(a
        .iter()
        .any(|a| matches!(a, Action::ReadInfo(u) if u == WEB)));
    assert!(a
        .iter()
        .any(|a| matches!(a, Action::Watch(u) if u == &vec![WEB.to_string()])));
    assert_eq!(t.until_evaluate(), vec![WEB.to_string()]);
}

#[test]
fn eval_requests_decide_without_applying_and_status_answers_at_once() {
    let mut t = T::new(Persisted::default(), None);
    t.boot(vec![spec(WEB, 3_600_000)]);
    let a = t.ev(Event::Control(3, Request::Eval { unit: WEB.into() }));
    assert!(
        matches!(&a[..], [Action::Evaluate(u, Origin::Request(3))] if u == &vec![WEB.to_string()]),
        "{a:?}"
    );
    let a = t.evaluated_as(
        WEB,
        Ok(vec![(Prop::MemoryMax, Desired::Amount(512 * MIB))]),
        false,
        false,
        Origin::Request(3),
    );
    let a = t.live(&a, &[(Prop::MemoryMax, 1024 * MIB)]);
    assert!(applied(&a).is_none());
    let Some(Action::Reply(3, r)) = a.iter().find(|a| matches!(a, Action::Reply(..))) else {
        panic!("no reply: {a:?}");
    };
    let eval = r.eval.as_ref().unwrap();
    assert_eq!(eval.decisions[0].verdict, "apply");
    let a = t.ev(Event::Control(
        4,
        Request::Status {
            unit: Some("nope.service".into()),
        },
    ));
    assert!(matches!(&a[..], [Action::Reply(4, r)] if !r.ok));
    let a = t.ev(Event::Control(5, Request::Reload));
    assert!(a.iter().any(|a| matches!(a, Action::ReadSources)));
}

#[test]
fn with_nothing_due_the_core_does_not_ask_to_wake() {
    let mut t = T::new(Persisted::default(), None);
    t.boot(vec![]);
    assert_eq!(t.core.next_wake(), None);
    // With the watchdog on, it wakes only for the pings (WatchdogSec / 3).
    let mut t = T::new(Persisted::default(), Some(30_000));
    t.boot(vec![]);
    let start = t.now.mono;
    assert_eq!(t.core.next_wake(), Some(start + 10_000));
    let a = t.tick();
    assert!(a
        .iter()
        .any(|a| matches!(a, Action::Notify(Notice::Watchdog))));
    assert_eq!(t.core.next_wake(), Some(start + 20_000));
}

#[test]
fn terminate_saves_state_and_exits() {
    let mut t = T::new(Persisted::default(), None);
    t.boot(vec![spec(WEB, 10_000)]);
    let a = t.ev(Event::Terminate);
    assert!(matches!(a.first(), Some(Action::Notify(Notice::Stopping))));
    assert!(a.iter().any(|a| matches!(a, Action::Save(_))));
    assert!(matches!(a.last(), Some(Action::Exit)));
}

#[test]
fn a_state_that_could_not_be_read_is_read_again_with_a_growing_wait() {
    let mut t = T::new(Persisted::default(), None);
    t.ev(Event::Sources(vec![], vec![]));
    t.ev(Event::Loaded {
        generation: 1,
        specs: vec![spec(WEB, 60_000)],
        problems: vec![],
    });
    let a = t.ev(Event::Connected(Ok(Via::SystemBus)));
    assert!(a
        .iter()
        .any(|a| matches!(a, Action::ReadInfo(u) if u == WEB)));
    let refused = |t: &mut T| {
        t.ev(Event::Info {
            unit: WEB.into(),
            result: Err("org.freedesktop.DBus.Error.LimitsExceeded".into()),
        })
    };
    let said = |a: &[Action], text: &str| {
        a.iter()
            .any(|a| matches!(a, Action::Log(l) if l.message.contains(text)))
    };
    let start = t.now.mono;
    assert!(said(&refused(&mut t), "again in 1000 ms"));
    assert_eq!(t.core.next_wake(), Some(start + 1_000));
    let a = t.tick();
    assert!(a
        .iter()
        .any(|a| matches!(a, Action::ReadInfo(u) if u == WEB)));
    // Nothing more while that read is out.
    assert_eq!(t.core.next_wake(), None);
    assert!(said(&refused(&mut t), "again in 2000 ms"));
    assert_eq!(t.core.next_wake(), Some(start + 1_000 + 2_000));
    let a = t.tick();
    assert!(a
        .iter()
        .any(|a| matches!(a, Action::ReadInfo(u) if u == WEB)));
    // Answered: never again (the unit's evaluation is what is due now).
    t.info(WEB, "active");
    t.at(t.now.mono + 120_000);
    let a = t.ev(Event::Tick);
    assert!(!a.iter().any(|a| matches!(a, Action::ReadInfo(_))), "{a:?}");
}
