//! The daemon's evaluator process: the child side of the pool in `eval`.
//!
//! Started as `sparrow-evaluator runtime` (the daemon's binary,
//! re-executed), it loads the definitions it is sent and evaluates units'
//! closures on request. Every reply is one line; a load answers once per
//! source, an evaluation once per batch (with the unit it is on in the
//! progress file), so when this process dies the daemon knows which
//! definition or which unit did it, reports it, and starts a fresh process
//! without it.

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rhai::Map;
use serde::{Deserialize, Serialize};
use sparrow_host::runtime::{RealRuntime, UnitSnapshot, Units};
use sparrow_host::RealHost;
use sparrow_isolate::Channel;
use sparrow_lang::runtime::{OnFailure, Probe};
use sparrow_lang::{keys, value, CallError, Closure, Facts, Loader};
use sparrow_policy::{Desired, Prop};
use sparrow_source::{load_text, LibCache, Owners};

use crate::eval::{desired, SourceText};
use crate::spec::{spec_of, Spec};

/// The role name the daemon's binary serves with [`serve`].
pub const ROLE: &str = "runtime";

/// Lines a closure may `log()` per evaluation, and characters per line.
const MAX_LOGS: usize = 20;
const MAX_LOG_LEN: usize = 1000;

/// What the daemon sends.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Request {
    /// Sent once, first.
    Init {
        /// The host's facts, gathered once by the daemon.
        facts: Facts,
        /// Who may own `lib/` modules.
        owners: Owners,
    },
    /// Load these definitions (replacing what was loaded); answered with
    /// one [`SourceLoaded`] per source, in order.
    Load(Vec<SourceText>),
    /// What the daemon knows of units now (for `service_state()` and
    /// `service_memory()`); not answered.
    Units(HashMap<String, UnitSnapshot>),
    /// Evaluate these units' closures, each within `limit_ms`; answered
    /// with one list of [`Evaluated`], in order. Before each unit the
    /// process writes its position (from 1) to its progress file, so that
    /// when it dies or hangs the daemon knows which unit did it.
    Eval {
        /// The units.
        units: Vec<String>,
        /// Wall-clock limit for one unit's closures together.
        limit_ms: u64,
    },
    /// Call one of a unit's health closures; answered with a [`CallReply`].
    Call {
        /// The unit.
        unit: String,
        /// Which closure.
        what: CallWhat,
        /// Its argument (the failure event for `on_failure`).
        arg: Option<serde_json::Value>,
        /// Its wall-clock limit.
        limit_ms: u64,
    },
}

/// Which health closure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum CallWhat {
    /// `health.check`: `false` or a thrown error fails the probe.
    Check,
    /// `health.on_failure`, given the event.
    OnFailure,
    /// `pressure_response(event)` and/or `adaptive_resources.strategy(signals)`;
    /// what they return is [`CallReply::props`].
    Kernel,
    /// `monitor.pattern_check()`: properties, and [`CallReply::environment`].
    Pattern,
}

/// The answer to [`Request::Call`].
#[derive(Debug, Serialize, Deserialize)]
pub struct CallReply {
    /// Passed, or why not (file:line:col: message).
    pub result: Result<(), String>,
    /// `log()` lines.
    pub logs: Vec<String>,
    /// How long the closure took.
    pub took_us: u64,
    /// `alert()` calls: (message, severity).
    #[serde(default)]
    pub alerts: Vec<(String, String)>,
    /// Properties a kernel response or a pattern check returned.
    #[serde(default)]
    pub props: Vec<(Prop, Desired)>,
    /// The environment a pattern check returned (`None`: it returned none).
    #[serde(default)]
    pub environment: Option<BTreeMap<String, String>>,
    /// The string an `on_failure` closure returned, if any: `"restart"`,
    /// `"alert"` or `"none"` make the daemon do that.
    #[serde(default)]
    pub action: Option<String>,
    /// The process's Raku worker, when it has one.
    #[serde(default)]
    pub raku: Option<sparrow_raku::resident::Health>,
    /// Set by the daemon, never sent: the process died or was killed.
    #[serde(skip)]
    pub crashed: bool,
}

/// What one source gave the daemon.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct SourceLoaded {
    /// Units to manage.
    pub specs: Vec<Spec>,
    /// Problems (one line each).
    pub problems: Vec<String>,
}

/// The answer to an evaluation.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Evaluated {
    /// Desired values, or the error (file:line:col: message).
    pub result: Result<Vec<(Prop, Desired)>, String>,
    /// The error was a limit being hit.
    pub timed_out: bool,
    /// `log()` lines: (unit, message).
    pub logs: Vec<(String, String)>,
    /// How long its closures took.
    pub took_us: u64,
    /// `alert()` calls: (message, severity).
    #[serde(default)]
    pub alerts: Vec<(String, String)>,
    /// The process's Raku worker, when it has one.
    #[serde(default)]
    pub raku: Option<sparrow_raku::resident::Health>,
}

