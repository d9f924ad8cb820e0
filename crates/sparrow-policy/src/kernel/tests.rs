use super::*;

fn spec(threshold_us: u64, window_us: u64) -> TriggerSpec {
    TriggerSpec {
        resource: Resource::Cpu,
        full: false,
        threshold_us,
        window_us,
    }
}

#[test]
fn trigger_lines_follow_the_kernel_rules_and_round_for_an_unprivileged_daemon() {
    // (threshold, window, privileged) -> line, or an error containing the text.
    let table: &[(u64, u64, bool, Result<&str, &str>)] = &[
        (150_000, 2_000_000, false, Ok("some 150000 2000000")),
        (150_000, 1_000_000, true, Ok("some 150000 1000000")),
        // 1 s -> 2 s: the threshold keeps its share of the window.
        (150_000, 1_000_000, false, Ok("some 300000 2000000")),
        (500_000, 500_000, false, Ok("some 2000000 2000000")),
        (1_000_000, 3_000_000, false, Ok("some 1333333 4000000")),
        (100_000, 10_000_000, false, Ok("some 100000 10000000")),
        (100_000, 9_000_000, false, Ok("some 111111 10000000")),
        (
            100_000,
            400_000,
            true,
            Err("outside the kernel's 500 ms..10 s"),
        ),
        (
            100_000,
            11_000_000,
            false,
            Err("outside the kernel's 500 ms..10 s"),
        ),
        (0, 2_000_000, false, Err("must be more than 0")),
        (3_000_000, 2_000_000, false, Err("at most the window (2 s)")),
    ];
    for (threshold, window, privileged, want) in table {
        let got = trigger(spec(*threshold, *window), *privileged);
        match (want, &got) {
            (Ok(line), Ok(t)) => {
                assert_eq!(&t.line(), line, "{threshold} {window} {privileged}");
                assert_eq!(
                    t.rounded.is_some(),
                    t.window_us != *window,
                    "said when rounded: {t:?}"
                );
            }
            (Err(text), Err(e)) => assert!(e.contains(text), "{e}"),
            _ => panic!("{threshold} {window} {privileged}: {got:?}, wanted {want:?}"),
        }
    }
    let t = trigger(spec(150_000, 1_000_000), false).unwrap();
    assert_eq!(
        t.rounded.as_deref(),
        Some("window 1 s rounded up to 2 s and threshold 150 ms scaled to 300 ms (without CAP_SYS_RESOURCE the kernel accepts only windows that are multiples of 2 s)")
    );
    let full = TriggerSpec {
        full: true,
        resource: Resource::Memory,
        ..spec(100_000, 2_000_000)
    };
    assert_eq!(trigger(full, false).unwrap().line(), "full 100000 2000000");
}

proptest::proptest! {
    #[test]
    fn an_accepted_trigger_is_one_the_kernel_accepts(threshold in 1u64..12_000_000, window in 1u64..12_000_000, privileged: bool) {
        if let Ok(t) = trigger(spec(threshold, window), privileged) {
            proptest::prop_assert!((WINDOW_MIN_US..=WINDOW_MAX_US).contains(&t.window_us));
            proptest::prop_assert!(t.threshold_us > 0 && t.threshold_us <= t.window_us);
            if !privileged {
                proptest::prop_assert_eq!(t.window_us % UNPRIVILEGED_STEP_US, 0);
            }
            // Never a smaller window than asked for.
            proptest::prop_assert!(t.window_us >= window);
        }
    }
}

#[test]
fn pressure_files_parse_with_and_without_full() {
    let cpu = "some avg10=12.50 avg60=3.25 avg300=0.71 total=123456\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=7\n";
    let p = parse_pressure(cpu).unwrap();
    assert_eq!(p.some.avg10, 12.5);
    assert_eq!(p.some.avg60, 3.25);
    assert_eq!(p.some.total, 123_456);
    assert_eq!(p.full.unwrap().total, 7);
    let old = parse_pressure("some avg10=1.00 avg60=2.00 avg300=3.00 total=4").unwrap();
    assert_eq!(old.full, None);
    assert_eq!(old.some.avg300, 3.0);
    // A field a later kernel adds is skipped.
    assert!(parse_pressure("some avg10=1 avg60=2 avg300=3 total=4 new=5").is_ok());
    for bad in [
        "",
        "some avg10=1.00",
        "weird avg10=1 avg60=2 avg300=3 total=4",
        "some avg10=x avg60=2 avg300=3 total=4",
        "full avg10=1 avg60=2 avg300=3 total=4",
    ] {
        assert!(parse_pressure(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn memory_event_deltas_come_from_counters_that_rose() {
    let read = |t: &str| parse_counters(t).unwrap();
    let first = read("low 0\nhigh 3\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n");
    // The first reading is the baseline: nothing happened "now".
    assert!(memory_deltas(None, &first).is_empty());
    let second = read("low 0\nhigh 5\nmax 1\noom 0\noom_kill 0\noom_group_kill 0\n");
    assert_eq!(
        memory_deltas(Some(&first), &second),
        [("memory-high", 2), ("memory-max", 1)]
    );
    let third = read("low 9\nhigh 5\nmax 1\noom 1\noom_kill 1\noom_group_kill 0\n");
    assert_eq!(
        memory_deltas(Some(&second), &third),
        [("oom", 1), ("oom-kill", 1)]
    );
    // A new cgroup (after a restart) starts its counters at zero.
    let fresh = read("low 0\nhigh 1\nmax 0\noom 0\noom_kill 0\n");
    assert_eq!(memory_deltas(Some(&third), &fresh), [("memory-high", 1)]);
    assert!(memory_deltas(Some(&fresh), &fresh).is_empty());
    assert!(parse_counters("high three\n").is_err());
    assert!(parse_counters("nospace\n").is_err());
}

#[test]
fn a_burst_of_changes_is_one_call_and_changes_during_a_call_ask_for_one_more() {
    let mut d = Debounce::default();
    assert_eq!(d.due(), None);
    d.changed(1_000, 200);
    d.changed(1_050, 200);
    d.changed(1_199, 200);
    // Not postponed by the later changes: a steady stream is still served.
    assert_eq!(d.due(), Some(1_200));
    assert!(!d.start(1_199));
    assert!(d.start(1_200));
    assert!(d.running());
    assert_eq!(d.due(), None);
    d.changed(1_300, 200);
    d.changed(1_310, 200);
    assert_eq!(d.due(), None, "not while running");
    d.finished(1_400, 200);
    assert_eq!(d.due(), Some(1_600), "once more, after the call");
    assert!(d.start(1_600));
    d.finished(1_700, 200);
    assert_eq!(d.due(), None, "nothing changed meanwhile");
    // The interval's call serves a pending change.
    d.changed(2_000, 200);
    assert!(d.start_now());
    assert!(!d.start_now(), "one at a time");
    d.finished(2_050, 200);
    assert_eq!(d.due(), None);
}
