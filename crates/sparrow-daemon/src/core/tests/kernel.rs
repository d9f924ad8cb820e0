//! The kernel feature through the core: watches armed exactly while the
//! unit is active (again on each start, a new cgroup), signals of an older
//! arming ignored, responses one at a time and at most one a second with
//! the signals in between folded in, memory counter deltas, a lost watch
//! armed again, and what a response returns applied as resources are.

use sparrow_policy::kernel::{Pressure, PressureLine, Resource, TriggerSpec};

use super::*;
use crate::core::kernel::{Armed, Readings, Signal, MIN_GAP_MS};
use crate::spec::KernelSpec;

const API: &str = "api.service";

fn kernel_spec(system: bool, memory_events: bool) -> Spec {
    Spec {
        unit: API.into(),
        source: PathBuf::from("/etc/systemd/sparrow/api.sparrow"),
        line: 1,
        features: vec!["kernel_monitoring".into(), "pressure_response".into()],
        resources: Some(ResourcesSpec {
            interval_ms: 60_000,
            min_dwell_ms: 0,
            max_changes_per_minute: 6,
            thresholds: BTreeMap::new(),
            closure: false,
            dynamic: vec![],
        }),
        health: None,
        kernel: Some(KernelSpec {
            triggers: vec![TriggerSpec {
                resource: Resource::Cpu,
                full: false,
                threshold_us: 150_000,
                window_us: 2_000_000,
            }],
            system,
            memory_events,
            response: true,
            strategy: false,
        }),
        pattern: None,
    }
}

fn arms(actions: &[Action]) -> Vec<crate::core::kernel::Arm> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Arm(arm) => Some((**arm).clone()),
            _ => None,
        })
        .collect()
}

fn responses(actions: &[Action]) -> Vec<serde_json::Value> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Respond { event, .. } => Some(event.clone()),
            _ => None,
        })
        .collect()
}

fn cpu_readings(avg10: f64) -> Readings {
    let line = PressureLine {
        avg10,
        avg60: 1.5,
        avg300: 0.5,
        total: 4_000_000,
    };
    Readings {
        psi: [(
            Resource::Cpu,
            Pressure {
                some: line,
                full: Some(line),
            },
        )]
        .into(),
        memory_current: Some(64 << 20),
        memory_max: Some(256 << 20),
        woke_us: 77,
    }
}

impl T {
    fn fire(&mut self, seq: u64, signal: Signal) -> Vec<Action> {
        self.ev(Event::Signal {
            unit: API.into(),
            seq,
            signal,
            readings: cpu_readings(42.0),
        })
    }

    fn status_of(&self, unit: &str) -> crate::control::UnitStatus {
        self.core.status(Some(unit), self.now).units[0].clone()
    }

    fn state(&mut self, state: &str) -> Vec<Action> {
        self.ev(Event::UnitChanged {
            unit: API.into(),
            active_state: state.into(),
        })
    }

    /// Boots with `spec` and returns the first arming (it comes with the
    /// read that says the unit is active, and its cgroup).
    fn boot_armed(&mut self, spec: Spec) -> crate::core::kernel::Arm {
        let a = self.ev(Event::Sources(vec![], vec![]));
        assert!(a.iter().any(|a| matches!(a, Action::Load(_, 1))));
        self.ev(Event::Loaded {
            generation: 1,
            specs: vec![spec],
            problems: vec![],
        });
        self.ev(Event::Connected(Ok(Via::SystemBus)));
        let a = self.info(API, "active");
        let arm = arms(&a);
        assert_eq!(arm.len(), 1, "{a:?}");
        arm[0].clone()
    }
}

#[test]
fn watches_live_exactly_while_the_unit_is_active_and_each_start_arms_anew() {
    let mut t = T::new(Persisted::default(), None);
    let arm = t.boot_armed(kernel_spec(false, true));
    assert_eq!(arm.cgroup.as_deref(), Some("/system.slice/api.service"));
    assert!(arm.memory_events);
    assert_eq!(arm.triggers.len(), 1);
    // Stopping drops them.
    let a = t.state("deactivating");
    assert!(
        a.iter().any(|a| matches!(a, Action::Disarm(u) if u == API)),
        "{a:?}"
    );
    // A signal of the old cgroup, arriving late, is ignored.
    assert!(responses(&t.fire(arm.seq, Signal::Pressure(Resource::Cpu))).is_empty());
    // Started again: armed again, a new sequence number.
    let again = arms(&t.state("active"));
    assert_eq!(again.len(), 1);
    assert!(again[0].seq > arm.seq);
    assert!(responses(&t.fire(arm.seq, Signal::Pressure(Resource::Cpu))).is_empty());
    let a = t.fire(again[0].seq, Signal::Pressure(Resource::Cpu));
    // The wake-up travels with the call (for the reaction time).
    assert!(
        a.iter().any(|a| matches!(
            a,
            Action::Respond {
                woke_us: Some(77),
                ..
            }
        )),
        "{a:?}"
    );
    let r = responses(&a);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0]["type"], "cpu-pressure");
    assert_eq!(r[0]["unit"], API);
    assert_eq!(r[0]["scope"], "service");
    assert_eq!(r[0]["psi"]["cpu"]["avg10"], 42.0);
    assert_eq!(r[0]["psi"]["cpu"]["full"]["avg60"], 1.5);
    assert_eq!(r[0]["memory"]["limit"], 256 << 20);
    // A status line per watch, armed once the actuator says so.
    t.ev(Event::Armed {
        unit: API.into(),
        seq: again[0].seq,
        results: vec![
            Armed {
                file: "/sys/fs/cgroup/system.slice/api.service/cpu.pressure".into(),
                result: Ok(Some("window rounded".into())),
            },
            Armed {
                file: "/sys/fs/cgroup/system.slice/api.service/memory.events".into(),
                result: Err("no memory controller".into()),
            },
        ],
    });
    let st = t.status_of(API);
    let k = st.kernel.expect("kernel status");
    assert_eq!(k.watches[0].what, "cpu some 150 ms / 2 s");
    assert_eq!(k.watches[0].state, "armed");
    assert_eq!(k.watches[0].fired, 1);
    assert_eq!(k.watches[0].note.as_deref(), Some("window rounded"));
    assert_eq!(k.watches[1].state, "unavailable: no memory controller");
    assert_eq!(k.responses, 1);
}

