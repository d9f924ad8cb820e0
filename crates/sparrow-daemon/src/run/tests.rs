//! The loop with every edge a recording double: the core's actions become
//! calls on a fake systemd, evaluator jobs, saves and notices, and their
//! results come back as events, as in the daemon. Paused tokio time runs
//! minutes of schedule at once; no root, no bus.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sparrow_policy::{Desired, Live, Machine, Prop, Setting, SettingValue, Threshold};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::*;
use crate::core::{Notice, Now};
use crate::doubles::{
    Call, FakeSystemd, MemoryStore, RecordingNotifier, Script, ScriptedEvaluator, TokioClock,
};
use crate::spec::{ResourcesSpec, Spec};
use crate::state::Persisted;

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
            max_changes_per_minute: 6,
            thresholds: [(Prop::MemoryMax, Threshold::Abs(100 * MIB))].into(),
            closure: true,
            dynamic: vec![],
        }),
        health: None,
        kernel: None,
        pattern: None,
    }
}

struct Daemon {
    systemd: FakeSystemd,
    notifier: RecordingNotifier,
    store: MemoryStore,
    submitted: Arc<Mutex<Vec<Vec<String>>>>,
    tx: mpsc::Sender<Msg<FakeSystemd>>,
    task: JoinHandle<()>,
}

impl Daemon {
    fn start(systemd: FakeSystemd, specs: Vec<Spec>, script: Script) -> Daemon {
        let (tx, mut rx) = mpsc::channel(256);
        let evaluator = ScriptedEvaluator::new(specs, script, tx.clone());
        let submitted = evaluator.submitted.clone();
        let (notifier, store) = (RecordingNotifier::default(), MemoryStore::default());
        let reader: ReadSources = Arc::new(|| (vec![], vec![]));
        let mut actuator = Actuator::new(
            systemd.clone(),
            evaluator,
            notifier.clone(),
            store.clone(),
            reader,
            tx.clone(),
        );
        let clock = TokioClock::new(Now {
            mono: 5_000_000,
            wall: 1_700_000_000_000,
        });
        let mut core = Core::new(
            Settings {
                max_changes_per_minute: 60,
                watchdog: None,
                machine: Machine {
                    memory: 8 << 30,
                    tasks: 4_194_304,
                },
            },
            Persisted::default(),
            1,
        );
        let task = tokio::spawn(async move {
            drive(&mut core, &mut actuator, &mut rx, &clock).await;
        });
        Daemon {
            systemd,
            notifier,
            store,
            submitted,
            tx,
            task,
        }
    }

    fn evaluations(&self) -> usize {
        self.submitted.lock().unwrap().iter().map(Vec::len).sum()
    }

    fn count(&self, f: impl Fn(&Call) -> bool) -> usize {
        self.systemd.calls().iter().filter(|c| f(c)).count()
    }

    async fn stop(self) -> (FakeSystemd, RecordingNotifier, MemoryStore) {
        self.tx.send(Msg::Event(Event::Terminate)).await.unwrap();
        self.task.await.unwrap();
        (self.systemd, self.notifier, self.store)
    }
}

fn wants(bytes: u64) -> Script {
    Arc::new(move |_, _| Ok(vec![(Prop::MemoryMax, Desired::Amount(bytes))]))
}

#[tokio::test(start_paused = true)]
async fn a_closures_value_goes_through_systemd_once_and_is_remembered() {
    let systemd = FakeSystemd::default();
    systemd.unit(WEB, "active", &[(Prop::MemoryMax, Live::Num(1024 * MIB))]);
    let d = Daemon::start(systemd, vec![spec(WEB, 10_000)], wants(512 * MIB));
    tokio::time::sleep(Duration::from_secs(65)).await;
    assert_eq!(
        d.systemd.prop(WEB, Prop::MemoryMax),
        Some(Live::Num(512 * MIB))
    );
    let set = Call::Set(
        WEB.into(),
        vec![Setting {
            name: "MemoryMax",
            value: SettingValue::U64(512 * MIB),
        }],
    );
    // Evaluated at start and every 10 s; set once, then "same".
    assert!((7..=8).contains(&d.evaluations()), "{}", d.evaluations());
    assert_eq!(d.count(|c| *c == set), 1, "{:?}", d.systemd.calls());
    // The live value was read once before deciding and once after setting.
    assert_eq!(d.count(|c| matches!(c, Call::Live(..))), 2);
    let (_, notifier, store) = d.stop().await;
    let notices = notifier.notices();
    assert!(
        matches!(notices.first(), Some(Notice::Ready(s)) if s.starts_with("managing 1 units")),
        "{notices:?}"
    );
    assert_eq!(notices.last(), Some(&Notice::Stopping));
    let (saved, saves) = store.saved();
    let history = &saved.expect("state saved").units[WEB][&Prop::MemoryMax];
    assert_eq!(history.last_value, Some(Live::Num(512 * MIB)));
    // Once for the change, once when stopping.
    assert_eq!(saves, 2);
}

#[tokio::test(start_paused = true)]
async fn the_loop_backs_off_while_systemd_is_away_and_reads_units_again_after() {
    let systemd = FakeSystemd::default();
    systemd.unit(WEB, "active", &[(Prop::MemoryMax, Live::Num(512 * MIB))]);
    systemd.refuse(3);
    let d = Daemon::start(systemd, vec![spec(WEB, 3_600_000)], wants(512 * MIB));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let at = d.systemd.connects();
    let gaps: Vec<u128> = at.windows(2).map(|w| (w[1] - w[0]).as_millis()).collect();
    assert_eq!(gaps, vec![100, 200, 400]);
    assert_eq!(d.count(|c| *c == Call::Info(WEB.into())), 1);
    assert_eq!(d.evaluations(), 1, "evaluated once it was seen running");

    // systemd goes away and comes back: reconnected, states read again.
    d.systemd.lose_connection();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(d.systemd.connects().len(), 5);
    assert_eq!(d.count(|c| *c == Call::Info(WEB.into())), 2);

    // A restart (inactive, then active): evaluated at once, an hour early.
    d.systemd.set_state(WEB, "inactive").await;
    d.systemd.set_state(WEB, "active").await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(d.evaluations(), 2);
    assert_eq!(d.count(|c| *c == Call::Info(WEB.into())), 3);
    d.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_failing_closure_changes_nothing_and_the_loop_carries_on() {
    let systemd = FakeSystemd::default();
    systemd.unit(WEB, "active", &[(Prop::MemoryMax, Live::Num(1024 * MIB))]);
    let script: Script = Arc::new(|_, n| {
        if n % 2 == 1 {
            Err("web.sparrow:3:5: memory_max: \"lots\" is not a size".into())
        } else {
            Ok(vec![(Prop::MemoryMax, Desired::Amount(2048 * MIB))])
        }
    });
    let d = Daemon::start(systemd, vec![spec(WEB, 10_000)], script);
    tokio::time::sleep(Duration::from_secs(25)).await;
    assert_eq!(d.evaluations(), 3);
    assert_eq!(
        d.systemd.prop(WEB, Prop::MemoryMax),
        Some(Live::Num(2048 * MIB))
    );
    let (systemd, notifier, _) = d.stop().await;
    assert_eq!(
        systemd
            .calls()
            .iter()
            .filter(|c| matches!(c, Call::Set(..)))
            .count(),
        1
    );
    assert!(notifier
        .notices()
        .iter()
        .any(|n| matches!(n, Notice::Status(s) if s.contains("1 evaluation errors"))));
}
