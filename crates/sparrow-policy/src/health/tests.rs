//! The probe state machine and the restart budget, on a made-up clock.
use super::*;

fn timing(failures: u32, successes: u32) -> Timing {
    Timing {
        interval_ms: 1_000,
        timeout_ms: 500,
        initial_delay_ms: 5_000,
        failure_threshold: failures,
        success_threshold: successes,
    }
}

fn fail() -> Outcome {
    Outcome::Failed(7, "connection refused".into())
}

#[test]
fn probing_waits_for_the_initial_delay_after_each_start() {
    let t = timing(3, 1);
    let mut c = Check::default();
    assert!(!c.is_due(0), "not active: never due");
    c.started(10_000, &t);
    assert!(!c.is_due(14_999));
    assert!(c.is_due(15_000));
    assert_eq!(
        c.record(15_010, Outcome::Passed(10), &t),
        Edge::BecameHealthy
    );
    assert!(!c.is_due(16_009));
    assert!(
        c.is_due(16_010),
        "the next probe is an interval after this one ended"
    );
}

#[test]
fn unhealthy_after_threshold_failures_in_a_row_and_the_edge_fires_once() {
    let t = timing(3, 1);
    let mut c = Check::default();
    c.started(0, &t);
    assert_eq!(c.record(5_000, fail(), &t), Edge::None);
    assert_eq!(c.record(6_000, fail(), &t), Edge::None);
    assert_eq!(c.health, Health::Unknown);
    assert_eq!(c.record(7_000, fail(), &t), Edge::BecameUnhealthy);
    assert_eq!((c.health, c.failures), (Health::Unhealthy, 3));
    assert_eq!(c.last_error.as_deref(), Some("connection refused"));
    // Still failing: no new edge, so on_failure is not run again.
    assert_eq!(c.record(8_000, fail(), &t), Edge::None);
    assert_eq!(c.failures, 4);
}

#[test]
fn a_success_breaks_a_run_of_failures() {
    let t = timing(3, 1);
    let mut c = Check::default();
    c.started(0, &t);
    c.record(5_000, fail(), &t);
    c.record(6_000, fail(), &t);
    assert_eq!(c.record(7_000, Outcome::Passed(3), &t), Edge::BecameHealthy);
    assert_eq!((c.failures, c.last_error.clone()), (0, None));
    assert_eq!(c.record(8_000, fail(), &t), Edge::None);
    assert_eq!(c.health, Health::Healthy, "one failure is not three");
}

#[test]
fn healthy_again_only_after_success_threshold_successes() {
    let t = timing(1, 2);
    let mut c = Check::default();
    c.started(0, &t);
    assert_eq!(c.record(5_000, fail(), &t), Edge::BecameUnhealthy);
    assert_eq!(c.record(6_000, Outcome::Passed(1), &t), Edge::None);
    assert_eq!(c.health, Health::Unhealthy);
    assert_eq!(c.record(7_000, Outcome::Passed(1), &t), Edge::BecameHealthy);
    assert_eq!(c.last_latency_ms, Some(1));
}

#[test]
fn a_restart_forgets_the_counts_and_a_stop_ends_probing() {
    let t = timing(2, 1);
    let mut c = Check::default();
    c.started(0, &t);
    c.record(5_000, fail(), &t);
    c.started(6_000, &t);
    assert_eq!(
        (c.health, c.failures, c.due),
        (Health::Unknown, 0, Some(11_000))
    );
    c.stopped();
    assert!(!c.is_due(u64::MAX));
    // A probe that was running when the unit stopped counts for nothing.
    assert_eq!(c.record(12_000, fail(), &t), Edge::None);
    assert_eq!(c.failures, 0);
}

#[test]
fn thresholds_of_zero_act_as_one() {
    let t = timing(0, 0);
    let mut c = Check::default();
    c.started(0, &t);
    assert_eq!(c.record(5_000, fail(), &t), Edge::BecameUnhealthy);
    assert_eq!(c.record(6_000, Outcome::Passed(1), &t), Edge::BecameHealthy);
}