#[test]
fn one_response_at_a_time_at_most_one_a_second_signals_between_folded_in() {
    let mut t = T::new(Persisted::default(), None);
    let arm = t.boot_armed(kernel_spec(false, false));
    let start = t.now.mono;
    assert_eq!(
        responses(&t.fire(arm.seq, Signal::Pressure(Resource::Cpu))).len(),
        1
    );
    // While it runs: kept, not called.
    t.at(start + 100);
    assert!(responses(&t.fire(arm.seq, Signal::Pressure(Resource::Cpu))).is_empty());
    t.at(start + 200);
    assert!(responses(&t.fire(arm.seq, Signal::Pressure(Resource::Cpu))).is_empty());
    t.at(start + 300);
    let a = t.ev(Event::Responded {
        unit: API.into(),
        result: Ok(0),
        logs: vec![],
    });
    assert!(responses(&a).is_empty(), "not before the gap");
    assert_eq!(t.core.next_wake(), Some(start + MIN_GAP_MS));
    let a = t.tick();
    assert_eq!(t.now.mono, start + MIN_GAP_MS);
    assert_eq!(responses(&a).len(), 1, "the folded signals, once");
    let k = t.status_of(API).kernel.unwrap();
    assert_eq!((k.responses, k.coalesced), (2, 1));
    assert_eq!(k.last_response.unwrap().outcome, "running");
    // A failure is counted and shown.
    t.ev(Event::Responded {
        unit: API.into(),
        result: Err("api.sparrow:9:5: boom".into()),
        logs: vec!["tried".into()],
    });
    let k = t.status_of(API).kernel.unwrap();
    assert_eq!(k.errors, 1);
    assert_eq!(k.last_response.unwrap().outcome, "api.sparrow:9:5: boom");
}

#[test]
fn memory_events_respond_to_counters_that_rose() {
    let mut t = T::new(Persisted::default(), None);
    let arm = t.boot_armed(kernel_spec(false, true));
    let counters = |high: u64, oom_kill: u64| {
        Signal::Memory(
            [
                ("high".to_string(), high),
                ("max".to_string(), 0),
                ("oom".to_string(), oom_kill),
                ("oom_kill".to_string(), oom_kill),
            ]
            .into(),
        )
    };
    // The baseline reading: nothing happened.
    assert!(responses(&t.fire(arm.seq, counters(3, 0))).is_empty());
    let r = responses(&t.fire(arm.seq, counters(5, 0)));
    assert_eq!(r.len(), 1);
    assert_eq!(
        (r[0]["type"].as_str(), r[0]["count"].as_u64()),
        (Some("memory-high"), Some(2))
    );
    let k = t.status_of(API).kernel.unwrap();
    assert_eq!(k.watches[1].what, "memory.events");
    assert_eq!(k.watches[1].fired, 1);
}

#[test]
fn system_triggers_need_no_cgroup_and_a_lost_watch_is_armed_again() {
    let mut t = T::new(Persisted::default(), None);
    let arm = t.boot_armed(kernel_spec(true, true));
    assert_eq!(arm.cgroup, None);
    assert!(!arm.memory_events, "memory.events is a cgroup's");
    let lost_at = t.now.mono;
    let a = t.fire(arm.seq, Signal::Lost("its cgroup is gone".into()));
    assert!(arms(&a).is_empty(), "not at once");
    assert_eq!(t.core.next_wake(), Some(lost_at + 1_000));
    let again = arms(&t.tick());
    assert_eq!(again.len(), 1);
    assert!(again[0].seq > arm.seq);
}

#[test]
fn what_a_response_returns_is_decided_and_applied_as_resources_are() {
    let mut t = T::new(Persisted::default(), None);
    t.boot_armed(kernel_spec(false, false));
    // No resources closure: nothing is evaluated on an interval.
    assert!(t.core.next_wake().is_none());
    let a = t.evaluated_as(
        API,
        Ok(vec![(Prop::CpuWeight, Desired::Amount(50))]),
        false,
        false,
        Origin::Kernel(Some(5)),
    );
    let a = t.live(&a, &[(Prop::CpuWeight, 100)]);
    let applied = a.iter().find_map(|a| match a {
        Action::Apply {
            unit,
            changes,
            woke_us,
        } => Some((unit.clone(), changes.clone(), *woke_us)),
        _ => None,
    });
    let (unit, changes, woke_us) = applied.unwrap_or_else(|| panic!("no Apply in {a:?}"));
    assert_eq!(unit, API);
    // The kernel's wake-up travels with it: the reaction time is logged.
    assert_eq!(woke_us, Some(5));
    assert_eq!(changes[0].target.prop, Prop::CpuWeight);
    // `eval` says there is nothing to evaluate on demand.
    let a = t.ev(Event::Control(9, Request::Eval { unit: API.into() }));
    assert!(
        a.iter().any(|a| matches!(a, Action::Reply(9, r) if !r.ok)),
        "{a:?}"
    );
}
