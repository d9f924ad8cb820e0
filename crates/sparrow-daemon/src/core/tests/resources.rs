//! The resources feature through the core: apply, threshold, dwell on the
//! monotonic clock, caps, restarts, crash-only restarts, errors, batches.

use sparrow_policy::{Desired, Live, Prop, PropHistory};

use super::*;
use crate::core::{Action, Event, Origin};
use crate::state::Persisted;

#[test]
fn a_desired_value_is_read_against_systemd_then_applied_and_remembered() {
    let mut t = T::new(Persisted::default(), None);
    t.boot(vec![spec(WEB, 10_000)]);
    let a = t.round(512 * MIB, Some(1024 * MIB));
    let changes = applied(&a).expect("applied");
    assert_eq!(changes[0].target.value, Live::Num(512 * MIB));
    assert_eq!(changes[0].old, Live::Num(1024 * MIB));
    assert!(changes[0].reason.starts_with("shrink"));
    let a = applied_ok(&mut t, changes);
    let Some(Action::Log(rec)) = a
        .iter()
        .find(|a| matches!(a, Action::Log(r) if !r.fields.is_empty()))
    else {
        panic!("no change record in {a:?}");
    };
    assert_eq!(
        rec.message,
        "web.service: MemoryMax 1G -> 512M (shrink: the closure asked for 512M)"
    );
    assert!(rec.fields.contains(&("PROPERTY", "MemoryMax".into())));
    let Some(Action::Save(p)) = a.iter().find(|a| matches!(a, Action::Save(_))) else {
        panic!("state not saved: {a:?}");
    };
    assert_eq!(p.units[WEB][&Prop::MemoryMax].last_change, Some(t.now.mono));
    // The next round knows the live value: no read, nothing to do.
    let a = t.round(512 * MIB, None);
    assert!(applied(&a).is_none() && !a.iter().any(|a| matches!(a, Action::ReadLive { .. })));
    assert_eq!(t.verdict(), "same");
}

#[test]
fn changes_below_the_threshold_are_not_applied() {
    let mut t = T::new(Persisted::default(), None);
    t.boot(vec![spec(WEB, 10_000)]);
    let a = t.round(560 * MIB, Some(512 * MIB));
    assert!(applied(&a).is_none());
    assert_eq!(t.verdict(), "below threshold (changes by 48M)");
}

#[test]
fn shrinking_waits_for_min_dwell_on_the_monotonic_clock() {
    let mut t = T::new(Persisted::default(), None);
    t.boot(vec![spec(WEB, 10_000)]);
    let a = t.round(1024 * MIB, Some(512 * MIB));
    let changes = applied(&a).expect("growth applies at once");
    applied_ok(&mut t, changes);
    let changed = t.now.mono;
    // The wall clock jumps back a day: dwell does not care.
    t.now.wall -= 86_400_000;
    let a = t.round(256 * MIB, None);
    assert!(applied(&a).is_none());
    assert!(t.verdict().starts_with("dwell ("), "{}", t.verdict());
    // Applied on the first round at least min_dwell after the change.
    loop {
        let a = t.round(256 * MIB, None);
        if applied(&a).is_some() {
            assert!(t.now.mono >= changed + 60_000, "{}", t.now.mono - changed);
            assert!(t.now.mono < changed + 60_000 + 10_000 + 1_000);
            break;
        }
        assert!(t.verdict().starts_with("dwell ("), "{}", t.verdict());
    }
}

#[test]
fn the_units_cap_and_the_daemons_cap_hold_changes_back() {
    let mut t = T::new(Persisted::default(), None);
    t.boot(vec![spec(WEB, 1_000)]);
    let mut live = 512 * MIB;
    for i in 0..2 {
        // Growth each time, over the threshold: only the cap can stop it.
        let want = live + 200 * MIB;
        let a = t.round(want, (i == 0).then_some(live));
        applied_ok(&mut t, applied(&a).expect("within the cap"));
        live = want;
    }
    let a = t.round(live + 200 * MIB, None);
    assert!(applied(&a).is_none());
    assert_eq!(t.verdict(), "unit cap (2 changes per minute)");
    // A minute later the unit may change again.
    let start = t.now.mono;
    while t.now.mono < start + 60_000 {
        t.round(live, None);
    }
    assert!(applied(&t.round(live + 200 * MIB, None)).is_some());

    // The daemon's cap: one change a minute across units.
    let mut t = T::with_cap(Persisted::default(), None, 1);
    t.boot(vec![spec(WEB, 1_000)]);
    let a = t.round(512 * MIB, Some(1024 * MIB));
    applied_ok(&mut t, applied(&a).expect("within the cap"));
    let a = t.round(1024 * MIB, None);
    assert!(applied(&a).is_none());
    assert_eq!(t.verdict(), "daemon cap (changes per minute across units)");
}

