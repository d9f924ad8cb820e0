//! The runtime keys' shapes, as data: what `hooks`, `monitor`, `health`,
//! `kernel_monitoring` and the rest may contain. `schema` validates against
//! them; `docs/keys.md` is generated from them.

use crate::schema::{Field, Shape};

const LEVELS: &[&str] = &["some", "full"];
const SCOPES: &[&str] = &["service", "system"];
const CHECK_TYPES: &[&str] = &["http", "tcp", "exec"];
const ON_FAILURE: &[&str] = &["restart", "alert", "none"];

macro_rules! field {
    ($name:literal $(| $alias:literal)*, $shape:expr, $doc:literal) => {
        Field { name: $name, aliases: &[$($alias),*], shape: $shape, doc: $doc }
    };
}

/// `hooks`.
pub static HOOKS: Shape = Shape::Map(&[
    field!(
        "pre_start",
        Shape::Closure(0, 1),
        "runs before start (given the unit's context); throw or return false to fail the start"
    ),
    field!("post_start", Shape::Closure(0, 1), "runs after start"),
    field!("pre_stop", Shape::Closure(0, 1), "runs before stop"),
    field!("post_stop", Shape::Closure(0, 1), "runs after stop"),
    field!(
        "resources" | "resource_check",
        Shape::Closure(0, 0),
        "same as `monitor.resources`"
    ),
]);

/// `orchestration`.
pub static ORCHESTRATION: Shape = Shape::Map(&[
    field!(
        "requires",
        Shape::Units,
        "units (or a closure returning them, run at generation time) → `Requires=` + `After=`"
    ),
    field!(
        "startup_sequence",
        Shape::Sequence,
        "steps run in order before start: `[\"desc\", \"plugin\", #{..}]`, a command, a closure, or a Sparrow6 text block (docs/language.md), which expands into its task steps"
    ),
]);

const THRESHOLD_MAP: Shape = Shape::ResourceMap(&Shape::Threshold);

/// `monitor`.
pub static MONITOR: Shape = Shape::Map(&[
    field!(
        "interval",
        Shape::Duration,
        "how often to evaluate (default 60s)"
    ),
    field!(
        "resources" | "resource_check",
        Shape::Closure(0, 0),
        "returns a map of resource keys to apply live"
    ),
    field!(
        "change_threshold",
        THRESHOLD_MAP,
        "per resource key: the smallest change worth applying"
    ),
    field!(
        "min_dwell",
        Shape::Duration,
        "least time between two changes of one property"
    ),
    field!(
        "max_changes_per_minute",
        Shape::Int(1, 600),
        "cap on live changes per minute for this unit"
    ),
    field!(
        "pattern_check",
        Shape::Closure(0, 0),
        "closure for log/pattern monitoring, run every `interval` and when a `watch` file changes; may return `#{ environment: #{..} }` or resource keys"
    ),
    field!(
        "watch",
        WATCH,
        "files whose changes run `pattern_check` at once (inotify, coalesced)"
    ),
]);

const WATCH: Shape = Shape::List(&Shape::Path);

const EXPECT: Shape = Shape::Map(&[
    field!(
        "status",
        Shape::Int(100, 599),
        "expected HTTP status (default: any of 200-399)"
    ),
    field!("body", Shape::Str, "text the body must contain"),
    field!(
        "body_regex",
        Shape::Regex,
        "a regex the body (its first 64 KiB) must match"
    ),
]);

const HEADERS: Shape = Shape::List(&Shape::Header);

const BUDGET: Shape = Shape::Map(&[
    field!("max", Shape::Int(0, 1000), "restarts allowed"),
    field!("within", Shape::Duration, "in this window"),
]);

const ON_FAILURE_SHAPE: Shape = Shape::Either(&Shape::Enum(ON_FAILURE), &Shape::Closure(0, 1));

/// `health`.
pub static HEALTH: Shape = Shape::Map(&[
    field!("type", Shape::Enum(CHECK_TYPES), "`http`, `tcp` or `exec`"),
    field!("url", Shape::Url, "for `http`"),
    field!("host", Shape::Str, "for `tcp` (default 127.0.0.1)"),
    field!("port", Shape::Int(1, 65535), "for `tcp`"),
    field!("command", Shape::Command, "for `exec`"),
    field!(
        "expect",
        EXPECT,
        "`status`, `body` and `body_regex` for `http`"
    ),
    field!(
        "headers",
        HEADERS,
        "request headers for `http`: [\"Name: value\", ..]"
    ),
    field!("interval", Shape::Duration, "between checks (default 30s)"),
    field!("timeout", Shape::Duration, "per check (default 5s)"),
    field!("initial_delay", Shape::Duration, "before the first check"),
    field!(
        "failure_threshold",
        Shape::Int(1, 1000),
        "failures in a row before `on_failure` (default 3)"
    ),
    field!(
        "success_threshold",
        Shape::Int(1, 1000),
        "successes in a row to count as healthy again (default 1)"
    ),
    field!(
        "on_failure",
        ON_FAILURE_SHAPE,
        "`restart`, `alert`, `none`, or a closure"
    ),
    field!(
        "restart_budget",
        BUDGET,
        "`max` restarts `within` a window, then alert instead"
    ),
    field!(
        "check",
        Shape::Closure(0, 0),
        "custom check returning true when healthy"
    ),
]);

const PSI_ONE: Shape = Shape::Map(&[
    field!("level", Shape::Enum(LEVELS), "`some` or `full`"),
    field!(
        "threshold",
        Shape::Duration,
        "stall time per window that fires the trigger"
    ),
    field!(
        "window",
        Shape::Duration,
        "trigger window, 500ms..10s (a multiple of 2s without CAP_SYS_RESOURCE)"
    ),
]);

const PSI: Shape = Shape::Map(&[
    field!("memory", PSI_ONE, "memory pressure trigger"),
    field!("cpu", PSI_ONE, "CPU pressure trigger"),
    field!("io", PSI_ONE, "IO pressure trigger"),
    field!(
        "scope",
        Shape::Enum(SCOPES),
        "`service` (its cgroup) or `system` (/proc/pressure)"
    ),
]);

const CGROUP_MEMORY: Shape = Shape::Map(&[
    field!(
        "high_threshold",
        Shape::Percent,
        "`MemoryHigh=` at this share of `memory_max`, and a `memory-high` event when usage crosses it"
    ),
    field!(
        "oom_score",
        Shape::Int(-1000, 1000),
        "`OOMScoreAdjust=`, -1000..1000"
    ),
]);

/// `kernel_monitoring`.
pub static KERNEL: Shape = Shape::Map(&[
    field!("psi", PSI, "PSI triggers"),
    field!("cgroup_memory", CGROUP_MEMORY, "cgroup v2 `memory.events`"),
]);

/// `pressure_response`.
pub static PRESSURE_RESPONSE: Shape = Shape::Closure(1, 1);

/// `adaptive_resources`.
pub static ADAPTIVE: Shape = Shape::Map(&[
    field!(
        "kernel_signals",
        Shape::Bool,
        "call `strategy` on kernel signals"
    ),
    field!(
        "strategy" | "adaptation_strategy",
        Shape::Closure(1, 1),
        "`|signals| ..` returning properties to apply"
    ),
]);
