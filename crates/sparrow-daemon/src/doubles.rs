//! Recording doubles of every edge (tests): systemd, the evaluators, the
//! notifier, the state store and the clock. Each does the least that keeps
//! the loop honest (a property set is read back as set) and records what
//! it was asked, so tests assert on calls, not on log text.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use sparrow_host::runtime::UnitSnapshot;
use sparrow_policy::{cpus_of_mask, Desired, Live, Prop, Setting, SettingValue};
use tokio::sync::{mpsc, oneshot};

use crate::actuator::Msg;
use crate::clock::Clock;
use crate::core::{Event, Notice, Now, Origin};
use crate::eval::{Evaluation, Evaluator, SourceText};
use crate::notify::Notifier;
use crate::spec::Spec;
use crate::state::{Persisted, StateError, StateStore};
use crate::systemd::{Connector, Systemd, SystemdError, UnitInfo, Via};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A call made to [`FakeSystemd`].
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    /// A connection attempt (refused or not).
    Connect,
    /// `ActiveState` and `ControlGroup` read.
    Info(String),
    /// Properties read.
    Live(String, Vec<Prop>),
    /// Properties set.
    Set(String, Vec<Setting>),
    /// A restart asked for.
    Restart(String),
    /// A daemon-reload.
    Reload,
}

/// One unit as the fake systemd has it.
#[derive(Debug, Clone, Default)]
pub struct FakeUnit {
    /// `ActiveState`.
    pub active_state: String,
    /// Its properties.
    pub props: BTreeMap<Prop, Live>,
}

#[derive(Default)]
struct Fake {
    units: BTreeMap<String, FakeUnit>,
    calls: Vec<Call>,
    /// Connection attempts still to refuse.
    refuse: usize,
    /// When each attempt was made (tokio's clock, so paused time works).
    connects: Vec<tokio::time::Instant>,
    lose: Option<oneshot::Sender<()>>,
    signals: Option<mpsc::Sender<Event>>,
}

/// systemd, in memory: a connector and its connection in one.
#[derive(Clone, Default)]
pub struct FakeSystemd(Arc<Mutex<Fake>>);

impl FakeSystemd {
    /// Adds (or replaces) a unit.
    pub fn unit(&self, name: &str, active_state: &str, props: &[(Prop, Live)]) {
        lock(&self.0).units.insert(
            name.into(),
            FakeUnit {
                active_state: active_state.into(),
                props: props.iter().cloned().collect(),
            },
        );
    }

    /// Refuses the next `n` connection attempts.
    pub fn refuse(&self, n: usize) {
        lock(&self.0).refuse = n;
    }

    /// Ends the current connection (as if systemd went away).
    pub fn lose_connection(&self) {
        if let Some(tx) = lock(&self.0).lose.take() {
            let _ = tx.send(());
        }
    }

    /// Changes a unit's state and signals it, as systemd does.
    pub async fn set_state(&self, unit: &str, state: &str) {
        let tx = {
            let mut f = lock(&self.0);
            if let Some(u) = f.units.get_mut(unit) {
                u.active_state = state.into();
            }
            f.signals.clone()
        };
        if let Some(tx) = tx {
            let _ = tx
                .send(Event::UnitChanged {
                    unit: unit.into(),
                    active_state: state.into(),
                })
                .await;
        }
    }

    /// What was asked, in order.
    pub fn calls(&self) -> Vec<Call> {
        lock(&self.0).calls.clone()
    }

    /// When connection attempts were made.
    pub fn connects(&self) -> Vec<tokio::time::Instant> {
        lock(&self.0).connects.clone()
    }

    /// A property's value now.
    pub fn prop(&self, unit: &str, prop: Prop) -> Option<Live> {
        lock(&self.0).units.get(unit)?.props.get(&prop).cloned()
    }
}

fn no_unit(unit: &str) -> SystemdError {
    SystemdError::Call(format!("Unit {unit} not loaded."))
}

