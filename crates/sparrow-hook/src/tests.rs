use super::*;

#[test]
fn stages_parse_by_both_spellings_and_round_trip() {
    for (name, stage) in Stage::ALL {
        assert_eq!(Stage::parse(name), Some(stage));
        assert_eq!(Stage::parse(&name.replace('_', "-")), Some(stage));
        assert_eq!(stage.name(), name);
    }
    assert_eq!(Stage::parse("start"), None);
}

#[test]
fn the_context_names_the_unit_its_instance_and_the_stage() {
    let c = context("worker@3.service", Stage::PreStart);
    assert_eq!(c["unit"], "worker@3.service");
    assert_eq!(c["name"], "worker");
    assert_eq!(c["instance"], "3");
    assert_eq!(c["stage"], "pre_start");
    assert!(c["environment"].is_object());
    let c = context("web.service", Stage::PostStop);
    assert_eq!(
        (c["name"].as_str(), c["instance"].as_str()),
        (Some("web"), Some(""))
    );
}

#[test]
fn a_command_step_must_be_absolute_and_its_failure_is_named() {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut err = Vec::new();
    let e = command(&["true".into()], deadline, &mut err).unwrap_err();
    assert!(e.contains("not an absolute path"), "{e}");
    command(
        &["/bin/sh".into(), "-c".into(), "echo hi".into()],
        deadline,
        &mut err,
    )
    .unwrap();
    assert_eq!(String::from_utf8_lossy(&err), "hi\n");
    let e = command(
        &["/bin/sh".into(), "-c".into(), "echo bad >&2; exit 4".into()],
        deadline,
        &mut err,
    )
    .unwrap_err();
    assert!(e.contains("exited with status 4"), "{e}");
    assert!(String::from_utf8_lossy(&err).contains("bad"));
    let soon = Instant::now() + Duration::from_millis(200);
    let t = Instant::now();
    let e = command(&["/bin/sleep".into(), "30".into()], soon, &mut err).unwrap_err();
    assert!(e.contains("time limit"), "{e}");
    assert!(t.elapsed() < Duration::from_secs(5));
}
