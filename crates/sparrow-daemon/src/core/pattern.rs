//! The pattern feature: `monitor.pattern_check`, run while the unit is
//! active every `interval` and, when `watch` names files, as soon as one
//! changes (inotify in the actuator; changes within [`QUIET_MS`] are one
//! run, and a change during a run asks for one more after it).
//!
//! What it returns: resource keys go through the resources feature's
//! hysteresis and apply path; `environment: #{..}` restarts the unit with
//! those variables on top of its own (systemd cannot change `Environment=`
//! of a loaded unit over D-Bus: the actuator writes a runtime drop-in,
//! reloads systemd, restarts the unit). When a later run returns no
//! environment (back to normal) the drop-in goes and the unit restarts with
//! its own. Environment restarts are at most one per [`ENV_GAP_MS`].

use std::collections::BTreeMap;

use sparrow_policy::kernel::Debounce;

use super::{Action, Cx, Event, Feature, Level, Millis, Now, Unit};
use crate::control::{PatternStatus, UnitStatus};
use crate::spec::PatternSpec;

/// Changes of watched files within this long are one run.
pub const QUIET_MS: Millis = 200;
/// Least time between two environment restarts of a unit.
pub const ENV_GAP_MS: Millis = 60_000;

/// What a `pattern_check` run returned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Resource properties returned (applied by the resources feature).
    pub props: usize,
    /// `environment`, if returned.
    pub environment: Option<BTreeMap<String, String>>,
}

#[derive(Debug)]
struct Monitor {
    spec: PatternSpec,
    seq: u64,
    active: bool,
    debounce: Debounce,
    next_due: Millis,
    runs: u64,
    errors: u64,
    last_run_ms: Option<u64>,
    last_outcome: String,
    last_error: Option<String>,
    /// The environment in the drop-in now.
    applied: Option<BTreeMap<String, String>>,
    /// The environment being set (`Some(None)`: being removed).
    setting: Option<Option<BTreeMap<String, String>>>,
    last_change: Option<Millis>,
    restarts: u64,
    /// The rate limit was last logged for this wanted environment.
    told_wait: Option<Option<BTreeMap<String, String>>>,
}

impl Monitor {
    fn new(spec: PatternSpec) -> Monitor {
        Monitor {
            spec,
            seq: 0,
            active: false,
            debounce: Debounce::default(),
            next_due: 0,
            runs: 0,
            errors: 0,
            last_run_ms: None,
            last_outcome: "not run yet".into(),
            last_error: None,
            applied: None,
            setting: None,
            last_change: None,
            restarts: 0,
            told_wait: None,
        }
    }

    fn watch(&mut self, unit: &str, cx: &mut Cx) {
        self.seq += 1;
        if !self.spec.watch.is_empty() {
            cx.out.push(Action::WatchFiles {
                unit: unit.to_string(),
                seq: self.seq,
                files: self.spec.watch.clone(),
            });
        }
    }

    fn unwatch(&mut self, unit: &str, cx: &mut Cx) {
        self.seq += 1;
        if !self.spec.watch.is_empty() {
            cx.out.push(Action::WatchFiles {
                unit: unit.to_string(),
                seq: self.seq,
                files: Vec::new(),
            });
        }
    }

    /// Asks for `want` as the unit's environment, if it differs from what
    /// it runs with, nothing is being set, and the gap allows.
    fn environment(&mut self, unit: &str, want: Option<BTreeMap<String, String>>, cx: &mut Cx) {
        let want = want.filter(|e| !e.is_empty());
        if want == self.applied || self.setting.is_some() {
            return;
        }
        let now = cx.now.mono;
        if let Some(t) = self.last_change.filter(|t| now < t + ENV_GAP_MS) {
            if self.told_wait.as_ref() != Some(&want) {
                cx.log(
                    Level::Info,
                    Some(unit),
                    &format!(
                        "{unit}: pattern_check asks for another environment; not before {} s after the last change",
                        (t + ENV_GAP_MS - now).div_ceil(1000)
                    ),
                );
                self.told_wait = Some(want);
            }
            return;
        }
        self.told_wait = None;
        self.setting = Some(want.clone());
        self.last_change = Some(now);
        let what = match &want {
            Some(env) => format!(
                "restarting {unit} with {}",
                env.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            None => format!("restarting {unit} with its own environment again"),
        };
        cx.log(Level::Warn, Some(unit), &format!("pattern_check: {what}"));
        cx.out.push(Action::SetEnvironment {
            unit: unit.to_string(),
            environment: want,
        });
    }
}

/// The feature.
#[derive(Debug, Default)]
pub struct Pattern {
    units: BTreeMap<String, Monitor>,
}

impl Feature for Pattern {
    fn load(&mut self, units: &BTreeMap<String, Unit>, cx: &mut Cx) {
        let mut next = BTreeMap::new();
        for (name, unit) in units {
            let Some(spec) = unit.spec.pattern.clone() else {
                continue;
            };
            let m = match self.units.remove(name) {
                Some(old) if old.spec == spec => old,
                Some(mut old) => {
                    old.unwatch(name, cx);
                    let mut m = Monitor::new(spec);
                    // What the unit runs with does not change with its definition.
                    (m.seq, m.applied, m.last_change) = (old.seq, old.applied, old.last_change);
                    m
                }
                None => Monitor::new(spec),
            };
            next.insert(name.clone(), m);
        }
        for (name, mut old) in std::mem::take(&mut self.units) {
            if old.active {
                old.unwatch(&name, cx);
            }
        }
        self.units = next;
        for (name, m) in &mut self.units {
            let active = units.get(name).is_some_and(Unit::active);
            if active && !m.active {
                m.active = true;
                m.next_due = cx.now.mono + m.spec.interval_ms;
                m.watch(name, cx);
            }
        }
    }

