//! Hysteresis: whether a desired value should replace the live one now.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{Millis, INFINITY};

/// A value as systemd reports it (a number, or a CPU set for `AllowedCPUs`).
/// Every property of ours gives the service more when it is larger
/// (every limit, weight and protection), so "larger" means "growing".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Live {
    /// Bytes, µs per s, a weight or a count; [`INFINITY`] is no limit.
    Num(u64),
    /// CPUs.
    Cpus(BTreeSet<u32>),
}

impl fmt::Display for Live {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Live::Num(INFINITY) => f.write_str("infinity"),
            Live::Num(n) => write!(f, "{n}"),
            Live::Cpus(set) => {
                let v: Vec<String> = set.iter().map(u32::to_string).collect();
                f.write_str(&v.join(" "))
            }
        }
    }
}

/// The smallest change worth applying.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Threshold {
    /// In the property's unit (bytes, µs per s, weight, tasks, CPUs).
    Abs(u64),
    /// A fraction of the live value (`0.1` = 10%).
    Rel(f64),
}

/// What the daemon remembers about changes to one property of one unit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PropHistory {
    /// When it was last changed by us.
    pub last_change: Option<Millis>,
    /// What systemd reported right after our last change.
    pub last_value: Option<Live>,
    /// What we asked for in that change (systemd may round it, e.g. page
    /// sizes for percentages, so the two can differ).
    pub last_target: Option<Live>,
}

/// The outcome of [`judge`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Already live; nothing to do (also after a daemon restart).
    Same,
    /// Differs by `delta`, which is not more than the threshold.
    BelowThreshold {
        /// The difference.
        delta: u64,
    },
    /// A shrink within `min_dwell` of the last change; try again later.
    Dwell {
        /// Milliseconds until it may be applied.
        wait_ms: u64,
    },
    /// Apply it.
    Apply {
        /// Whether it gives the service more than it has.
        growing: bool,
    },
}

/// Size of a change and whether it grows the service.
fn delta(target: &Live, live: &Live) -> (u64, bool) {
    match (target, live) {
        (Live::Num(t), Live::Num(l)) => {
            let d = if *t == INFINITY || *l == INFINITY {
                INFINITY
            } else {
                t.abs_diff(*l)
            };
            (d, t > l)
        }
        (Live::Cpus(t), Live::Cpus(l)) => {
            (t.symmetric_difference(l).count() as u64, t.len() > l.len())
        }
        // Different kinds cannot be compared: treat as a large change.
        _ => (INFINITY, true),
    }
}

fn exceeds(delta: u64, live: &Live, threshold: Option<Threshold>) -> bool {
    match threshold {
        None => delta > 0,
        Some(Threshold::Abs(t)) => delta > t,
        Some(Threshold::Rel(f)) => match live {
            Live::Num(INFINITY) | Live::Num(0) => delta > 0,
            Live::Num(l) => delta as f64 > f * *l as f64,
            Live::Cpus(set) => delta as f64 > f * set.len() as f64,
        },
    }
}

