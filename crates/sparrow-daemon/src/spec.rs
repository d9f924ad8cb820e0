//! What the daemon manages for a unit, read from its definition: plain
//! data, so it can leave the evaluator thread that loaded the definition.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use sparrow_lang::schema::RtValue;
use sparrow_lang::value::Size;
use sparrow_lang::UnitDecl;
use sparrow_policy::{Prop, Threshold};

/// Evaluate every minute unless `monitor.interval` says otherwise.
pub const DEFAULT_INTERVAL_MS: u64 = 60_000;
/// Do not shrink a property again within a minute of changing it.
pub const DEFAULT_MIN_DWELL_MS: u64 = 60_000;
/// Changes per minute for one unit unless `monitor.max_changes_per_minute` says otherwise.
pub const DEFAULT_UNIT_CAP: usize = 6;

/// A unit the daemon keeps right-sized.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spec {
    /// The unit.
    pub unit: String,
    /// The definition it comes from.
    pub source: PathBuf,
    /// Line of the declaration.
    pub line: usize,
    /// Evaluation interval.
    pub interval_ms: u64,
    /// Least time between a change of a property and a shrink of it.
    pub min_dwell_ms: u64,
    /// Changes per minute for this unit.
    pub max_changes_per_minute: usize,
    /// Per property: the smallest change worth applying.
    pub thresholds: BTreeMap<Prop, Threshold>,
    /// It has a `monitor.resources` closure.
    pub resources: bool,
    /// Resource keys whose value is a closure (dynamic properties).
    pub dynamic: Vec<Prop>,
}

fn duration_ms(v: Option<&RtValue>) -> Option<u64> {
    match v {
        Some(RtValue::Duration(_, usec)) => Some(usec / 1000),
        _ => None,
    }
}

/// A threshold as written (`"100M"`, `"10%"`) for a property, in the units
/// the policy compares: bytes, µs per s, weight, tasks, CPUs. For
/// `cpu_quota` a number or percentage is in percentage points of one CPU;
/// elsewhere a percentage is relative to the live value.
pub fn threshold(prop: Prop, v: &RtValue) -> Option<Threshold> {
    let RtValue::Size(size) = v else { return None };
    Some(match (prop, size) {
        (_, Size::Infinity) => Threshold::Abs(u64::MAX),
        (Prop::CpuQuota, Size::Bytes(n)) => Threshold::Abs(n.saturating_mul(10_000)),
        (Prop::CpuQuota, Size::Percent(p)) => Threshold::Abs((p * 10_000.0).round() as u64),
        (_, Size::Bytes(n)) => Threshold::Abs(*n),
        (_, Size::Percent(p)) => Threshold::Rel(p / 100.0),
    })
}

/// The spec for a declared unit, or `None` when nothing about it changes
/// at runtime. Templates are skipped: their instances are not tracked yet.
pub fn spec_of(decl: &UnitDecl) -> Option<Spec> {
    if decl.name.is_template() {
        return None;
    }
    let monitor = decl.runtime.get("monitor");
    let hooks = decl.runtime.get("hooks");
    let resources = monitor
        .and_then(|m| m.get("resources"))
        .or_else(|| hooks.and_then(|h| h.get("resources")))
        .is_some();
    let dynamic: Vec<Prop> = decl
        .dynamic
        .iter()
        .filter_map(|(k, _)| Prop::from_key(k))
        .collect();
    if !resources && dynamic.is_empty() {
        return None;
    }
    let mut thresholds = BTreeMap::new();
    if let Some(RtValue::Map(m)) = monitor.and_then(|m| m.get("change_threshold")) {
        for (k, v) in m {
            if let Some(p) = Prop::from_key(k) {
                if let Some(t) = threshold(p, v) {
                    thresholds.insert(p, t);
                }
            }
        }
    }
    let cap = match monitor.and_then(|m| m.get("max_changes_per_minute")) {
        Some(RtValue::Int(n)) => usize::try_from(*n).unwrap_or(DEFAULT_UNIT_CAP),
        _ => DEFAULT_UNIT_CAP,
    };
    Some(Spec {
        unit: decl.name.to_string(),
        source: PathBuf::from(&decl.source),
        line: decl.line,
        interval_ms: duration_ms(monitor.and_then(|m| m.get("interval")))
            .unwrap_or(DEFAULT_INTERVAL_MS)
            .max(100),
        min_dwell_ms: duration_ms(monitor.and_then(|m| m.get("min_dwell")))
            .unwrap_or(DEFAULT_MIN_DWELL_MS),
        max_changes_per_minute: cap,
        thresholds,
        resources,
        dynamic,
    })
}