impl Systemd for FakeSystemd {
    async fn set(&self, unit: &str, settings: Vec<Setting>) -> Result<(), SystemdError> {
        let mut f = lock(&self.0);
        f.calls.push(Call::Set(unit.into(), settings.clone()));
        let u = f.units.get_mut(unit).ok_or_else(|| no_unit(unit))?;
        for s in settings {
            // Only absolute settings: a `*Scale` one has no property of its name.
            let Some(prop) = Prop::ALL.into_iter().find(|p| p.dbus_name() == s.name) else {
                continue;
            };
            let v = match s.value {
                SettingValue::U64(n) => Live::Num(n),
                SettingValue::U32(n) => Live::Num(n.into()),
                SettingValue::Bytes(b) => Live::Cpus(cpus_of_mask(&b)),
            };
            u.props.insert(prop, v);
        }
        Ok(())
    }

    async fn live(
        &self,
        unit: &str,
        props: Vec<Prop>,
    ) -> Result<BTreeMap<Prop, Live>, SystemdError> {
        let mut f = lock(&self.0);
        f.calls.push(Call::Live(unit.into(), props.clone()));
        let u = f.units.get(unit).ok_or_else(|| no_unit(unit))?;
        props
            .into_iter()
            .map(|p| {
                let v = u.props.get(&p).cloned().ok_or(SystemdError::Property {
                    property: p.dbus_name().into(),
                    reason: "not set".into(),
                })?;
                Ok((p, v))
            })
            .collect()
    }

    async fn restart(&self, unit: &str) -> Result<(), SystemdError> {
        let mut f = lock(&self.0);
        f.calls.push(Call::Restart(unit.into()));
        f.units.get(unit).map(|_| ()).ok_or_else(|| no_unit(unit))
    }

    async fn reload(&self) -> Result<(), SystemdError> {
        lock(&self.0).calls.push(Call::Reload);
        Ok(())
    }

    async fn info(&self, unit: &str) -> Result<UnitInfo, SystemdError> {
        let mut f = lock(&self.0);
        f.calls.push(Call::Info(unit.into()));
        let u = f.units.get(unit).ok_or_else(|| no_unit(unit))?;
        Ok(UnitInfo {
            active_state: u.active_state.clone(),
            control_group: format!("/system.slice/{unit}"),
        })
    }
}

impl Connector for FakeSystemd {
    type Conn = FakeSystemd;

    async fn connect(&self) -> Result<(FakeSystemd, Via), SystemdError> {
        let mut f = lock(&self.0);
        f.calls.push(Call::Connect);
        f.connects.push(tokio::time::Instant::now());
        if f.refuse > 0 {
            f.refuse -= 1;
            return Err(SystemdError::Connect {
                bus: "refused".into(),
                private: "refused".into(),
            });
        }
        Ok((self.clone(), Via::Private))
    }

    async fn watch(
        &self,
        _conn: FakeSystemd,
        _watched: Arc<RwLock<HashSet<String>>>,
        tx: mpsc::Sender<Event>,
    ) -> String {
        let (lose, lost) = oneshot::channel();
        {
            let mut f = lock(&self.0);
            f.lose = Some(lose);
            f.signals = Some(tx);
        }
        let _ = lost.await;
        lock(&self.0).signals = None;
        "the connection closed".into()
    }
}

/// What a [`ScriptedEvaluator`] answers for a unit's n-th evaluation.
pub type Script = Arc<dyn Fn(&str, usize) -> Result<Vec<(Prop, Desired)>, String> + Send + Sync>;

/// The evaluators, scripted: a load yields the given specs, an evaluation
/// the script's answer; both come back on the loop's channel like the
/// pool's reports do.
pub struct ScriptedEvaluator<C> {
    specs: Vec<Spec>,
    script: Script,
    tx: mpsc::Sender<Msg<C>>,
    /// Units submitted, batch by batch.
    pub submitted: Arc<Mutex<Vec<Vec<String>>>>,
    counts: Mutex<HashMap<String, usize>>,
}