/// One unit's closures.
#[derive(Default)]
struct UnitClosures {
    resources: Option<Closure>,
    dynamic: Vec<(Prop, Closure)>,
    check: Option<Closure>,
    on_failure: Option<Closure>,
    pressure: Option<Closure>,
    strategy: Option<Closure>,
    pattern: Option<Closure>,
}

/// Serves requests on stdin until it closes.
pub fn serve() -> u8 {
    let Ok(mut chan) = Channel::take() else {
        return 2;
    };
    crate::slice::apply();
    let units: Units = Arc::default();
    let logs: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let sink = logs.clone();
    let alerts: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let alert_sink = alerts.clone();
    let runtime = Arc::new(
        RealRuntime::new(
            units.clone(),
            Arc::new(move |unit: &str, msg: &str| {
                let mut l = sink.lock().unwrap_or_else(|p| p.into_inner());
                if l.len() < MAX_LOGS {
                    let msg: String = msg.chars().take(MAX_LOG_LEN).collect();
                    l.push((unit.to_string(), msg));
                }
            }),
        )
        .with_alerts(Arc::new(move |_unit: &str, msg: &str, severity: &str| {
            let mut a = alert_sink.lock().unwrap_or_else(|p| p.into_inner());
            if a.len() < MAX_LOGS {
                let msg: String = msg.chars().take(MAX_LOG_LEN).collect();
                a.push((msg, severity.to_string()));
            }
        })),
    );
    let take_alerts = || std::mem::take(&mut *alerts.lock().unwrap_or_else(|p| p.into_inner()));
    let mut state: Option<(Loader, Owners)> = None;
    let mut closures: HashMap<String, UnitClosures> = HashMap::new();
    loop {
        let req: Request = match chan.recv() {
            Ok(Some(r)) => r,
            Ok(None) => return 0,
            Err(e) => {
                eprintln!("sparrow-evaluator: {e}");
                return 2;
            }
        };
        let sent = match req {
            Request::Init { facts, owners } => {
                let host = Rc::new(RealHost::from_facts(facts));
                state = Some((Loader::with_runtime(host, runtime.clone()), owners));
                Ok(())
            }
            Request::Units(map) => {
                if let Ok(mut u) = units.write() {
                    *u = map;
                }
                Ok(())
            }
            Request::Load(sources) => {
                let Some((loader, owners)) = &state else {
                    return 2;
                };
                closures.clear();
                let mut libs = LibCache::default();
                let done: Vec<SourceLoaded> = sources
                    .iter()
                    .map(|s| load_one(loader, &mut libs, s, *owners, &mut closures))
                    .collect();
                // Raku subs run in a resident Raku process: start it now,
                // before the daemon counts any closure's time (a failure
                // here shows up as each sub's error later).
                let raku: Vec<&std::path::Path> = sources
                    .iter()
                    .filter(|s| s.source.kind.is_raku() && s.source.translation.is_some())
                    .map(|s| s.source.path.as_path())
                    .collect();
                if !raku.is_empty() {
                    let _ = runtime.warm_raku(&raku);
                }
                done.iter().try_for_each(|d| chan.send(d))
            }
            Request::Eval { units, limit_ms } => {
                let Some((loader, _)) = &state else {
                    return 2;
                };
                let mut out = Vec::with_capacity(units.len());
                for (i, unit) in units.iter().enumerate() {
                    // Where a crash or a hang is: the daemon reads it only
                    // when this process dies or stalls.
                    chan.progress(i as u64 + 1);
                    let start = Instant::now();
                    let result = match closures.get(unit) {
                        Some(c) => evaluate(loader, c, unit, Duration::from_millis(limit_ms)),
                        None => Err((
                            format!("{unit} is not managed by the loaded definitions"),
                            false,
                        )),
                    };
                    let (result, timed_out) = match result {
                        Ok(v) => (Ok(v), false),
                        Err((e, t)) => (Err(e), t),
                    };
                    let logs = std::mem::take(&mut *logs.lock().unwrap_or_else(|p| p.into_inner()));
                    out.push(Evaluated {
                        result,
                        timed_out,
                        logs,
                        took_us: start.elapsed().as_micros() as u64,
                        alerts: take_alerts(),
                        raku: runtime.raku_health(),
                    });
                }
                // One reply for the batch: one wake-up of the daemon.
                chan.send(&out)
            }
            Request::Call {
                unit,
                what,
                arg,
                limit_ms,
            } => {
                let Some((loader, _)) = &state else {
                    return 2;
                };
                let start = Instant::now();
                let limit = Duration::from_millis(limit_ms);
                let mut action = None;
                let (result, props, environment) = match what {
                    CallWhat::Kernel => {
                        match kernel_call(loader, closures.get(&unit), &unit, arg, limit) {
                            Ok(p) => (Ok(()), p, None),
                            Err(e) => (Err(e), Vec::new(), None),
                        }
                    }
                    CallWhat::Pattern => {
                        match pattern_call(loader, closures.get(&unit), &unit, limit) {
                            Ok((p, env)) => (Ok(()), p, env),
                            Err(e) => (Err(e), Vec::new(), None),
                        }
                    }
                    _ => {
                        let r =
                            health_call(loader, closures.get(&unit), &unit, what, arg, limit_ms);
                        let r = r.map(|word| action = word);
                        (r, Vec::new(), None)
                    }
                };
                let logs = std::mem::take(&mut *logs.lock().unwrap_or_else(|p| p.into_inner()))
                    .into_iter()
                    .map(|(_, m)| m)
                    .collect();
                chan.send(&CallReply {
                    action,
                    result,
                    logs,
                    took_us: start.elapsed().as_micros() as u64,
                    alerts: take_alerts(),
                    props,
                    environment,
                    raku: runtime.raku_health(),
                    crashed: false,
                })
            }
        };
        if sent.is_err() {
            return 2;
        }
    }
}