    fn started(&mut self, unit: &str, cx: &mut Cx) {
        if let Some(m) = self.units.get_mut(unit) {
            m.active = true;
            m.debounce = Debounce::default();
            m.next_due = cx.now.mono + m.spec.interval_ms;
            m.watch(unit, cx);
        }
    }

    fn stopped(&mut self, unit: &str, cx: &mut Cx) {
        if let Some(m) = self.units.get_mut(unit) {
            m.active = false;
            m.unwatch(unit, cx);
        }
    }

    fn tick(&mut self, _units: &mut BTreeMap<String, Unit>, cx: &mut Cx) {
        let now = cx.now.mono;
        for (name, m) in &mut self.units {
            if !m.active || m.debounce.running() {
                continue;
            }
            let start = if now >= m.next_due {
                m.debounce.start_now()
            } else {
                m.debounce.start(now)
            };
            if start {
                m.next_due = now + m.spec.interval_ms;
                m.last_run_ms = Some(cx.now.wall);
                cx.out.push(Action::CallPattern(name.clone()));
            }
        }
    }

    fn next_wake(&self, _units: &BTreeMap<String, Unit>, _connected: bool) -> Option<Millis> {
        self.units
            .values()
            .filter(|m| m.active && !m.debounce.running())
            .map(|m| m.debounce.due().map_or(m.next_due, |d| d.min(m.next_due)))
            .min()
    }

    fn result(
        &mut self,
        ev: Event,
        _units: &mut BTreeMap<String, Unit>,
        cx: &mut Cx,
    ) -> Option<Event> {
        match ev {
            Event::FilesChanged { unit, seq } => {
                let m = self.units.get_mut(&unit)?;
                if m.seq == seq && m.active {
                    m.debounce.changed(cx.now.mono, QUIET_MS);
                }
            }
            Event::PatternDone { unit, result, logs } => {
                let m = self.units.get_mut(&unit)?;
                m.debounce.finished(cx.now.mono, QUIET_MS);
                m.runs += 1;
                for l in logs {
                    cx.log(Level::Info, Some(&unit), &format!("{unit}: {l}"));
                }
                match result {
                    Ok(o) => {
                        m.last_error = None;
                        m.last_outcome = match (&o.environment, o.props) {
                            (Some(e), _) if !e.is_empty() => {
                                format!("environment: {} variable(s)", e.len())
                            }
                            (_, 0) => "nothing to change".into(),
                            (_, n) => {
                                format!("{n} propert{} returned", if n == 1 { "y" } else { "ies" })
                            }
                        };
                        if m.active {
                            m.environment(&unit, o.environment, cx);
                        }
                    }
                    Err(e) => {
                        m.errors += 1;
                        if m.last_error.as_deref() != Some(e.as_str()) {
                            cx.log(
                                Level::Warn,
                                Some(&unit),
                                &format!("pattern_check of {unit} failed: {e}"),
                            );
                        }
                        m.last_outcome = e.clone();
                        m.last_error = Some(e);
                    }
                }
            }
            Event::EnvironmentSet { unit, result } => {
                let m = self.units.get_mut(&unit)?;
                let set = m.setting.take();
                match result {
                    Ok(()) => {
                        m.applied = set.flatten();
                        m.restarts += 1;
                    }
                    Err(e) => {
                        m.errors += 1;
                        cx.log(
                            Level::Error,
                            Some(&unit),
                            &format!("cannot restart {unit} with the pattern environment: {e}"),
                        );
                    }
                }
            }
            other => return Some(other),
        }
        None
    }

    fn status(&self, unit: &str, _now: Now, entry: &mut UnitStatus) {
        let Some(m) = self.units.get(unit) else {
            return;
        };
        entry.pattern = Some(PatternStatus {
            interval_ms: m.spec.interval_ms,
            watch: m.spec.watch.clone(),
            runs: m.runs,
            errors: m.errors,
            last_run_ms: m.last_run_ms,
            last_outcome: m.last_outcome.clone(),
            environment: m.applied.clone(),
            restarts: m.restarts,
        });
    }
}
