//! The pattern feature through the core: runs on its interval and soon
//! after a watched file changes (a burst is one run), only while active;
//! an environment restarts the unit once, the same one again changes
//! nothing, none removes it; environment restarts keep their gap.

use super::*;
use crate::core::pattern::{Outcome, ENV_GAP_MS, QUIET_MS};
use crate::spec::PatternSpec;

const APP: &str = "app.service";
const LOG: &str = "/var/log/app/access.log";

fn pattern_spec() -> Spec {
    Spec {
        unit: APP.into(),
        source: PathBuf::from("/etc/systemd/sparrow/app.sparrow"),
        line: 1,
        features: vec!["pattern_check".into()],
        resources: None,
        health: None,
        kernel: None,
        pattern: Some(PatternSpec {
            interval_ms: 30_000,
            watch: vec![LOG.into()],
        }),
    }
}

fn calls(actions: &[Action]) -> usize {
    actions
        .iter()
        .filter(|a| matches!(a, Action::CallPattern(u) if u == APP))
        .count()
}

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

impl T {
    fn done(&mut self, environment: Option<BTreeMap<String, String>>) -> Vec<Action> {
        self.ev(Event::PatternDone {
            unit: APP.into(),
            result: Ok(Outcome {
                props: 0,
                environment,
            }),
            logs: vec![],
        })
    }

    fn changed(&mut self, seq: u64) -> Vec<Action> {
        self.ev(Event::FilesChanged {
            unit: APP.into(),
            seq,
        })
    }

    fn set_env(actions: &[Action]) -> Option<Option<BTreeMap<String, String>>> {
        actions.iter().find_map(|a| match a {
            Action::SetEnvironment { unit, environment } if unit == APP => {
                Some(environment.clone())
            }
            _ => None,
        })
    }

    fn pattern_status(&self) -> crate::control::PatternStatus {
        self.core.status(Some(APP), self.now).units[0]
            .pattern
            .clone()
            .unwrap()
    }
}

/// Boots with the monitor; returns the seq of its file watch.
fn booted(t: &mut T) -> u64 {
    t.ev(Event::Sources(vec![], vec![]));
    t.ev(Event::Loaded {
        generation: 1,
        specs: vec![pattern_spec()],
        problems: vec![],
    });
    t.ev(Event::Connected(Ok(Via::SystemBus)));
    let a = t.info(APP, "active");
    a.iter()
        .find_map(|a| match a {
            Action::WatchFiles { unit, seq, files } if unit == APP && files == &[LOG] => Some(*seq),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no watch in {a:?}"))
}

#[test]
fn runs_on_its_interval_and_soon_after_changes_a_burst_being_one_run() {
    let mut t = T::new(Persisted::default(), None);
    let seq = booted(&mut t);
    let start = t.now.mono;
    assert_eq!(t.core.next_wake(), Some(start + 30_000));
    // Three writes in a burst: one run, QUIET_MS after the first.
    t.changed(seq);
    t.at(start + 50);
    t.changed(seq);
    t.changed(seq + 100); // an old watch's event: ignored either way
    assert_eq!(t.core.next_wake(), Some(start + QUIET_MS));
    assert_eq!(calls(&t.tick()), 1);
    // A change while it runs: one more run after it.
    t.at(start + 300);
    t.changed(seq);
    assert_eq!(t.core.next_wake(), None, "nothing while it runs");
    t.at(start + 400);
    t.done(None);
    assert_eq!(t.core.next_wake(), Some(start + 400 + QUIET_MS));
    assert_eq!(calls(&t.tick()), 1);
    t.at(start + 700);
    t.done(None);
    // Then the interval, from the last run.
    assert_eq!(t.core.next_wake(), Some(start + QUIET_MS + 400 + 30_000));
    assert_eq!(calls(&t.tick()), 1);
    t.done(None);
    let st = t.pattern_status();
    assert_eq!(
        (st.runs, st.last_outcome.as_str()),
        (3, "nothing to change")
    );
    // Stopped: unwatched, not run.
    let a = t.ev(Event::UnitChanged {
        unit: APP.into(),
        active_state: "inactive".into(),
    });
    assert!(
        a.iter()
            .any(|a| matches!(a, Action::WatchFiles { files, .. } if files.is_empty())),
        "{a:?}"
    );
    assert_eq!(t.core.next_wake(), None);
}

#[test]
fn an_environment_restarts_once_and_none_restores_the_units_own_after_the_gap() {
    let mut t = T::new(Persisted::default(), None);
    let seq = booted(&mut t);
    t.changed(seq);
    assert_eq!(calls(&t.tick()), 1);
    let safe = env(&[("MODE", "safe")]);
    let set_at = t.now.mono;
    let a = t.done(Some(safe.clone()));
    assert_eq!(T::set_env(&a), Some(Some(safe.clone())));
    // The same again while it is being set, and after: nothing.
    t.changed(seq);
    assert_eq!(calls(&t.tick()), 1);
    assert_eq!(T::set_env(&t.done(Some(safe.clone()))), None);
    t.ev(Event::EnvironmentSet {
        unit: APP.into(),
        result: Ok(()),
    });
    let st = t.pattern_status();
    assert_eq!((st.environment, st.restarts), (Some(safe.clone()), 1));
    t.changed(seq);
    assert_eq!(calls(&t.tick()), 1);
    assert_eq!(T::set_env(&t.done(Some(safe.clone()))), None);
    // `#{}` (back to normal) within the gap: not yet...
    t.changed(seq);
    assert_eq!(calls(&t.tick()), 1);
    assert_eq!(T::set_env(&t.done(Some(BTreeMap::new()))), None);
    // ... after it: the drop-in goes.
    t.at(set_at + ENV_GAP_MS);
    // The interval is overdue by now: the run starts at once and serves the change.
    assert_eq!(calls(&t.changed(seq)), 1);
    assert_eq!(T::set_env(&t.done(None)), Some(None));
    t.ev(Event::EnvironmentSet {
        unit: APP.into(),
        result: Ok(()),
    });
    assert_eq!(t.pattern_status().environment, None);
    // A failed restart is counted and tried again on a later run.
    t.at(set_at + 2 * ENV_GAP_MS);
    assert_eq!(calls(&t.changed(seq)), 1);
    assert!(T::set_env(&t.done(Some(safe.clone()))).is_some());
    t.ev(Event::EnvironmentSet {
        unit: APP.into(),
        result: Err("no such unit".into()),
    });
    let st = t.pattern_status();
    assert_eq!((st.environment, st.errors), (None, 1));
}

#[test]
fn a_failing_check_is_counted_and_logged_once_per_error() {
    let mut t = T::new(Persisted::default(), None);
    let seq = booted(&mut t);
    let mut warned = 0;
    for _ in 0..3 {
        t.changed(seq);
        assert_eq!(calls(&t.tick()), 1);
        let a = t.ev(Event::PatternDone {
            unit: APP.into(),
            result: Err("app.sparrow:4:9: boom".into()),
            logs: vec![],
        });
        warned += a
            .iter()
            .filter(|a| matches!(a, Action::Log(l) if l.message.contains("boom")))
            .count();
    }
    assert_eq!(warned, 1);
    let st = t.pattern_status();
    assert_eq!((st.runs, st.errors), (3, 3));
    assert_eq!(st.last_outcome, "app.sparrow:4:9: boom");
}
