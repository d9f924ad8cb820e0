//! What the daemon manages for a unit, read from its typed runtime spec:
//! plain data, so it can leave the evaluator process that loaded the
//! definition. One part per runtime feature; a unit is managed when any
//! part is present.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use sparrow_lang::runtime::{OnFailure, Probe};
use sparrow_lang::value::Size;
use sparrow_lang::UnitDecl;
use sparrow_policy::health::{BudgetRule, Timing};
use sparrow_policy::kernel::{Resource, TriggerSpec};
use sparrow_policy::{Prop, Threshold};

/// Evaluate every minute unless `monitor.interval` says otherwise.
pub const DEFAULT_INTERVAL_MS: u64 = 60_000;
/// Do not shrink a property again within a minute of changing it.
pub const DEFAULT_MIN_DWELL_MS: u64 = 60_000;
/// Changes per minute for one unit unless `monitor.max_changes_per_minute` says otherwise.
pub const DEFAULT_UNIT_CAP: usize = 6;

/// A unit the daemon manages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spec {
    /// The unit.
    pub unit: String,
    /// The definition it comes from.
    pub source: PathBuf,
    /// Line of the declaration.
    pub line: usize,
    /// The runtime features the definition asks for (`resources`,
    /// `health`, ...), acted on or not.
    pub features: Vec<String>,
    /// The resources feature: closures re-evaluated and applied live.
    pub resources: Option<ResourcesSpec>,
    /// The health feature: a probe, and what follows a failure.
    #[serde(default)]
    pub health: Option<HealthSpec>,
    /// The kernel feature: PSI triggers, `memory.events`, and who responds.
    #[serde(default)]
    pub kernel: Option<KernelSpec>,
    /// The pattern feature: `monitor.pattern_check` and its watched files.
    #[serde(default)]
    pub pattern: Option<PatternSpec>,
}

/// `monitor.pattern_check`, run every interval and when a watched file changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatternSpec {
    /// `monitor.interval` (default a minute).
    pub interval_ms: u64,
    /// `monitor.watch`: absolute paths.
    pub watch: Vec<String>,
}

/// `kernel_monitoring` with `pressure_response` and `adaptive_resources`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KernelSpec {
    /// PSI triggers, as written (the kernel's rules are applied when arming).
    pub triggers: Vec<TriggerSpec>,
    /// Triggers on `/proc/pressure/*` rather than the unit's cgroup.
    pub system: bool,
    /// Watch the unit's `memory.events` (`cgroup_memory` was given).
    pub memory_events: bool,
    /// It has a `pressure_response` closure.
    pub response: bool,
    /// It has an `adaptive_resources.strategy` called on kernel signals.
    pub strategy: bool,
}

impl ResourcesSpec {
    /// Whether anything is evaluated on the interval (a unit whose only
    /// live changes come from kernel responses is not).
    pub fn scheduled(&self) -> bool {
        self.closure || !self.dynamic.is_empty()
    }
}

/// `health`: what is probed, how often, and what follows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthSpec {
    /// The check's name in status and alerts (`http`, `tcp`, `exec`, `check`).
    pub check: String,
    /// What is probed.
    pub probe: ProbeSpec,
    /// Interval, timeout, delay, thresholds.
    pub timing: Timing,
    /// What follows the unhealthy edge.
    pub on_failure: FailureAction,
    /// At most so many restarts within a window.
    pub budget: BudgetRule,
}

/// A probe, as plain data (the `check` closure stays in the evaluator).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ProbeSpec {
    /// One HTTP/1.1 GET on a fresh connection.
    Http {
        /// `http://host[:port]/path`.
        url: String,
        /// The status wanted (default: any 2xx).
        status: Option<u16>,
        /// Text the body must contain.
        body: Option<String>,
        /// A regex the body must match.
        #[serde(default)]
        body_regex: Option<String>,
        /// Extra request headers.
        #[serde(default)]
        headers: Vec<(String, String)>,
    },
    /// A TCP connection that is accepted.
    Tcp {
        /// Host name or address.
        host: String,
        /// Port.
        port: u16,
    },
    /// A command that exits 0.
    Exec(Vec<String>),
    /// The `check` closure, called in an evaluator process.
    Closure,
}

