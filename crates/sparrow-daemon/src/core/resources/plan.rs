//! Deciding with hysteresis: which desired values to apply now, given the
//! live values, the thresholds, the dwell time and the caps. Pure.

use std::collections::BTreeMap;

use sparrow_policy::{judge, Live, Prop, PropHistory, RateLimit, Target, Verdict};

use super::Millis;
use crate::control::Decision;
use crate::spec::ResourcesSpec;

/// The decision for one evaluation of one unit.
#[derive(Debug)]
pub struct Plan {
    /// What was decided per property.
    pub decisions: Vec<Decision>,
    /// What to apply (with the reason), if anything.
    pub apply: Vec<(Target, String)>,
}

/// How a value is shown to people: sizes with units, quotas in percent.
pub fn show(prop: Prop, v: &Live) -> String {
    match (prop, v) {
        (_, Live::Num(sparrow_policy::INFINITY)) => "infinity".into(),
        (Prop::CpuQuota, Live::Num(us)) => format!("{}%", *us as f64 / 10_000.0),
        (p, Live::Num(n)) if p.key().starts_with("memory") => sparrow_lang::value::render_size(*n),
        (_, v) => v.to_string(),
    }
}

/// Decides which of `targets` to apply now: hysteresis per property
/// (threshold, dwell), then the unit's and the daemon's caps. The limits
/// record what is approved (unless `dry_run`).
#[allow(clippy::too_many_arguments)]
pub fn plan(
    targets: &[Target],
    live: &BTreeMap<Prop, Live>,
    spec: &ResourcesSpec,
    history: &BTreeMap<Prop, PropHistory>,
    unit_cap: &mut RateLimit,
    global: &mut RateLimit,
    now: Millis,
    dry_run: bool,
) -> Plan {
    let mut decisions = Vec::new();
    let mut apply = Vec::new();
    for t in targets {
        let Some(l) = live.get(&t.prop) else { continue };
        let h = history.get(&t.prop).cloned().unwrap_or_default();
        let v = judge(
            &t.value,
            l,
            spec.thresholds.get(&t.prop).copied(),
            spec.min_dwell_ms,
            &h,
            now,
        );
        let verdict = match v {
            Verdict::Same => "same".to_string(),
            Verdict::BelowThreshold { delta } => format!(
                "below threshold (changes by {})",
                show(t.prop, &Live::Num(delta))
            ),
            Verdict::Dwell { wait_ms } => format!("dwell ({} s left)", wait_ms.div_ceil(1000)),
            Verdict::Apply { growing } => {
                if !unit_cap.allows(now) {
                    format!(
                        "unit cap ({} changes per minute)",
                        spec.max_changes_per_minute
                    )
                } else if !global.allows(now) {
                    "daemon cap (changes per minute across units)".to_string()
                } else {
                    if !dry_run {
                        unit_cap.record(now);
                        global.record(now);
                    }
                    let reason = if growing { "grow" } else { "shrink" };
                    apply.push((
                        t.clone(),
                        format!("{reason}: the closure asked for {}", show(t.prop, &t.value)),
                    ));
                    "apply".to_string()
                }
            }
        };
        decisions.push(Decision {
            prop: t.prop,
            desired: show(t.prop, &t.value),
            live: show(t.prop, l),
            verdict,
        });
    }
    Plan { decisions, apply }
}
