//! The actuator: the one place actions become I/O. D-Bus calls, reading
//! definitions and connecting run in spawned tasks whose results come back
//! as events on the loop's channel; the journal, the notifier, the state
//! store and the evaluators are called directly (none of them waits). A
//! refusal that is known at once (every evaluator busy) is returned as an
//! event to handle next.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use tokio::sync::{mpsc, oneshot};
use tracing::{error, info, warn};

use crate::alert::Deliverer;
use crate::config::HealthConfig;
use crate::control::Response;
use crate::core::outcome;
use crate::core::{Action, Event, Level, LogRecord};
use crate::eval::{Call, Evaluator, SourceText};
use crate::notify::Notifier;
use crate::probe::Prober;
use crate::spec::ProbeSpec;
use crate::state::StateStore;
use crate::systemd::{Connector, Systemd, SystemdError, Via};

/// Wall-clock limit of a `check` closure, whatever its `timeout` says.
const CHECK_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);
/// Wall-clock limit of an `on_failure` closure (it may run tasks).
const ON_FAILURE_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);
/// D-Bus calls in flight at once. The system bus refuses a connection more
/// pending replies than its limit (128 by default): a restarted daemon
/// reading the state of 500 units at once got `LimitsExceeded` for most.
const BUS_CALLS: usize = 32;
/// Wall-clock limit of a kernel response (`pressure_response` and the
/// strategy together; they may run tasks).
const KERNEL_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

/// What the run loop receives: events for the core, and what only the
/// actuator needs (a new connection, a control client's answer channel).
pub enum Msg<C> {
    /// An event for the core.
    Event(Event),
    /// Events that came together (a batch of evaluations): handled in one
    /// turn of the loop.
    Events(Vec<Event>),
    /// A connection attempt ended.
    Connected(Result<(C, Via), SystemdError>),
    /// A control request, with where its answer goes.
    Control(crate::control::Request, oneshot::Sender<Response>),
}

/// Reads the definitions (blocking: it runs on a blocking thread).
pub type ReadSources = Arc<dyn Fn() -> (Vec<SourceText>, Vec<String>) + Send + Sync>;

/// Performs actions with real (or recording) edges.
pub struct Actuator<C: Connector, E, N, S> {
    connector: Arc<C>,
    evaluator: E,
    notifier: N,
    store: S,
    read_sources: ReadSources,
    conn: Option<C::Conn>,
    watched: Arc<RwLock<HashSet<String>>>,
    tx: mpsc::Sender<Msg<C::Conn>>,
    replies: HashMap<u64, oneshot::Sender<Response>>,
    next_request: u64,
    prober: Arc<Prober>,
    alerts: Arc<Deliverer>,
    watcher: Option<crate::watch::Watcher>,
    /// Permits for D-Bus calls ([`BUS_CALLS`]).
    bus: Arc<tokio::sync::Semaphore>,
    /// When the last kernel response of a unit was handed to an evaluator
    /// (monotonic µs): the reaction log line splits the time there.
    responded: HashMap<String, u64>,
}

impl<C: Connector, E: Evaluator, N: Notifier, S: StateStore> Actuator<C, E, N, S> {
    /// An actuator whose spawned work reports to `tx`.
    pub fn new(
        connector: C,
        evaluator: E,
        notifier: N,
        store: S,
        read_sources: ReadSources,
        tx: mpsc::Sender<Msg<C::Conn>>,
    ) -> Self {
        Actuator {
            connector: Arc::new(connector),
            evaluator,
            notifier,
            store,
            read_sources,
            conn: None,
            watched: Arc::default(),
            tx,
            replies: HashMap::new(),
            next_request: 0,
            prober: Arc::new(Prober::new(&HealthConfig::default())),
            alerts: Arc::new(Deliverer::empty()),
            watcher: None,
            bus: Arc::new(tokio::sync::Semaphore::new(BUS_CALLS)),
            responded: HashMap::new(),
        }
    }

