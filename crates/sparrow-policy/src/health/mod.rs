//! Health checks, decided: what a probe's results make of a unit, when the
//! next probe is due, and whether a failure may restart the unit.
//!
//! Meanings follow Kubernetes' probes: `failure_threshold` failures in a
//! row make the unit unhealthy (the action fires once, on that edge);
//! `success_threshold` successes in a row make it healthy again. Probing
//! starts `initial_delay` after each start, runs every `interval` while the
//! unit is active, and everything counted is forgotten at each start.
//!
//! [`Budget`] is the restart allowance: at most `max` restarts within a
//! sliding window. A spent budget refuses restarts (and asks for ONE alert)
//! until the unit is healthy again or an admin resets it. It is plain data
//! (serde), so the daemon can keep it across its own restarts.
//!
//! **Boundary:** no I/O and no clock: time is [`Millis`], passed in.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::Millis;

/// When and how often to probe, and what counts (documented defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timing {
    /// Between the end of one probe and the start of the next.
    pub interval_ms: u64,
    /// A probe that takes longer fails.
    pub timeout_ms: u64,
    /// After each start, before the first probe.
    pub initial_delay_ms: u64,
    /// Failures in a row that make the unit unhealthy.
    pub failure_threshold: u32,
    /// Successes in a row that make it healthy.
    pub success_threshold: u32,
}

impl Default for Timing {
    /// Every 30 s, 5 s per probe, no delay, 3 failures, 1 success.
    fn default() -> Timing {
        Timing {
            interval_ms: 30_000,
            timeout_ms: 5_000,
            initial_delay_ms: 0,
            failure_threshold: 3,
            success_threshold: 1,
        }
    }
}

/// What is known of a unit's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    /// Not probed enough since the last start to say.
    Unknown,
    /// `success_threshold` successes in a row.
    Healthy,
    /// `failure_threshold` failures in a row.
    Unhealthy,
}

/// What one probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It passed, in this many milliseconds.
    Passed(u64),
    /// It failed (or timed out) after this many milliseconds, for this reason.
    Failed(u64, String),
}

/// A change worth acting on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edge {
    /// Nothing changed.
    None,
    /// The unit just became unhealthy: run `on_failure`.
    BecameUnhealthy,
    /// The unit just became healthy.
    BecameHealthy,
}

/// One check of one unit: counts, state, and when to probe next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// The current verdict.
    pub health: Health,
    /// Failures in a row.
    pub failures: u32,
    /// Successes in a row.
    pub successes: u32,
    /// The last failure's reason, kept until a success.
    pub last_error: Option<String>,
    /// How long the last probe took.
    pub last_latency_ms: Option<u64>,
    /// When the next probe is due; `None` while the unit is not active.
    pub due: Option<Millis>,
}

impl Default for Check {
    fn default() -> Check {
        Check {
            health: Health::Unknown,
            failures: 0,
            successes: 0,
            last_error: None,
            last_latency_ms: None,
            due: None,
        }
    }
}

impl Check {
    /// The unit (re)started at `now`: forget everything, probe after the delay.
    pub fn started(&mut self, now: Millis, t: &Timing) {
        *self = Check {
            due: Some(now.saturating_add(t.initial_delay_ms)),
            ..Check::default()
        };
    }

    /// The unit is no longer active: no probes until it starts again.
    pub fn stopped(&mut self) {
        *self = Check::default();
    }

    /// Whether a probe is due at `now`.
    pub fn is_due(&self, now: Millis) -> bool {
        self.due.is_some_and(|d| now >= d)
    }

    /// Records a probe that ended at `now`; the next one is due an
    /// interval later. Results for a unit that is not active (a probe
    /// that was running when it stopped) are ignored.
    pub fn record(&mut self, now: Millis, outcome: Outcome, t: &Timing) -> Edge {
        if self.due.is_none() {
            return Edge::None;
        }
        self.due = Some(now.saturating_add(t.interval_ms));
        match outcome {
            Outcome::Passed(ms) => {
                self.last_latency_ms = Some(ms);
                self.last_error = None;
                self.failures = 0;
                self.successes = self.successes.saturating_add(1);
                if self.health != Health::Healthy && self.successes >= t.success_threshold.max(1) {
                    self.health = Health::Healthy;
                    return Edge::BecameHealthy;
                }
            }
            Outcome::Failed(ms, why) => {
                self.last_latency_ms = Some(ms);
                self.last_error = Some(why);
                self.successes = 0;
                self.failures = self.failures.saturating_add(1);
                if self.health != Health::Unhealthy && self.failures >= t.failure_threshold.max(1) {
                    self.health = Health::Unhealthy;
                    return Edge::BecameUnhealthy;
                }
            }
        }
        Edge::None
    }
}

/// At most `max` restarts within `within_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetRule {
    /// Restarts allowed in the window.
    pub max: u32,
    /// The window.
    pub within_ms: u64,
}

impl Default for BudgetRule {
    /// 3 restarts in 10 minutes.
    fn default() -> BudgetRule {
        BudgetRule {
            max: 3,
            within_ms: 600_000,
        }
    }
}

/// What a restart request gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allowance {
    /// Restart (counted).
    Restart,
    /// The budget is spent: do not restart. `alert` is true the first time
    /// only, and at most once per window: a unit that flaps (healthy for a
    /// probe, then failing again) raises one alert, not one per flap.
    Exhausted {
        /// Raise the (one) alert now.
        alert: bool,
    },
}

/// Restarts made within the window, and whether the budget is spent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Budget {
    /// When each counted restart was made, oldest first.
    pub restarts: VecDeque<Millis>,
    /// Spent: refusing until healthy again or reset.
    pub exhausted: bool,
    /// When the last "spent" alert was raised.
    #[serde(default)]
    pub alerted_at: Option<Millis>,
}

impl Budget {
    /// Asks for a restart at `now`.
    pub fn request(&mut self, now: Millis, rule: &BudgetRule) -> Allowance {
        while self
            .restarts
            .front()
            .is_some_and(|t| now.saturating_sub(*t) >= rule.within_ms)
        {
            self.restarts.pop_front();
        }
        if !self.exhausted && self.restarts.len() < rule.max as usize {
            self.restarts.push_back(now);
            return Allowance::Restart;
        }
        let alert = !self.exhausted
            && self
                .alerted_at
                .is_none_or(|t| now.saturating_sub(t) >= rule.within_ms);
        self.exhausted = true;
        if alert {
            self.alerted_at = Some(now);
        }
        Allowance::Exhausted { alert }
    }

    /// The unit is healthy again: a spent budget may restart again once
    /// the window has room (restarts already made still count).
    pub fn healthy_again(&mut self) {
        self.exhausted = false;
    }

    /// An admin's reset: nothing counted, nothing spent.
    pub fn reset(&mut self) {
        *self = Budget::default();
    }
}

#[cfg(test)]
mod tests;