/// What follows when a unit turns unhealthy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FailureAction {
    /// Restart it, within the budget.
    Restart,
    /// Raise an alert.
    Alert,
    /// Only the status says so.
    Nothing,
    /// Call the `on_failure` closure with the event.
    Closure,
}

/// `monitor.resources` and dynamic resource properties.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourcesSpec {
    /// Evaluation interval.
    pub interval_ms: u64,
    /// Least time between a change of a property and a shrink of it.
    pub min_dwell_ms: u64,
    /// Changes per minute for this unit.
    pub max_changes_per_minute: usize,
    /// Per property: the smallest change worth applying.
    pub thresholds: BTreeMap<Prop, Threshold>,
    /// It has a `monitor.resources` closure.
    pub closure: bool,
    /// Resource keys whose value is a closure (dynamic properties).
    pub dynamic: Vec<Prop>,
}

/// A threshold as written (`"100M"`, `"10%"`) for a property, in the units
/// the policy compares: bytes, µs per s, weight, tasks, CPUs. For
/// `cpu_quota` a number or percentage is in percentage points of one CPU;
/// elsewhere a percentage is relative to the live value.
pub fn threshold(prop: Prop, size: &Size) -> Threshold {
    match (prop, size) {
        (_, Size::Infinity) => Threshold::Abs(u64::MAX),
        (Prop::CpuQuota, Size::Bytes(n)) => Threshold::Abs(n.saturating_mul(10_000)),
        (Prop::CpuQuota, Size::Percent(p)) => Threshold::Abs((p * 10_000.0).round() as u64),
        (_, Size::Bytes(n)) => Threshold::Abs(*n),
        (_, Size::Percent(p)) => Threshold::Rel(p / 100.0),
    }
}

/// The spec for a declared unit, or `None` when nothing about it happens
/// at runtime. Templates are skipped: their instances are not tracked yet.
pub fn spec_of(decl: &UnitDecl) -> Option<Spec> {
    let rt = &decl.runtime;
    if decl.name.is_template() || rt.is_empty() || decl.dropin.is_some() {
        return None;
    }
    let monitor = &rt.monitor;
    let dynamic: Vec<Prop> = rt
        .dynamic
        .iter()
        .filter_map(|(k, _)| Prop::from_key(k))
        .collect();
    let ms = |d: Option<std::time::Duration>| d.map(|d| d.as_millis() as u64);
    let kernel = rt.kernel.as_ref().map(|k| KernelSpec {
        triggers: k
            .psi
            .iter()
            .filter_map(|(name, t)| {
                Some(TriggerSpec {
                    resource: Resource::from_name(name)?,
                    full: t.full,
                    threshold_us: t.threshold.as_micros() as u64,
                    window_us: t.window.as_micros() as u64,
                })
            })
            .collect(),
        system: k.system_scope,
        memory_events: k.memory_high_threshold.is_some() || k.oom_score.is_some(),
        response: rt.pressure_response.is_some(),
        strategy: rt
            .adaptive
            .as_ref()
            .is_some_and(|a| a.kernel_signals && a.strategy.is_some()),
    });
    // Kernel responses are applied through the resources feature (its
    // hysteresis, caps and apply path), scheduled or not.
    let responds = kernel.as_ref().is_some_and(|k| k.response || k.strategy)
        || monitor.pattern_check.is_some();
    let resources =
        (monitor.resources.is_some() || !dynamic.is_empty() || responds).then(|| ResourcesSpec {
            interval_ms: ms(monitor.interval).unwrap_or(DEFAULT_INTERVAL_MS).max(100),
            min_dwell_ms: ms(monitor.min_dwell).unwrap_or(DEFAULT_MIN_DWELL_MS),
            max_changes_per_minute: monitor
                .max_changes_per_minute
                .map_or(DEFAULT_UNIT_CAP, |n| n as usize),
            thresholds: monitor
                .change_threshold
                .iter()
                .filter_map(|(k, v)| Prop::from_key(k).map(|p| (p, threshold(p, v))))
                .collect(),
            closure: monitor.resources.is_some(),
            dynamic,
        });
    Some(Spec {
        unit: decl.name.to_string(),
        source: PathBuf::from(&decl.source),
        line: decl.line,
        features: rt.features().into_iter().map(str::to_string).collect(),
        resources,
        health: rt.health.as_ref().map(health_spec),
        kernel,
        pattern: monitor.pattern_check.as_ref().map(|_| PatternSpec {
            interval_ms: ms(monitor.interval).unwrap_or(DEFAULT_INTERVAL_MS).max(100),
            watch: monitor.watch.clone(),
        }),
    })
}