/// Whether `target` should replace `live` now.
pub fn judge(
    target: &Live,
    live: &Live,
    threshold: Option<Threshold>,
    min_dwell_ms: u64,
    history: &PropHistory,
    now: Millis,
) -> Verdict {
    if target == live {
        return Verdict::Same;
    }
    // Asked for before and still as systemd reported it then: nothing to do,
    // even if systemd stored a rounded value.
    if history.last_target.as_ref() == Some(target) && history.last_value.as_ref() == Some(live) {
        return Verdict::Same;
    }
    let (d, growing) = delta(target, live);
    if !exceeds(d, live, threshold) {
        return Verdict::BelowThreshold { delta: d };
    }
    if !growing {
        if let Some(last) = history.last_change {
            // A clock that went backwards counts as "just changed".
            let elapsed = now.saturating_sub(last);
            if elapsed < min_dwell_ms {
                return Verdict::Dwell {
                    wait_ms: min_dwell_ms - elapsed,
                };
            }
        }
    }
    Verdict::Apply { growing }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;
    const MIN: u64 = 60_000;

    fn num(n: u64) -> Live {
        Live::Num(n)
    }

    fn changed_at(t: Millis) -> PropHistory {
        PropHistory {
            last_change: Some(t),
            ..PropHistory::default()
        }
    }

    #[test]
    fn table() {
        let never = PropHistory::default();
        type Case = (
            &'static str,
            Live,
            Live,
            Option<Threshold>,
            u64,
            PropHistory,
            Millis,
            Verdict,
        );
        let cases: Vec<Case> = vec![
            (
                "equal is nothing to do",
                num(512 * MIB),
                num(512 * MIB),
                None,
                0,
                never.clone(),
                0,
                Verdict::Same,
            ),
            (
                "any change without a threshold",
                num(513 * MIB),
                num(512 * MIB),
                None,
                0,
                never.clone(),
                0,
                Verdict::Apply { growing: true },
            ),
            (
                "under an absolute threshold",
                num(560 * MIB),
                num(512 * MIB),
                Some(Threshold::Abs(100 * MIB)),
                0,
                never.clone(),
                0,
                Verdict::BelowThreshold { delta: 48 * MIB },
            ),
            (
                "exactly the threshold is not more than it",
                num(612 * MIB),
                num(512 * MIB),
                Some(Threshold::Abs(100 * MIB)),
                0,
                never.clone(),
                0,
                Verdict::BelowThreshold { delta: 100 * MIB },
            ),
            (
                "over an absolute threshold",
                num(613 * MIB),
                num(512 * MIB),
                Some(Threshold::Abs(100 * MIB)),
                0,
                never.clone(),
                0,
                Verdict::Apply { growing: true },
            ),
            (
                "relative threshold, under",
                num(1050),
                num(1000),
                Some(Threshold::Rel(0.1)),
                0,
                never.clone(),
                0,
                Verdict::BelowThreshold { delta: 50 },
            ),
            (
                "relative threshold, over",
                num(1101),
                num(1000),
                Some(Threshold::Rel(0.1)),
                0,
                never.clone(),
                0,
                Verdict::Apply { growing: true },
            ),
            (
                "to infinity is a large growth",
                num(INFINITY),
                num(512 * MIB),
                Some(Threshold::Abs(100 * MIB)),
                0,
                never.clone(),
                0,
                Verdict::Apply { growing: true },
            ),
            (
                "from infinity is a large shrink",
                num(512 * MIB),
                num(INFINITY),
                Some(Threshold::Rel(0.5)),
                MIN,
                never.clone(),
                0,
                Verdict::Apply { growing: false },
            ),
            (
                "from zero, any change",
                num(1),
                num(0),
                Some(Threshold::Rel(0.5)),
                0,
                never.clone(),
                0,
                Verdict::Apply { growing: true },
            ),
            (
                "shrinking waits for the dwell",
                num(256 * MIB),
                num(512 * MIB),
                None,
                5 * MIN,
                changed_at(1_000_000),
                1_000_000 + 2 * MIN,
                Verdict::Dwell { wait_ms: 3 * MIN },
            ),
            (
                "shrinking after the dwell",
                num(256 * MIB),
                num(512 * MIB),
                None,
                5 * MIN,
                changed_at(1_000_000),
                1_000_000 + 5 * MIN,
                Verdict::Apply { growing: false },
            ),
            (
                "growing does not wait",
                num(1024 * MIB),
                num(512 * MIB),
                None,
                5 * MIN,
                changed_at(1_000_000),
                1_000_001,
                Verdict::Apply { growing: true },
            ),
            (
                "never changed: no dwell",
                num(256 * MIB),
                num(512 * MIB),
                None,
                5 * MIN,
                never.clone(),
                0,
                Verdict::Apply { growing: false },
            ),
            (
                "clock went backwards: wait the whole dwell",
                num(256 * MIB),
                num(512 * MIB),
                None,
                5 * MIN,
                changed_at(2_000_000),
                1_000_000,
                Verdict::Dwell { wait_ms: 5 * MIN },
            ),
            (
                "threshold before dwell",
                num(500 * MIB),
                num(512 * MIB),
                Some(Threshold::Abs(64 * MIB)),
                5 * MIN,
                changed_at(0),
                1,
                Verdict::BelowThreshold { delta: 12 * MIB },
            ),
            (
                "cpu quota in µs per s, 20% threshold",
                num(1_100_000),
                num(1_000_000),
                Some(Threshold::Abs(200_000)),
                0,
                never.clone(),
                0,
                Verdict::BelowThreshold { delta: 100_000 },
            ),
            (
                "more CPUs grow",
                Live::Cpus([0, 1, 2].into()),
                Live::Cpus([0, 1].into()),
                None,
                MIN,
                changed_at(0),
                1,
                Verdict::Apply { growing: true },
            ),
            (
                "other CPUs, same count, shrink-dwell applies",
                Live::Cpus([2, 3].into()),
                Live::Cpus([0, 1].into()),
                None,
                MIN,
                changed_at(0),
                1,
                Verdict::Dwell { wait_ms: MIN - 1 },
            ),
            (
                "applied before and rounded by systemd: nothing to do",
                num(2_834_853_888),
                num(2_834_677_760),
                None,
                0,
                PropHistory {
                    last_change: Some(0),
                    last_value: Some(num(2_834_677_760)),
                    last_target: Some(num(2_834_853_888)),
                },
                1,
                Verdict::Same,
            ),
            (
                "changed since by someone else: apply again",
                num(2_834_853_888),
                num(1 << 30),
                None,
                0,
                PropHistory {
                    last_change: Some(0),
                    last_value: Some(num(2_834_677_760)),
                    last_target: Some(num(2_834_853_888)),
                },
                1,
                Verdict::Apply { growing: true },
            ),
        ];
        for (name, target, live, th, dwell, hist, now, want) in cases {
            assert_eq!(judge(&target, &live, th, dwell, &hist, now), want, "{name}");
        }
    }

    #[test]
    fn a_noisy_metric_cannot_flap() {
        // A closure alternating between two values every evaluation (10 s):
        // growth applies at once, each shrink waits min_dwell (2 min), so
        // over 20 minutes there are at most 2 changes per 2 minutes.
        let (hi, lo) = (num(1024 * MIB), num(512 * MIB));
        let mut live = lo.clone();
        let mut hist = PropHistory::default();
        let mut changes = Vec::new();
        for step in 0..120u64 {
            let now = step * 10_000;
            let target = if step % 2 == 0 { &hi } else { &lo };
            if let Verdict::Apply { .. } = judge(target, &live, None, 2 * MIN, &hist, now) {
                live = target.clone();
                hist = PropHistory {
                    last_change: Some(now),
                    last_value: Some(live.clone()),
                    last_target: Some(live.clone()),
                };
                changes.push(now);
            }
        }
        for w in changes.windows(3) {
            assert!(
                w[2] - w[0] >= 2 * MIN,
                "three changes within the dwell: {changes:?}"
            );
        }
        assert!(changes.len() <= 21, "{} changes", changes.len());
    }
}
