//! Lifecycle hooks and startup sequences in the lab: the generator writes
//! `ExecStartPre=/usr/local/bin/systemd-sparrow hook run -- %n ...` lines (the
//! lab installs the binary where the README's manual install puts it), and
//! systemd runs them: a failing `pre_start` fails `systemctl start` with its
//! message in the unit's journal, a startup sequence runs in order and its
//! failing step is named, a template instance gets its own name, and a
//! hook that loops is stopped by the sandbox.

mod common;

use common::{ok, secs, SPARROW};

use sparrow_lab::{Lab, Setup};

const GATE: &str = r#"
service("gate", #{
    exec_start: ["/bin/sleep", "infinity"],
    hooks: #{
        pre_start: |ctx| {
            if !file_exists("/run/gate-open") {
                throw `the gate of ${ctx.unit} is closed: create /run/gate-open`;
            }
            log(`gate open for ${ctx.name}`);
            true
        },
        post_stop: || { log("post_stop ran"); },
    },
});
service("worker@", #{
    exec_start: ["/bin/sleep", "infinity"],
    hooks: #{ pre_start: |ctx| { log(`instance ${ctx.instance} of ${ctx.name} starting`); } },
});
service("looping", #{
    exec_start: ["/bin/sleep", "infinity"],
    hooks: #{ pre_start: || { let n = 0; loop { n += 1; } } },
});
"#;

const SEQUENCE: &str = r#"
service("seq", #{
    exec_start: ["/bin/sleep", "infinity"],
    orchestration: #{ startup_sequence: [
        "/bin/sh -c 'echo one >> /run/seq.log'",
        |ctx| { log(`closure step of ${ctx.unit}`); true },
        ["read flags", "feature-flags", #{}],
        "/bin/sh -c 'echo four >> /run/seq.log'",
    ] },
});
service("seqfail", #{
    exec_start: ["/bin/sleep", "infinity"],
    orchestration: #{ startup_sequence: [
        "/bin/sh -c 'echo one >> /run/seqfail.log'",
        ["storage-mount", "tcp-check", #{ host: "127.0.0.1", port: 9, timeout: "1s" }],
        "/bin/sh -c 'echo three >> /run/seqfail.log'",
    ] },
});
"#;

fn start(lab: &Lab, unit: &str) -> sparrow_lab::Output {
    lab.exec_timeout(&["systemctl", "start", unit], secs(60))
        .unwrap()
}

fn journal(lab: &Lab, unit: &str) -> String {
    lab.journal(&["-u", unit]).unwrap()
}

#[test]
fn hooks_gate_the_start_and_sequences_run_in_order() {
    let lab = Lab::boot(
        Setup::new(SPARROW)
            .definition("gate.sparrow", GATE)
            .definition("seq.sparrow", SEQUENCE),
    )
    .unwrap();

    // The generated lines call the binary by absolute path, with %n.
    let pre = lab.prop("gate.service", "ExecStartPre").unwrap();
    assert!(
        pre.contains("path=/usr/local/bin/systemd-sparrow")
            && pre.contains("hook run -- gate.service pre_start"),
        "{pre}"
    );

    // A failing pre_start fails the start, with its message in the journal.
    let out = start(&lab, "gate.service");
    assert_ne!(out.code, Some(0), "the start should fail: {out:?}");
    assert_eq!(lab.prop("gate.service", "ActiveState").unwrap(), "failed");
    let j = journal(&lab, "gate.service");
    assert!(
        j.contains("pre_start failed")
            && j.contains("the gate of gate.service is closed: create /run/gate-open"),
        "{j}"
    );
    // Fix the cause: the same unit starts.
    ok(lab.exec(&["touch", "/run/gate-open"]).unwrap());
    ok(start(&lab, "gate.service"));
    assert_eq!(lab.prop("gate.service", "ActiveState").unwrap(), "active");
    assert!(journal(&lab, "gate.service").contains("gate open for gate"));
    ok(lab.exec(&["systemctl", "stop", "gate.service"]).unwrap());
    lab.wait_for("post_stop in the journal", secs(10), |lab| {
        let j = journal(lab, "gate.service");
        Ok((j.contains("post_stop ran"), j))
    })
    .unwrap();

    // An instance runs its template's hook under its own name.
    ok(start(&lab, "worker@7.service"));
    assert!(journal(&lab, "worker@7.service").contains("instance 7 of worker starting"));

    // A hook that loops is cut by the sandbox and fails the start.
    let out = start(&lab, "looping.service");
    assert_ne!(out.code, Some(0), "{out:?}");
    let j = journal(&lab, "looping.service");
    assert!(
        j.contains("operations") && j.contains("sandbox limit"),
        "{j}"
    );

    // The startup sequence runs its steps in order and logs each.
    ok(start(&lab, "seq.service"));
    assert_eq!(
        ok(lab.exec(&["cat", "/run/seq.log"]).unwrap()),
        "one\nfour\n"
    );
    let j = journal(&lab, "seq.service");
    let at = |s: &str| j.find(s).unwrap_or_else(|| panic!("{s:?} not in {j}"));
    assert!(at("step 1/4 (/bin/sh -c echo one") < at("closure step of seq.service"));
    assert!(at("closure step of seq.service") < at("step 2/4 (closure at"));
    assert!(at("step 2/4") < at("step 3/4 (read flags)"));
    assert!(at("step 3/4") < at("step 4/4"));

    // The first failing step fails the start and is named; later steps never run.
    let out = start(&lab, "seqfail.service");
    assert_ne!(out.code, Some(0), "{out:?}");
    let j = journal(&lab, "seqfail.service");
    assert!(j.contains("step 2 (storage-mount):"), "{j}");
    assert_eq!(ok(lab.exec(&["cat", "/run/seqfail.log"]).unwrap()), "one\n");
}