/// The plain-data part of `health`, with the documented defaults filled in.
fn health_spec(h: &sparrow_lang::runtime::Health) -> HealthSpec {
    let ms =
        |d: Option<std::time::Duration>, default: u64| d.map_or(default, |d| d.as_millis() as u64);
    let def = Timing::default();
    let (check, probe) = match &h.probe {
        Probe::Http {
            url,
            status,
            body,
            body_regex,
            headers,
        } => (
            "http",
            ProbeSpec::Http {
                url: url.clone(),
                status: *status,
                body: body.clone(),
                body_regex: body_regex.clone(),
                headers: headers.clone(),
            },
        ),
        Probe::Tcp { host, port } => (
            "tcp",
            ProbeSpec::Tcp {
                host: host.clone(),
                port: *port,
            },
        ),
        Probe::Exec(argv) => ("exec", ProbeSpec::Exec(argv.clone())),
        Probe::Check(_) => ("check", ProbeSpec::Closure),
    };
    let budget = h
        .restart_budget
        .map_or_else(BudgetRule::default, |(max, within)| BudgetRule {
            max,
            within_ms: within.as_millis() as u64,
        });
    HealthSpec {
        check: check.to_string(),
        probe,
        timing: Timing {
            // A probe at most every 100 ms: a typo ("1ms") must not turn the
            // daemon into a load generator.
            interval_ms: ms(h.interval, def.interval_ms).max(100),
            timeout_ms: ms(h.timeout, def.timeout_ms).max(1),
            initial_delay_ms: ms(h.initial_delay, def.initial_delay_ms),
            failure_threshold: h.failure_threshold.unwrap_or(def.failure_threshold).max(1),
            success_threshold: h.success_threshold.unwrap_or(def.success_threshold).max(1),
        },
        on_failure: match &h.on_failure {
            // As a Kubernetes liveness probe: restart, within the budget.
            None | Some(OnFailure::Restart) => FailureAction::Restart,
            Some(OnFailure::Nothing) => FailureAction::Nothing,
            Some(OnFailure::Alert) => FailureAction::Alert,
            Some(OnFailure::Call(_)) => FailureAction::Closure,
        },
        budget,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::rc::Rc;

    use sparrow_lang::{FixedHost, Loader, NoModules};

    use super::*;

    fn specs(text: &str) -> Vec<Spec> {
        let loaded = Loader::new(Rc::new(FixedHost::debian())).load(
            Path::new("/defs/t.sparrow"),
            text,
            Rc::new(NoModules),
        );
        assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
        loaded.units.iter().filter_map(spec_of).collect()
    }

    #[test]
    fn any_runtime_feature_makes_a_unit_managed() {
        let cases = [
            (r#"health: #{ check: || true }"#, "health"),
            (r#"hooks: #{ pre_start: || () }"#, "hooks"),
            (
                r#"kernel_monitoring: #{ psi: #{ memory: #{ level: "some", threshold: "150ms", window: "2s" } } }"#,
                "kernel_monitoring",
            ),
        ];
        for (key, feature) in cases {
            let s = specs(&format!(
                r#"service("a", #{{ exec_start: "/bin/true", {key} }});"#
            ));
            assert_eq!(s.len(), 1, "{key}");
            assert_eq!(s[0].features, vec![feature.to_string()]);
            assert_eq!(s[0].resources, None);
            assert_eq!(s[0].health.is_some(), feature == "health");
        }
        assert!(specs(r#"service("b", #{ exec_start: "/bin/true" });"#).is_empty());
    }

    #[test]
    fn health_comes_with_documented_defaults_and_every_probe_setting() {
        let s = specs(
            r#"service("h", #{ exec_start: "/bin/true",
                health: #{ type: "http", url: "http://127.0.0.1:8080/health",
                    expect: #{ status: 204, body: "ok", body_regex: "^o+k$" },
                    headers: ["X-Probe: yes", "Authorization: Bearer t"] } });
               service("t", #{ exec_start: "/bin/true",
                health: #{ type: "tcp", port: 5432, interval: "5s", timeout: "1s",
                    initial_delay: "10s", failure_threshold: 5, success_threshold: 2,
                    on_failure: "alert", restart_budget: #{ max: 1, within: "1h" } } });
               service("c", #{ exec_start: "/bin/true",
                health: #{ check: || true, on_failure: |e| log(e.check) } });"#,
        );
        let h = s[0].health.as_ref().unwrap();
        assert_eq!(
            h.probe,
            ProbeSpec::Http {
                url: "http://127.0.0.1:8080/health".into(),
                status: Some(204),
                body: Some("ok".into()),
                body_regex: Some("^o+k$".into()),
                headers: vec![
                    ("X-Probe".into(), "yes".into()),
                    ("Authorization".into(), "Bearer t".into())
                ],
            }
        );
        // Kubernetes-like defaults; restart within 3 per 10 minutes.
        assert_eq!(h.timing, Timing::default());
        assert_eq!(
            (h.on_failure, h.budget),
            (FailureAction::Restart, BudgetRule::default())
        );
        let t = s[1].health.as_ref().unwrap();
        assert_eq!(
            t.probe,
            ProbeSpec::Tcp {
                host: "127.0.0.1".into(),
                port: 5432
            }
        );
        assert_eq!(
            (
                t.timing.interval_ms,
                t.timing.timeout_ms,
                t.timing.initial_delay_ms
            ),
            (5_000, 1_000, 10_000)
        );
        assert_eq!(
            (t.timing.failure_threshold, t.timing.success_threshold),
            (5, 2)
        );
        assert_eq!(t.on_failure, FailureAction::Alert);
        assert_eq!((t.budget.max, t.budget.within_ms), (1, 3_600_000));
        let c = s[2].health.as_ref().unwrap();
        assert_eq!(
            (c.check.as_str(), &c.probe, c.on_failure),
            ("check", &ProbeSpec::Closure, FailureAction::Closure)
        );
    }

    #[test]
    fn resources_come_with_their_hysteresis_settings() {
        let s = specs(
            r#"service("c", #{ exec_start: "/bin/true", cpu_weight: || 200,
                monitor: #{ interval: "30s", min_dwell: "2min", max_changes_per_minute: 3,
                    change_threshold: #{ memory_max: "64M", cpu_quota: "10%" },
                    resources: || #{ memory_max: "1G" } } });"#,
        );
        let r = s[0].resources.as_ref().unwrap();
        assert_eq!(
            (r.interval_ms, r.min_dwell_ms, r.max_changes_per_minute),
            (30_000, 120_000, 3)
        );
        assert_eq!(r.thresholds[&Prop::MemoryMax], Threshold::Abs(64 << 20));
        // cpu_quota thresholds are percentage points of one CPU, in µs/s.
        assert_eq!(r.thresholds[&Prop::CpuQuota], Threshold::Abs(100_000));
        assert!(r.closure);
        assert_eq!(r.dynamic, vec![Prop::CpuWeight]);
        assert_eq!(s[0].features, vec!["resources".to_string()]);
    }
}