#[test]
fn a_restarted_unit_is_evaluated_at_once_against_fresh_live_values() {
    let mut t = T::new(Persisted::default(), None);
    t.boot(vec![spec(WEB, 3_600_000)]);
    let a = t.round(512 * MIB, Some(1024 * MIB));
    applied_ok(&mut t, applied(&a).expect("applied"));
    // Stopped: nothing is scheduled for it (and nothing else is).
    t.ev(Event::UnitChanged {
        unit: WEB.into(),
        active_state: "inactive".into(),
    });
    if t.core.next_wake().is_some() {
        // Only the STATUS= update (one unit fewer active) is due.
        let a = t.tick();
        assert!(
            matches!(&a[..], [Action::Notify(Notice::Status(_))]),
            "{a:?}"
        );
    }
    assert_eq!(t.core.next_wake(), None);
    // Started again, an hour before its next interval: evaluated now, and
    // the live value is read again (the new cgroup may differ).
    let a = t.ev(Event::UnitChanged {
        unit: WEB.into(),
        active_state: "active".into(),
    });
    assert!(a
        .iter()
        .any(|a| matches!(a, Action::ReadInfo(u) if u == WEB)));
    assert!(a.iter().any(|a| matches!(a, Action::ShareUnits(_))));
    let units = match a.iter().find(|a| matches!(a, Action::Evaluate(..))) {
        Some(Action::Evaluate(u, _)) => u.clone(),
        _ => t.until_evaluate(),
    };
    assert_eq!(units, vec![WEB.to_string()]);
    let a = t.evaluated(WEB, Ok(vec![(Prop::MemoryMax, Desired::Amount(512 * MIB))]));
    assert!(
        a.iter().any(|a| matches!(a, Action::ReadLive { .. })),
        "{a:?}"
    );
}

#[test]
fn after_a_crash_the_remembered_history_still_governs_dwell() {
    // The state file says memory_max changed 10 s ago (monotonic clock).
    let mut persisted = Persisted::default();
    persisted.units.entry(WEB.into()).or_default().insert(
        Prop::MemoryMax,
        PropHistory {
            last_change: Some(1_000_000 - 10_000),
            last_value: Some(Live::Num(1024 * MIB)),
            last_target: Some(Live::Num(1024 * MIB)),
        },
    );
    let mut t = T::new(persisted, None);
    t.boot(vec![spec(WEB, 10_000)]);
    let a = t.round(512 * MIB, Some(1024 * MIB));
    assert!(applied(&a).is_none());
    assert!(t.verdict().starts_with("dwell"), "{}", t.verdict());
    // What systemd already has is not applied again.
    let a = t.round(1024 * MIB, None);
    assert!(applied(&a).is_none());
    assert_eq!(t.verdict(), "same");
}

#[test]
fn a_garbage_or_stale_state_file_means_no_recent_changes() {
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("state.json");
    std::fs::write(&f, "{\"version\": 2, \"units\": 17}").unwrap();
    let (p, warning) = crate::state::load(&f);
    assert!(warning.unwrap().contains("starting afresh"));
    let mut t = T::new(p, None);
    t.boot(vec![spec(WEB, 10_000)]);
    assert!(applied(&t.round(512 * MIB, Some(1024 * MIB))).is_some());
}

