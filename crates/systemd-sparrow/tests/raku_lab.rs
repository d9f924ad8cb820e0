//! Raku definitions in a real systemd: a `#!raku` shebang unit dropped
//! straight into `multi-user.target.wants/` is translated by the generator
//! (through the Raku bridge, with the host's rakudo) into the early
//! directory and runs, at boot and after a `daemon-reload`; a Raku
//! `resource-check` sub (calling a built-in task plugin through our task
//! runner) drives a live change through systemd-sparrowd (its evaluators'
//! resident Raku worker, shown in status); a Raku `pre-start` sub that
//! dies fails the start with its message.

mod common;

use common::{ok, secs, unit_status, SPARROW};

use sparrow_lab::{Lab, Setup};

fn shebang_unit(name: &str, greeting: &str) -> String {
    format!(
        "#!raku\nuse Sparrow6::DSL;\n\ntask-run \"{name}\", \"systemd\", %(\n    description => \"{name} (Raku)\",\n    start => \"/bin/sleep infinity\",\n    env => %( :GREETING<{greeting}> ),\n);\n"
    )
}

fn boot(setup: Setup) -> Lab {
    Lab::boot(setup).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn a_raku_shebang_unit_in_a_wants_directory_runs_at_boot_and_after_a_reload() {
    let lab = boot(
        Setup::new(SPARROW)
            .unit_file(
                "multi-user.target.wants/early-bird.service",
                &shebang_unit("early-bird", "hello"),
            )
            // A broken Raku unit beside it changes nothing for the others.
            .unit_file(
                "broken.service",
                "#!raku\ntask-run \"broken\", \"systemd\", %(\n",
            ),
    );
    // At boot: translated, pulled in by multi-user.target, running.
    if let Err(e) = lab.wait_active_state("early-bird.service", "active", secs(30)) {
        let why = lab
            .sh("systemctl status early-bird.service multi-user.target --no-pager; journalctl -b -o cat SYSLOG_IDENTIFIER=systemd-sparrow-generator; ls -la /run/systemd/generator.early")
            .unwrap();
        panic!("{e}\n{}{}", why.stdout, why.stderr);
    }
    let p = lab
        .show(
            "early-bird.service",
            &["FragmentPath", "SourcePath", "Description", "Environment"],
        )
        .unwrap();
    assert_eq!(
        p["FragmentPath"], "/run/systemd/generator.early/early-bird.service",
        "{p:?}"
    );
    assert_eq!(
        p["SourcePath"],
        "/etc/systemd/system/multi-user.target.wants/early-bird.service"
    );
    assert_eq!(p["Description"], "early-bird (Raku)");
    assert_eq!(p["Environment"], "GREETING=hello");

    // Added while running: after daemon-reload it is loaded from the
    // translation, wanted by multi-user.target, and starts.
    lab.write_unit_file(
        "multi-user.target.wants/late-bird.service",
        &shebang_unit("late-bird", "again"),
    )
    .unwrap();
    lab.daemon_reload().unwrap();
    // The broken one is reported with its Raku line (at boot the message
    // had no journal to go to in a container; this run's does).
    lab.wait_for("the generator's Raku message", secs(10), |lab| {
        let log = lab
            .journal(&["SYSLOG_IDENTIFIER=systemd-sparrow-generator"])
            .unwrap();
        Ok((
            log.contains("/etc/systemd/system/broken.service:") && log.contains("Raku:"),
            log,
        ))
    })
    .unwrap();
    let p = lab
        .show("late-bird.service", &["FragmentPath", "Environment"])
        .unwrap();
    assert_eq!(
        p["FragmentPath"], "/run/systemd/generator.early/late-bird.service",
        "{p:?}"
    );
    assert_eq!(p["Environment"], "GREETING=again");
    let wants = lab.show("multi-user.target", &["Wants"]).unwrap();
    assert!(wants["Wants"].contains("late-bird.service"), "{wants:?}");
    ok(lab
        .exec(&["systemctl", "start", "multi-user.target"])
        .unwrap());
    lab.wait_active_state("late-bird.service", "active", secs(30))
        .unwrap();
}

const RUNTIME: &str = r#"use Sparrow6::DSL;

task-run "adapts", "systemd", %(
    start => "/bin/sleep infinity",
    cpu-weight => 100,
    monitoring => %(
        interval => 1,
        min-dwell => "0s",
        resource-check => sub {
            # A built-in plugin through our task runner, from Raku.
            my %probe = task-run "probe", "resource-monitor", %();
            log("Raku resource-check: load is " ~ current-load() ~ ", cpus " ~ %probe<cpus>);
            %( cpu-weight => %probe<cpus> > 0 ?? 33 !! 1 )
        },
    ),
);

task-run "guarded", "systemd", %(
    start => "/bin/sleep infinity",
    hooks => %(
        pre-start => sub { die "refusing to start: the moon is full" },
    ),
);
"#;

#[test]
fn raku_subs_run_in_the_daemon_and_the_hook_runner() {
    let lab = boot(
        Setup::new(SPARROW)
            .daemon()
            .definition("runtime.raku", RUNTIME),
    );
    lab.wait_active_state("systemd-sparrowd.service", "active", secs(60))
        .unwrap();
    ok(lab.exec(&["systemctl", "start", "adapts.service"]).unwrap());
    let seen = lab.wait_for("CPUWeight=33 from the Raku sub", secs(60), |lab| {
        let w = lab.prop("adapts.service", "CPUWeight")?;
        Ok((
            w == "33",
            format!("CPUWeight={w}\n{}", lab.journal_tail(30)),
        ))
    });
    if let Err(e) = seen {
        panic!("{e}\n{}", unit_status(&lab, "adapts.service"));
    }
    let log = lab.journal(&["-u", "systemd-sparrowd.service"]).unwrap();
    assert!(log.contains("Raku resource-check: load is "), "{log}");
    assert!(log.contains(", cpus "), "{log}");
    // The workers are in status: started, answering.
    let st = common::status_json(&lab, "");
    let workers = st["status"]["daemon"]["raku_workers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        workers
            .iter()
            .any(|w| w["calls"].as_u64().unwrap_or(0) >= 1 && w["starts"] == 1),
        "{st}"
    );
    let text = ok(lab
        .exec(&["/opt/sparrow/bin/systemd-sparrow", "status"])
        .unwrap());
    assert!(text.contains("Raku worker of evaluator"), "{text}");

    // The hook runner: the sub's die fails the start, with its message.
    let o = lab
        .exec(&["systemctl", "start", "guarded.service"])
        .unwrap();
    assert!(!o.ok(), "the start must fail");
    lab.wait_active_state("guarded.service", "failed", secs(30))
        .unwrap();
    let log = lab.journal(&["-u", "guarded.service"]).unwrap();
    assert!(log.contains("refusing to start: the moon is full"), "{log}");
}