impl<C: Send + 'static> ScriptedEvaluator<C> {
    /// An evaluator for these specs that answers with `script`.
    pub fn new(specs: Vec<Spec>, script: Script, tx: mpsc::Sender<Msg<C>>) -> Self {
        ScriptedEvaluator {
            specs,
            script,
            tx,
            submitted: Arc::default(),
            counts: Mutex::default(),
        }
    }

    fn send(&self, ev: Event) {
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let _ = tx.send(Msg::Event(ev)).await;
        });
    }
}

impl<C: Send + Sync + 'static> Evaluator for ScriptedEvaluator<C> {
    fn load(&self, _sources: Arc<Vec<SourceText>>, generation: u64) {
        self.send(Event::Loaded {
            generation,
            specs: self.specs.clone(),
            problems: vec![],
        });
    }

    fn units(&self, _units: Arc<HashMap<String, UnitSnapshot>>) {}

    fn submit(&self, units: Vec<String>, origin: Origin) -> Vec<String> {
        lock(&self.submitted).push(units.clone());
        let mut batch = Vec::new();
        for unit in units {
            let n = {
                let mut c = lock(&self.counts);
                let n = c.entry(unit.clone()).or_default();
                *n += 1;
                *n
            };
            let result = (self.script)(&unit, n);
            batch.push(Event::Evaluated(Evaluation {
                unit,
                generation: 1,
                result,
                took: std::time::Duration::from_micros(50),
                timed_out: false,
                crashed: false,
                logs: vec![],
                origin,
            }));
        }
        // One message for the batch, as the pool sends it.
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let _ = tx.send(Msg::Events(batch)).await;
        });
        Vec::new()
    }

    fn call(
        &self,
        call: crate::eval::Call,
        _limit: std::time::Duration,
    ) -> Option<crate::eval::Call> {
        // Health closures are exercised against real evaluators (eval tests, the lab).
        Some(call)
    }
}

/// Keeps notices.
#[derive(Debug, Default, Clone)]
pub struct RecordingNotifier(pub Arc<Mutex<Vec<Notice>>>);

impl RecordingNotifier {
    /// What was sent, in order.
    pub fn notices(&self) -> Vec<Notice> {
        lock(&self.0).clone()
    }
}

impl Notifier for RecordingNotifier {
    fn notify(&self, notice: &Notice) {
        lock(&self.0).push(notice.clone());
    }
}

/// Keeps the state in memory, and counts saves.
#[derive(Debug, Default, Clone)]
pub struct MemoryStore(pub Arc<Mutex<(Option<Persisted>, usize)>>);

impl MemoryStore {
    /// What was saved last, and how many saves there were.
    pub fn saved(&self) -> (Option<Persisted>, usize) {
        lock(&self.0).clone()
    }
}

impl StateStore for MemoryStore {
    fn load(&self) -> (Persisted, Option<String>) {
        (lock(&self.0).0.clone().unwrap_or_default(), None)
    }
    fn save(&self, state: &Persisted) -> Result<(), StateError> {
        let mut s = lock(&self.0);
        s.0 = Some(state.clone());
        s.1 += 1;
        Ok(())
    }
}

/// Time from tokio's clock (which tests may pause and run ahead), from a
/// fixed start: monotonic and wall move together.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    start: tokio::time::Instant,
    at: Now,
}

impl TokioClock {
    /// A clock that reads `at` now.
    pub fn new(at: Now) -> TokioClock {
        TokioClock {
            start: tokio::time::Instant::now(),
            at,
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> Now {
        let ms = self.start.elapsed().as_millis() as u64;
        Now {
            mono: self.at.mono + ms,
            wall: self.at.wall + ms,
        }
    }
}
