//! The runtime side of a unit, typed: what the daemon and the hook runner
//! act on. Built from values `schema` already validated, so reading them
//! here cannot fail; nothing downstream reads runtime settings by string.

use std::collections::BTreeMap;
use std::time::Duration;

use rhai::Map;

use crate::closure::Closure;
use crate::schema::RtValue;
use crate::value::Size;

/// Everything a unit asks of the daemon and the hook runner. A unit is
/// managed when any part is present ([`RuntimeSpec::is_empty`]).
#[derive(Debug, Clone, Default)]
pub struct RuntimeSpec {
    /// `monitor`: the resources closure and its hysteresis settings.
    pub monitor: Monitor,
    /// Resource keys whose value is a closure (dynamic properties), by
    /// canonical key, evaluated again while the unit runs.
    pub dynamic: Vec<(&'static str, Closure)>,
    /// `health`.
    pub health: Option<Health>,
    /// `hooks`.
    pub hooks: Hooks,
    /// `orchestration.startup_sequence`.
    pub startup_sequence: Vec<Step>,
    /// `kernel_monitoring`.
    pub kernel: Option<KernelMonitoring>,
    /// `pressure_response`: called with each kernel event.
    pub pressure_response: Option<Closure>,
    /// `adaptive_resources`.
    pub adaptive: Option<Adaptive>,
}

impl RuntimeSpec {
    /// Whether nothing at runtime concerns this unit.
    pub fn is_empty(&self) -> bool {
        self.features().is_empty()
    }