/// Calls a unit's `check` or `on_failure` closure; for `on_failure`, the
/// string it returned, if any (the daemon acts on `"restart"`, `"alert"`
/// and `"none"`; other values are what its last line happened to give).
fn health_call(
    loader: &Loader,
    closures: Option<&UnitClosures>,
    unit: &str,
    what: CallWhat,
    arg: Option<serde_json::Value>,
    limit_ms: u64,
) -> Result<Option<String>, String> {
    let closure = match what {
        CallWhat::Check => closures.and_then(|c| c.check.as_ref()),
        CallWhat::OnFailure => closures.and_then(|c| c.on_failure.as_ref()),
        CallWhat::Kernel | CallWhat::Pattern => None,
    }
    .ok_or_else(|| format!("{unit} has no such closure in the loaded definitions"))?;
    let args = match arg {
        Some(a) if closure.params > 0 => vec![sparrow_lang::from_json(a)],
        _ => Vec::new(),
    };
    match loader.call(closure, args, unit, Duration::from_millis(limit_ms)) {
        Ok(v) if v.as_bool() == Ok(false) && what == CallWhat::Check => {
            Err(format!("{}: the check returned false", closure.place()))
        }
        Ok(v) if what == CallWhat::OnFailure => Ok(v.into_string().ok()),
        Ok(_) => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

/// Calls a unit's `pressure_response` with the event, then its strategy
/// with the same map as `signals`, within `limit` together; the properties
/// they return (the strategy's win where both name one). `()` or `#{}`
/// returns nothing.
fn kernel_call(
    loader: &Loader,
    closures: Option<&UnitClosures>,
    unit: &str,
    arg: Option<serde_json::Value>,
    limit: Duration,
) -> Result<Vec<(Prop, Desired)>, String> {
    let c = closures.ok_or_else(|| format!("{unit} is not managed by the loaded definitions"))?;
    let deadline = Instant::now() + limit;
    let event = sparrow_lang::from_json(arg.unwrap_or_default());
    let mut out = BTreeMap::new();
    for (closure, what) in [
        (&c.pressure, "pressure_response"),
        (&c.strategy, "strategy"),
    ] {
        let Some(closure) = closure else { continue };
        let left = deadline.saturating_duration_since(Instant::now());
        let v = loader
            .call(closure, vec![event.clone()], unit, left)
            .map_err(|e| e.to_string())?;
        if v.is_unit() {
            continue;
        }
        props_of(closure, &v, what, &mut out).map_err(|(e, _)| e)?;
    }
    Ok(out.into_iter().collect())
}

/// Variables to restart a unit with.
type Environment = BTreeMap<String, String>;
/// Resource properties a closure returned.
type Props = Vec<(Prop, Desired)>;

/// Calls a unit's `pattern_check`: `environment: #{..}` is the environment
/// to restart with (values as text), the other keys resource properties.
/// `()` or `#{}` returns neither.
fn pattern_call(
    loader: &Loader,
    closures: Option<&UnitClosures>,
    unit: &str,
    limit: Duration,
) -> Result<(Props, Option<Environment>), String> {
    let closure = closures
        .and_then(|c| c.pattern.as_ref())
        .ok_or_else(|| format!("{unit} has no pattern_check in the loaded definitions"))?;
    let v = loader
        .call(closure, vec![], unit, limit)
        .map_err(|e| e.to_string())?;
    if v.is_unit() {
        return Ok((Vec::new(), None));
    }
    let Some(mut map) = v.read_lock::<Map>().map(|m| m.clone()) else {
        return Err(format!(
            "{}: pattern_check returned {}, not a map (`#{{ environment: #{{..}} }}` or resource keys)",
            closure.place(),
            value::type_name(&v)
        ));
    };
    let environment = match map.remove("environment") {
        None => None,
        Some(env) => {
            let Some(env) = env.read_lock::<Map>().map(|m| m.clone()) else {
                return Err(format!(
                    "{}: pattern_check's environment is {}, not a map of names to values",
                    closure.place(),
                    value::type_name(&env)
                ));
            };
            Some(
                env.into_iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )
        }
    };
    let mut out = BTreeMap::new();
    props_of(
        closure,
        &rhai::Dynamic::from_map(map),
        "pattern_check",
        &mut out,
    )
    .map_err(|(e, _)| e)?;
    Ok((out.into_iter().collect(), environment))
}

/// The resource keys of a map a closure returned, into `out`.
fn props_of(
    closure: &Closure,
    v: &rhai::Dynamic,
    what: &str,
    out: &mut BTreeMap<Prop, Desired>,
) -> Result<(), (String, bool)> {
    let Some(map) = v.read_lock::<Map>().map(|m| m.clone()) else {
        return Err((
            format!(
                "{}: the {what} closure returned {}, not a map of resource keys",
                closure.place(),
                value::type_name(v)
            ),
            false,
        ));
    };
    for (k, v) in &map {
        let prop = keys::lookup(k)
            .filter(|spec| keys::is_resource(spec))
            .and_then(|spec| Prop::from_key(spec.name))
            .ok_or_else(|| {
                (
                    format!(
                        "{}: the {what} closure returned {k:?}, which is not a resource key",
                        closure.place()
                    ),
                    false,
                )
            })?;
        let d =
            desired(prop, v).map_err(|e| (format!("{}: {prop}: {e}", closure.place()), false))?;
        out.insert(prop, d);
    }
    Ok(())
}

fn load_one(
    loader: &Loader,
    libs: &mut LibCache,
    s: &SourceText,
    owners: Owners,
    closures: &mut HashMap<String, UnitClosures>,
) -> SourceLoaded {
    let mut out = SourceLoaded::default();
    let loaded = match load_text(loader, libs, &s.source, &s.text, owners) {
        Ok(l) => l,
        Err(r) => {
            out.problems
                .push(format!("{}: {}", r.path.display(), r.reason));
            return out;
        }
    };
    if loaded.has_errors() {
        for d in loaded.diagnostics.iter().filter(|d| d.is_error()) {
            out.problems.push(d.to_string());
        }
        return out;
    }
    for decl in &loaded.units {
        let Some(spec) = spec_of(decl) else { continue };
        let resources = decl.runtime.monitor.resources.clone();
        let dynamic = decl
            .runtime
            .dynamic
            .iter()
            .filter_map(|(k, c)| Prop::from_key(k).map(|p| (p, c.clone())))
            .collect();
        let (check, on_failure) = match &decl.runtime.health {
            Some(h) => (
                match &h.probe {
                    Probe::Check(c) => Some(c.clone()),
                    _ => None,
                },
                match &h.on_failure {
                    Some(OnFailure::Call(c)) => Some(c.clone()),
                    _ => None,
                },
            ),
            None => (None, None),
        };
        let strategy = decl
            .runtime
            .adaptive
            .as_ref()
            .filter(|a| a.kernel_signals)
            .and_then(|a| a.strategy.clone());
        closures.insert(
            spec.unit.clone(),
            UnitClosures {
                resources,
                dynamic,
                check,
                on_failure,
                pressure: decl.runtime.pressure_response.clone(),
                strategy,
                pattern: decl.runtime.monitor.pattern_check.clone(),
            },
        );
        out.specs.push(spec);
    }
    out
}

/// Calls a unit's closures, all of them within `limit` together.
fn evaluate(
    loader: &Loader,
    c: &UnitClosures,
    unit: &str,
    limit: Duration,
) -> Result<Vec<(Prop, Desired)>, (String, bool)> {
    let deadline = Instant::now() + limit;
    let call = |closure: &Closure| {
        let left = deadline.saturating_duration_since(Instant::now());
        loader
            .call(closure, vec![], unit, left)
            .map_err(|e| (e.to_string(), matches!(e, CallError::Limit(_))))
    };
    let mut out = BTreeMap::new();
    for (prop, closure) in &c.dynamic {
        let v = call(closure)?;
        let d =
            desired(*prop, &v).map_err(|e| (format!("{}: {prop}: {e}", closure.place()), false))?;
        out.insert(*prop, d);
    }
    if let Some(closure) = &c.resources {
        let v = call(closure)?;
        props_of(closure, &v, "resources", &mut out)?;
    }
    Ok(out.into_iter().collect())
}