#[test]
fn evaluation_errors_are_logged_once_timeouts_counted_and_crashes_quarantined() {
    let mut t = T::new(Persisted::default(), None);
    t.boot(vec![spec(WEB, 1_000)]);
    let err =
        "/etc/systemd/sparrow/web.sparrow:4:9: memory_max: \"lots\" is not a size".to_string();
    t.until_evaluate();
    let a = t.evaluated(WEB, Err(err.clone()));
    assert_eq!(logs(&a).len(), 1);
    t.until_evaluate();
    let a = t.evaluated(WEB, Err(err.clone()));
    assert!(logs(&a).is_empty(), "the same error is logged once: {a:?}");
    t.until_evaluate();
    let a = t.evaluated_as(
        WEB,
        Err("the closure ran longer than its limit".into()),
        true,
        false,
        Origin::Schedule,
    );
    assert_eq!(logs(&a).len(), 1);
    t.until_evaluate();
    let a = t.evaluated(WEB, Ok(vec![]));
    assert_eq!(
        logs(&a),
        vec!["evaluation of web.service works again".to_string()]
    );
    let st = t.core.status(None, t.now);
    assert_eq!((st.daemon.errors, st.daemon.slow), (3, 1));
    assert_eq!((st.units[0].errors, st.units[0].slow), (3, 1));
    // A crash: quarantined, not evaluated again, eval requests refused...
    t.until_evaluate();
    let a = t.evaluated_as(
        WEB,
        Err("evaluating the closures of web.service overflowed the stack".into()),
        false,
        true,
        Origin::Schedule,
    );
    assert!(logs(&a)[0].contains("not evaluated again"));
    assert_eq!(t.core.next_wake(), None);
    let a = t.ev(Event::Control(7, Request::Eval { unit: WEB.into() }));
    assert!(
        matches!(&a[..], [Action::Reply(7, r)] if r.error.as_deref().is_some_and(|e| e.contains("is not evaluated"))),
        "{a:?}"
    );
    // ...until the definitions are read again.
    t.ev(Event::Sources(vec![], vec![]));
    t.ev(Event::Loaded {
        generation: 2,
        specs: vec![spec(WEB, 1_000)],
        problems: vec![],
    });
    assert_eq!(t.core.status(None, t.now).units[0].quarantined, None);
    assert_eq!(t.until_evaluate(), vec![WEB.to_string()]);
}

#[test]
fn evaluations_due_together_go_in_one_batch_and_busy_evaluators_postpone() {
    let mut t = T::new(Persisted::default(), None);
    let names = ["a.service", "b.service", "c.service"];
    t.boot(names.iter().map(|n| spec(n, 30_000)).collect());
    let first = t.until_evaluate();
    for n in &first {
        t.evaluated(n, Ok(vec![]));
    }
    let mut seen: Vec<String> = first.clone();
    while seen.len() < names.len() {
        let b = t.until_evaluate();
        for n in &b {
            t.evaluated(n, Ok(vec![]));
        }
        seen.extend(b);
    }
    // From then on, those evaluated together stay together.
    let b = t.until_evaluate();
    assert_eq!(b, first);
    // Every evaluator busy: postponed and retried shortly, not lost.
    let a = t.ev(Event::Rejected(b.clone(), Origin::Schedule));
    assert!(a.is_empty() || !a.iter().any(|a| matches!(a, Action::Evaluate(..))));
    assert_eq!(t.core.status(None, t.now).daemon.postponed, b.len() as u64);
    let retry = t.until_evaluate();
    assert_eq!(retry, b);
}

#[test]
fn units_started_together_are_evaluated_together_ever_after() {
    // The idle-cost rule: 100 units at 30 s, seen starting one by one over
    // a second, settle into one batch (one wake-up) per interval.
    let mut t = T::new(Persisted::default(), None);
    let names: Vec<String> = (0..100).map(|i| format!("u{i}.service")).collect();
    t.ev(Event::Sources(vec![], vec![]));
    t.ev(Event::Loaded {
        generation: 1,
        specs: names.iter().map(|n| spec(n, 30_000)).collect(),
        problems: vec![],
    });
    t.ev(Event::Connected(Ok(Via::SystemBus)));
    let mut batches = Vec::new();
    for n in &names {
        let a = t.info(n, "active");
        if let Some(b) = a.iter().find_map(|a| match a {
            Action::Evaluate(u, _) => Some(u.clone()),
            _ => None,
        }) {
            for u in &b {
                t.evaluated(u, Ok(vec![]));
            }
            batches.push((t.now.mono, b));
        }
        let at = t.now.mono + 10;
        t.at(at);
    }
    let start = t.now.mono;
    let mut wakes = 0;
    while let Some(at) = t.core.next_wake().filter(|at| *at < start + 300_000) {
        t.at(at.max(t.now.mono));
        wakes += 1;
        let a = t.ev(Event::Tick);
        for units in a.iter().filter_map(|a| match a {
            Action::Evaluate(u, _) => Some(u.clone()),
            _ => None,
        }) {
            for u in &units {
                t.evaluated(u, Ok(vec![]));
            }
            batches.push((t.now.mono, units));
        }
    }
    let later: Vec<usize> = batches
        .iter()
        .filter(|(at, _)| *at > start)
        .map(|(_, b)| b.len())
        .collect();
    // First seen over one second: evaluated as seen. Then every 30 s, all
    // together: 10 rounds in 5 minutes, one wake-up each.
    assert_eq!(batches.len() - later.len(), 100);
    assert_eq!(later, vec![100; 10]);
    // And one for the STATUS= line held back while units were appearing.
    assert!(wakes <= 11, "{wakes} wake-ups in 5 minutes");
}