    /// Uses these probe bounds and alert channels (daemon.toml).
    pub fn with_health(mut self, prober: Prober, alerts: Deliverer) -> Self {
        self.prober = Arc::new(prober);
        self.alerts = Arc::new(alerts);
        self
    }

    /// Keeps a control client's answer channel; the id to give the core.
    pub fn request(&mut self, reply: oneshot::Sender<Response>) -> u64 {
        self.next_request += 1;
        self.replies.insert(self.next_request, reply);
        self.next_request
    }

    /// A connection attempt ended: keep the connection and watch it.
    pub fn connected(&mut self, result: Result<(C::Conn, Via), SystemdError>) -> Event {
        match result {
            Ok((conn, via)) => {
                let (connector, watched, tx) = (
                    self.connector.clone(),
                    self.watched.clone(),
                    self.tx.clone(),
                );
                let c = conn.clone();
                tokio::spawn(async move {
                    let (etx, mut erx) = mpsc::channel(256);
                    let forward = {
                        let tx = tx.clone();
                        async move {
                            while let Some(ev) = erx.recv().await {
                                if tx.send(Msg::Event(ev)).await.is_err() {
                                    break;
                                }
                            }
                        }
                    };
                    let why = tokio::select! {
                        why = connector.watch(c, watched, etx) => why,
                        () = forward => "the daemon is stopping".to_string(),
                    };
                    let _ = tx.send(Msg::Event(Event::BusLost(why))).await;
                });
                self.conn = Some(conn);
                Event::Connected(Ok(via))
            }
            Err(e) => Event::Connected(Err(e.to_string())),
        }
    }

    /// The kernel watches, started on first use: their signals reach the
    /// loop through a forwarding task.
    fn watcher(&mut self) -> &mut crate::watch::Watcher {
        let tx = self.tx.clone();
        self.watcher.get_or_insert_with(|| {
            let (wtx, mut wrx) = mpsc::channel(1024);
            tokio::spawn(async move {
                while let Some(ev) = wrx.recv().await {
                    if tx.send(Msg::Event(ev)).await.is_err() {
                        break;
                    }
                }
            });
            crate::watch::Watcher::new(wtx)
        })
    }

    /// Hands a closure call to an evaluator; when every one is busy, the
    /// event that says so (handled next).
    fn call(&self, call: Call, limit: std::time::Duration) -> Option<Event> {
        let left = self.evaluator.call(call, limit);
        left.map(|c| c.refused("every evaluator is busy"))
    }

