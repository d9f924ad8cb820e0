//! What the daemon manages for a unit, read from its typed runtime spec:
//! plain data, so it can leave the evaluator process that loaded the
//! definition. One part per runtime feature; a unit is managed when any
//! part is present.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use sparrow_lang::value::Size;
use sparrow_lang::UnitDecl;
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
    if decl.name.is_template() || rt.is_empty() {
        return None;
    }
    let monitor = &rt.monitor;
    let dynamic: Vec<Prop> = rt
        .dynamic
        .iter()
        .filter_map(|(k, _)| Prop::from_key(k))
        .collect();
    let ms = |d: Option<std::time::Duration>| d.map(|d| d.as_millis() as u64);
    let resources = (monitor.resources.is_some() || !dynamic.is_empty()).then(|| ResourcesSpec {
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
    })
}