    /// The runtime features present, by the key that asks for them.
    pub fn features(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.monitor.resources.is_some() || !self.dynamic.is_empty() {
            out.push("resources");
        }
        if self.monitor.pattern_check.is_some() {
            out.push("pattern_check");
        }
        if self.health.is_some() {
            out.push("health");
        }
        if !self.hooks.is_empty() {
            out.push("hooks");
        }
        if !self.startup_sequence.is_empty() {
            out.push("startup_sequence");
        }
        if self.kernel.is_some() {
            out.push("kernel_monitoring");
        }
        if self.pressure_response.is_some() {
            out.push("pressure_response");
        }
        if self.adaptive.is_some() {
            out.push("adaptive_resources");
        }
        out
    }
}

/// `monitor` (and `hooks.resources`, its older spelling).
#[derive(Debug, Clone, Default)]
pub struct Monitor {
    /// How often to evaluate; `None` means the daemon's default.
    pub interval: Option<Duration>,
    /// Returns a map of resource keys to apply live.
    pub resources: Option<Closure>,
    /// Per canonical resource key, the smallest change worth applying.
    pub change_threshold: BTreeMap<String, Size>,
    /// Least time between a change of a property and a shrink of it.
    pub min_dwell: Option<Duration>,
    /// Cap on live changes per minute for this unit.
    pub max_changes_per_minute: Option<u32>,
    /// Periodic closure for log and pattern monitoring.
    pub pattern_check: Option<Closure>,
    /// Files whose changes run `pattern_check` at once.
    pub watch: Vec<String>,
}

/// `hooks`: closures run around the unit's lifecycle.
#[derive(Debug, Clone, Default)]
pub struct Hooks {
    /// Before start (`ExecStartPre=`).
    pub pre_start: Option<Closure>,
    /// After start.
    pub post_start: Option<Closure>,
    /// Before stop.
    pub pre_stop: Option<Closure>,
    /// After stop.
    pub post_stop: Option<Closure>,
}

impl Hooks {
    /// Whether no hook is set.
    pub fn is_empty(&self) -> bool {
        self.pre_start.is_none()
            && self.post_start.is_none()
            && self.pre_stop.is_none()
            && self.post_stop.is_none()
    }
}

/// One step of `orchestration.startup_sequence`.
#[derive(Debug, Clone)]
pub enum Step {
    /// `["desc", "plugin", #{params}]`: run a task.
    Task {
        /// Its description.
        desc: String,
        /// The plugin.
        plugin: String,
        /// Its parameters.
        params: Map,
    },
    /// A command (argv).
    Command(Vec<String>),
    /// A closure.
    Closure(Closure),
}

/// What a health check probes.
#[derive(Debug, Clone)]
pub enum Probe {
    /// An HTTP request.
    Http {
        /// The URL.
        url: String,
        /// The status expected, if any.
        status: Option<u16>,
        /// Text the body must contain, if any.
        body: Option<String>,
        /// A regex the body must match, if any.
        body_regex: Option<String>,
        /// Request headers (`Name`, `value`).
        headers: Vec<(String, String)>,
    },
    /// A TCP connection.
    Tcp {
        /// The host (default 127.0.0.1).
        host: String,
        /// The port.
        port: u16,
    },
    /// A command's exit status.
    Exec(Vec<String>),
    /// The `check` closure.
    Check(Closure),
}

/// What follows a failed health check.
#[derive(Debug, Clone)]
pub enum OnFailure {
    /// Restart the unit (within the budget).
    Restart,
    /// Raise an alert.
    Alert,
    /// Nothing but the status.
    Nothing,
    /// Call this closure.
    Call(Closure),
}

/// `health`.
#[derive(Debug, Clone)]
pub struct Health {
    /// What is probed.
    pub probe: Probe,
    /// Between checks.
    pub interval: Option<Duration>,
    /// Per check.
    pub timeout: Option<Duration>,
    /// Before the first check after each start.
    pub initial_delay: Option<Duration>,
    /// Failures in a row before `on_failure`.
    pub failure_threshold: Option<u32>,
    /// Successes in a row to count as healthy again.
    pub success_threshold: Option<u32>,
    /// What follows a failure.
    pub on_failure: Option<OnFailure>,
    /// At most `.0` restarts within `.1`.
    pub restart_budget: Option<(u32, Duration)>,
}

/// One PSI trigger.
#[derive(Debug, Clone, PartialEq)]
pub struct PsiTrigger {
    /// `some` or `full`.
    pub full: bool,
    /// Stall time per window that fires it.
    pub threshold: Duration,
    /// The window.
    pub window: Duration,
}

/// `kernel_monitoring`.
#[derive(Debug, Clone, Default)]
pub struct KernelMonitoring {
    /// PSI triggers by resource (`memory`, `cpu`, `io`).
    pub psi: BTreeMap<String, PsiTrigger>,
    /// The unit's own cgroup (`service`, the default) or the whole system.
    pub system_scope: bool,
    /// `cgroup_memory.high_threshold`: a percentage of the memory limit.
    pub memory_high_threshold: Option<f64>,
    /// `cgroup_memory.oom_score` (rendered as `OOMScoreAdjust=`).
    pub oom_score: Option<i64>,
}

/// `adaptive_resources`.
#[derive(Debug, Clone)]
pub struct Adaptive {
    /// Call `strategy` on kernel signals.
    pub kernel_signals: bool,
    /// `|signals| ..` returning properties.
    pub strategy: Option<Closure>,
}

fn duration(v: Option<&RtValue>) -> Option<Duration> {
    match v? {
        RtValue::Duration(_, usec) => Some(Duration::from_micros(*usec)),
        _ => None,
    }
}

fn closure(v: Option<&RtValue>) -> Option<Closure> {
    match v? {
        RtValue::Closure(c) => Some(c.clone()),
        _ => None,
    }
}

fn int(v: Option<&RtValue>) -> Option<i64> {
    match v? {
        RtValue::Int(n) => Some(*n),
        _ => None,
    }
}

fn text(v: Option<&RtValue>) -> Option<String> {
    match v? {
        RtValue::Str(s) => Some(s.clone()),
        _ => None,
    }
}

fn step(v: &RtValue) -> Option<Step> {
    Some(match v {
        RtValue::Task(desc, plugin, params) => Step::Task {
            desc: desc.clone(),
            plugin: plugin.clone(),
            params: params.clone(),
        },
        RtValue::Command(argv) => Step::Command(argv.clone()),
        RtValue::Closure(c) => Step::Closure(c.clone()),
        _ => return None,
    })
}

fn health(h: &RtValue) -> Option<Health> {
    let probe = if let Some(c) = closure(h.get("check")) {
        Probe::Check(c)
    } else {
        match text(h.get("type"))?.as_str() {
            "http" => Probe::Http {
                url: text(h.get("url"))?,
                status: int(h.get("expect").and_then(|e| e.get("status")))
                    .and_then(|n| u16::try_from(n).ok()),
                body: text(h.get("expect").and_then(|e| e.get("body"))),
                body_regex: text(h.get("expect").and_then(|e| e.get("body_regex"))),
                headers: match h.get("headers") {
                    Some(RtValue::List(l)) => {
                        l.iter()
                            .filter_map(|v| match v {
                                RtValue::Str(s) => crate::value::header(s)
                                    .map(|(n, v)| (n.to_string(), v.to_string())),
                                _ => None,
                            })
                            .collect()
                    }
                    _ => Vec::new(),
                },
            },
            "tcp" => Probe::Tcp {
                host: text(h.get("host")).unwrap_or_else(|| "127.0.0.1".into()),
                port: u16::try_from(int(h.get("port"))?).ok()?,
            },
            _ => match h.get("command")? {
                RtValue::Command(argv) => Probe::Exec(argv.clone()),
                _ => return None,
            },
        }
    };
    let on_failure = match h.get("on_failure") {
        Some(RtValue::Str(s)) => Some(match s.as_str() {
            "restart" => OnFailure::Restart,
            "alert" => OnFailure::Alert,
            _ => OnFailure::Nothing,
        }),
        Some(RtValue::Closure(c)) => Some(OnFailure::Call(c.clone())),
        _ => None,
    };
    let budget = h.get("restart_budget").and_then(|b| {
        Some((
            u32::try_from(int(b.get("max"))?).ok()?,
            duration(b.get("within"))?,
        ))
    });
    let count = |k: &str| int(h.get(k)).and_then(|n| u32::try_from(n).ok());
    Some(Health {
        probe,
        interval: duration(h.get("interval")),
        timeout: duration(h.get("timeout")),
        initial_delay: duration(h.get("initial_delay")),
        failure_threshold: count("failure_threshold"),
        success_threshold: count("success_threshold"),
        on_failure,
        restart_budget: budget,
    })
}

fn kernel(k: &RtValue) -> KernelMonitoring {
    let mut out = KernelMonitoring::default();
    if let Some(RtValue::Map(psi)) = k.get("psi") {
        for (resource, t) in psi {
            if resource == "scope" {
                out.system_scope = matches!(t, RtValue::Str(s) if s == "system");
                continue;
            }
            if let (Some(threshold), Some(window)) =
                (duration(t.get("threshold")), duration(t.get("window")))
            {
                out.psi.insert(
                    resource.clone(),
                    PsiTrigger {
                        full: matches!(t.get("level"), Some(RtValue::Str(s)) if s == "full"),
                        threshold,
                        window,
                    },
                );
            }
        }
    }
    if let Some(RtValue::Percent(p)) = k.get("cgroup_memory").and_then(|c| c.get("high_threshold"))
    {
        out.memory_high_threshold = Some(*p);
    }
    out.oom_score = int(k.get("cgroup_memory").and_then(|c| c.get("oom_score")));
    out
}

impl RuntimeSpec {
    /// Builds the typed spec from the validated runtime keys (canonical
    /// names) and the dynamic properties.
    pub(crate) fn from_validated(
        keys: &BTreeMap<String, RtValue>,
        dynamic: Vec<(&'static str, Closure)>,
    ) -> RuntimeSpec {
        let monitor = keys.get("monitor");
        let hooks = keys.get("hooks");
        let mut thresholds = BTreeMap::new();
        if let Some(RtValue::Map(m)) = monitor.and_then(|m| m.get("change_threshold")) {
            for (k, v) in m {
                if let RtValue::Size(s) = v {
                    thresholds.insert(k.clone(), *s);
                }
            }
        }
        RuntimeSpec {
            monitor: Monitor {
                interval: duration(monitor.and_then(|m| m.get("interval"))),
                resources: closure(monitor.and_then(|m| m.get("resources")))
                    .or_else(|| closure(hooks.and_then(|h| h.get("resources")))),
                change_threshold: thresholds,
                min_dwell: duration(monitor.and_then(|m| m.get("min_dwell"))),
                max_changes_per_minute: int(monitor.and_then(|m| m.get("max_changes_per_minute")))
                    .and_then(|n| u32::try_from(n).ok()),
                pattern_check: closure(monitor.and_then(|m| m.get("pattern_check"))),
                watch: match monitor.and_then(|m| m.get("watch")) {
                    Some(RtValue::List(files)) => {
                        files.iter().filter_map(|f| text(Some(f))).collect()
                    }
                    _ => Vec::new(),
                },
            },
            dynamic,
            health: keys.get("health").and_then(health),
            hooks: Hooks {
                pre_start: closure(hooks.and_then(|h| h.get("pre_start"))),
                post_start: closure(hooks.and_then(|h| h.get("post_start"))),
                pre_stop: closure(hooks.and_then(|h| h.get("pre_stop"))),
                post_stop: closure(hooks.and_then(|h| h.get("post_stop"))),
            },
            startup_sequence: match keys
                .get("orchestration")
                .and_then(|o| o.get("startup_sequence"))
            {
                Some(RtValue::List(steps)) => steps.iter().filter_map(step).collect(),
                _ => Vec::new(),
            },
            kernel: keys.get("kernel_monitoring").map(kernel),
            pressure_response: closure(keys.get("pressure_response")),
            adaptive: keys.get("adaptive_resources").map(|a| Adaptive {
                // Called on kernel signals unless `kernel_signals: false`.
                kernel_signals: !matches!(a.get("kernel_signals"), Some(RtValue::Bool(false))),
                strategy: closure(a.get("strategy")),
            }),
        }
    }
}