    fn spawn(&self, work: impl std::future::Future<Output = Event> + Send + 'static) {
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let _ = tx.send(Msg::Event(work.await)).await;
        });
    }

    /// Performs one action; returns an event to handle at once, if any.
    pub fn perform(&mut self, action: Action) -> Option<Event> {
        match action {
            Action::Connect => {
                self.conn = None;
                let (connector, tx) = (self.connector.clone(), self.tx.clone());
                tokio::spawn(async move {
                    let r = connector.connect().await;
                    let _ = tx.send(Msg::Connected(r)).await;
                });
            }
            Action::ReadSources => {
                let (read, tx) = (self.read_sources.clone(), self.tx.clone());
                tokio::task::spawn_blocking(move || {
                    let (texts, problems) = read();
                    let _ = tx.blocking_send(Msg::Event(Event::Sources(texts, problems)));
                });
            }
            Action::Load(sources, generation) => self.evaluator.load(sources, generation),
            Action::Evaluate(units, origin) => {
                let left = self.evaluator.submit(units, origin);
                if !left.is_empty() {
                    return Some(Event::Rejected(left, origin));
                }
            }
            Action::ShareUnits(units) => self.evaluator.units(units),
            Action::Watch(units) => {
                if let Ok(mut w) = self.watched.write() {
                    *w = units.into_iter().collect();
                }
            }
            Action::ReadInfo(unit) => {
                let conn = self.conn.clone()?;
                let bus = self.bus.clone();
                self.spawn(async move {
                    let _permit = bus.acquire().await;
                    let result = conn.info(&unit).await.map_err(|e| e.to_string());
                    Event::Info { unit, result }
                });
            }
            Action::ReadLive {
                unit,
                props,
                ticket,
            } => {
                let Some(conn) = self.conn.clone() else {
                    return Some(Event::Live {
                        unit,
                        result: Err("not connected to systemd".into()),
                        ticket,
                    });
                };
                let bus = self.bus.clone();
                self.spawn(async move {
                    let _permit = bus.acquire().await;
                    let result = conn.live(&unit, props).await.map_err(|e| e.to_string());
                    Event::Live {
                        unit,
                        result,
                        ticket,
                    }
                });
            }
            Action::Apply {
                unit,
                changes,
                woke_us,
            } => {
                let Some(conn) = self.conn.clone() else {
                    return Some(Event::Applied {
                        unit,
                        changes,
                        result: Err("not connected to systemd".into()),
                    });
                };
                let bus = self.bus.clone();
                let responded = woke_us.and_then(|_| self.responded.remove(&unit));
                let asked = crate::clock::mono_us();
                self.spawn(async move {
                    let _permit = bus.acquire().await;
                    let settings = changes.iter().map(|c| c.target.setting.clone()).collect();
                    let props = changes.iter().map(|c| c.target.prop).collect();
                    let result = conn.set_and_read(&unit, settings, props).await;
                    if let (Some(w), Ok((set, _))) = (woke_us, &result) {
                        let set = *set;
                        let done = crate::clock::mono_us();
                        let us = done.saturating_sub(w);
                        // Where it went: to the evaluator call, the call and
                        // the decision, SetUnitProperties, the read-back.
                        let call = responded.unwrap_or(w);
                        info!(
                            UNIT = %unit,
                            REACTION_US = us,
                            LOOP_US = call.saturating_sub(w),
                            DECIDE_US = asked.saturating_sub(call),
                            SET_US = set.saturating_sub(asked),
                            READBACK_US = done.saturating_sub(set),
                            "{unit}: applied {us} µs after the kernel's wake-up"
                        );
                    }
                    Event::Applied {
                        unit,
                        changes,
                        result: result.map(|(_, live)| live).map_err(|e| e.to_string()),
                    }
                });
            }
            Action::Probe {
                unit,
                seq,
                probe,
                timeout_ms,
            } => {
                let timeout = std::time::Duration::from_millis(timeout_ms);
                if *probe == ProbeSpec::Closure {
                    // An evaluator is shared with every unit's closures:
                    // a check holds it for at most CHECK_LIMIT.
                    let limit = timeout.min(CHECK_LIMIT);
                    return self.call(Call::Check { unit, seq }, limit);
                }
                let prober = self.prober.clone();
                self.spawn(async move {
                    let (ms, result) = prober.probe(&probe, timeout).await;
                    Event::Probed {
                        unit,
                        seq,
                        outcome: outcome(ms, result),
                    }
                });
            }
            Action::Restart(unit) => {
                let Some(conn) = self.conn.clone() else {
                    return Some(Event::Restarted {
                        unit,
                        result: Err("not connected to systemd".into()),
                    });
                };
                let bus = self.bus.clone();
                self.spawn(async move {
                    let _permit = bus.acquire().await;
                    let result = conn.restart(&unit).await.map_err(|e| e.to_string());
                    Event::Restarted { unit, result }
                });
            }
            Action::Arm(arm) => return Some(self.watcher().arm(&arm)),
            Action::Disarm(unit) => {
                if let Some(w) = self.watcher.as_mut() {
                    w.disarm(&unit);
                }
            }
            Action::WatchFiles { unit, seq, files } => {
                if let Err(e) = self.watcher().watch_files(&unit, seq, &files) {
                    warn!("{unit}: cannot watch the pattern monitor's files: {e}");
                    return Some(Event::PatternDone {
                        unit,
                        result: Err(format!("cannot watch its files: {e}")),
                        logs: Vec::new(),
                    });
                }
            }
            Action::CallPattern(unit) => {
                return self.call(Call::Pattern { unit }, KERNEL_LIMIT);
            }
            Action::SetEnvironment { unit, environment } => {
                let Some(conn) = self.conn.clone() else {
                    return Some(Event::EnvironmentSet {
                        unit,
                        result: Err("not connected to systemd".into()),
                    });
                };
                let bus = self.bus.clone();
                self.spawn(async move {
                    let _permit = bus.acquire().await;
                    let result = async {
                        crate::dropin::write_environment(
                            std::path::Path::new(crate::dropin::RUNTIME_DIR),
                            &unit,
                            environment.as_ref(),
                        )?;
                        conn.reload()
                            .await
                            .map_err(|e| format!("daemon-reload: {e}"))?;
                        conn.restart(&unit).await.map_err(|e| e.to_string())
                    }
                    .await;
                    Event::EnvironmentSet { unit, result }
                });
            }
            Action::Respond {
                unit,
                event,
                woke_us,
            } => {
                if woke_us.is_some() {
                    self.responded.insert(unit.clone(), crate::clock::mono_us());
                }
                let call = Call::Kernel {
                    unit,
                    event,
                    woke_us,
                };
                return self.call(call, KERNEL_LIMIT);
            }
            Action::OnFailure { unit, event } => {
                return self.call(Call::OnFailure { unit, event }, ON_FAILURE_LIMIT);
            }
            Action::Alert(alert) => {
                // The journal always; the configured channels besides.
                warn!(
                    UNIT = %alert.unit,
                    CHECK = %alert.check,
                    SEVERITY = %alert.severity.as_str(),
                    SPARROW_ALERT = "1",
                    "alert: {}",
                    alert.message
                );
                if !self.alerts.is_empty() {
                    let alerts = self.alerts.clone();
                    tokio::spawn(async move {
                        for d in alerts.deliver(&alert).await {
                            match d.result {
                                Ok(n) => {
                                    info!(UNIT = %alert.unit, "alert for {} delivered by {} ({n} attempt(s))", alert.unit, d.channel)
                                }
                                Err(e) => {
                                    warn!(UNIT = %alert.unit, "alert for {} not delivered by {}: {e}", alert.unit, d.channel)
                                }
                            }
                        }
                    });
                }
            }
            Action::Log(record) => log(&record),
            Action::Save(state) => {
                if let Err(e) = self.store.save(&state) {
                    warn!("{e}");
                }
            }
            Action::Notify(notice) => self.notifier.notify(&notice),
            Action::Reply(id, response) => {
                if let Some(tx) = self.replies.remove(&id) {
                    let _ = tx.send(*response);
                }
            }
            Action::Exit => {}
        }
        None
    }
}

/// Writes a record to the journal (structured fields) or stderr.
fn log(r: &LogRecord) {
    let unit = r.unit.as_deref().unwrap_or("");
    let field = |name: &str| {
        r.fields
            .iter()
            .find(|(n, _)| *n == name)
            .map_or("", |(_, v)| v.as_str())
    };
    if !r.fields.is_empty() {
        // A change: the fields `journalctl PROPERTY=..` finds.
        info!(
            UNIT = %unit,
            PROPERTY = %field("PROPERTY"),
            OLD = %field("OLD"),
            NEW = %field("NEW"),
            REASON = %field("REASON"),
            "{}",
            r.message
        );
        return;
    }
    match (r.level, r.unit.is_some()) {
        (Level::Error, true) => error!(UNIT = %unit, "{}", r.message),
        (Level::Error, false) => error!("{}", r.message),
        (Level::Warn, true) => warn!(UNIT = %unit, "{}", r.message),
        (Level::Warn, false) => warn!("{}", r.message),
        (Level::Info, true) => info!(UNIT = %unit, "{}", r.message),
        (Level::Info, false) => info!("{}", r.message),
    }
}