#[test]
fn the_budget_allows_max_restarts_in_a_sliding_window() {
    let rule = BudgetRule {
        max: 2,
        within_ms: 60_000,
    };
    let mut b = Budget::default();
    assert_eq!(b.request(0, &rule), Allowance::Restart);
    assert_eq!(b.request(10_000, &rule), Allowance::Restart);
    assert_eq!(
        b.request(20_000, &rule),
        Allowance::Exhausted { alert: true }
    );
    // A flapping unit: refused again, and no second alert.
    assert_eq!(
        b.request(30_000, &rule),
        Allowance::Exhausted { alert: false }
    );
    // The window has room again, but a spent budget waits for health.
    assert_eq!(
        b.request(65_000, &rule),
        Allowance::Exhausted { alert: false }
    );
    b.healthy_again();
    assert_eq!(b.request(65_000, &rule), Allowance::Restart);
    // Spent again within a window of the last alert: refused, no alert
    // (a flapping unit pages once per window).
    assert_eq!(
        b.request(69_000, &rule),
        Allowance::Exhausted { alert: false }
    );
    b.healthy_again();
    assert_eq!(b.request(200_000, &rule), Allowance::Restart);
    assert_eq!(b.request(200_001, &rule), Allowance::Restart);
    // A window after the last alert: a new one.
    assert_eq!(
        b.request(200_002, &rule),
        Allowance::Exhausted { alert: true }
    );
}

#[test]
fn healthy_again_does_not_forget_restarts_still_in_the_window() {
    let rule = BudgetRule {
        max: 1,
        within_ms: 60_000,
    };
    let mut b = Budget::default();
    assert_eq!(b.request(0, &rule), Allowance::Restart);
    assert_eq!(
        b.request(1_000, &rule),
        Allowance::Exhausted { alert: true }
    );
    b.healthy_again();
    assert_eq!(
        b.request(2_000, &rule),
        Allowance::Exhausted { alert: false }
    );
    b.reset();
    assert_eq!(b.request(3_000, &rule), Allowance::Restart);
}

#[test]
fn a_spent_budget_survives_a_round_trip_through_json() {
    // The daemon keeps budgets across its own restarts (crash-only state).
    let rule = BudgetRule::default();
    let mut b = Budget::default();
    for i in 0..4 {
        b.request(i * 1_000, &rule);
    }
    let back: Budget = serde_json::from_str(&serde_json::to_string(&b).unwrap()).unwrap();
    assert_eq!(back, b);
    assert!(back.exhausted);
    assert_eq!(
        back.clone().request(5_000, &rule),
        Allowance::Exhausted { alert: false }
    );
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// However restarts are requested, no window of `within_ms` ever
        /// holds more than `max` granted restarts.
        #[test]
        fn never_more_than_max_in_any_window(
            max in 0u32..5,
            within in 1u64..10_000,
            gaps in proptest::collection::vec(0u64..3_000, 1..60),
            heal_every in 1usize..10,
        ) {
            let rule = BudgetRule { max, within_ms: within };
            let mut b = Budget::default();
            let mut now = 0;
            let mut granted = Vec::new();
            for (i, g) in gaps.iter().enumerate() {
                now += g;
                if i % heal_every == 0 {
                    b.healthy_again();
                }
                if b.request(now, &rule) == Allowance::Restart {
                    granted.push(now);
                }
            }
            for (i, t) in granted.iter().enumerate() {
                let in_window = granted[i..].iter().take_while(|u| **u - t < within).count();
                prop_assert!(in_window <= max as usize, "{in_window} restarts within {within} ms from {t}");
            }
        }

        /// The edge to unhealthy fires exactly once per run of failures
        /// reaching the threshold, whatever the sequence.
        #[test]
        fn one_edge_per_unhealthy_episode(results in proptest::collection::vec(any::<bool>(), 0..80), f in 1u32..5, s in 1u32..4) {
            let t = timing(f, s);
            let mut c = Check::default();
            c.started(0, &t);
            let (mut edges, mut episodes, mut unhealthy) = (0, 0, false);
            let (mut failed_run, mut passed_run) = (0, 0);
            for (i, ok) in results.iter().enumerate() {
                let now = 5_000 + i as u64 * 1_000;
                let outcome = if *ok { Outcome::Passed(1) } else { fail() };
                if c.record(now, outcome, &t) == Edge::BecameUnhealthy {
                    edges += 1;
                }
                // A model of the same rule, counted separately.
                if *ok {
                    failed_run = 0;
                    passed_run += 1;
                    if passed_run >= s { unhealthy = false; }
                } else {
                    passed_run = 0;
                    failed_run += 1;
                    if failed_run >= f && !unhealthy { unhealthy = true; episodes += 1; }
                }
            }
            prop_assert_eq!(edges, episodes);
        }
    }
}
