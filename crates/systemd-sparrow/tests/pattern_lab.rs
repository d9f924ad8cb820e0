//! A pattern monitor in the lab: `app` writes an access log; its
//! `pattern_check` reads the log's tail with `read_file_tail` and counts
//! suspicious lines with `matches`. Five of them appended to the watched
//! file make the daemon restart the unit (a new MainPID) with the
//! environment the check returned, through a runtime drop-in that
//! `systemctl show` sees; the same answer again changes nothing.

mod common;

use common::{ok, secs, unit_status, SPARROW};

use sparrow_lab::{Lab, Setup};

const DEFS: &str = r#"
service("app", #{
    exec_start: ["/bin/sleep", "infinity"],
    environment: #{ MODE: "normal" },
    monitor: #{
        interval: "1h",
        watch: ["/run/app/access.log"],
        pattern_check: || {
            let tail = if file_exists("/run/app/access.log") { read_file_tail("/run/app/access.log", 4096) } else { "" };
            let bad = matches(tail, "GET [^ ]*\\.\\./");
            log(`${bad.len()} suspicious requests`);
            if bad.len() >= 5 { #{ environment: #{ MODE: "lockdown", SEEN: bad.len() } } } else { #{} }
        },
    },
});
"#;

fn pattern(lab: &Lab) -> serde_json::Value {
    unit_status(lab, "app.service")["pattern"].clone()
}

fn append(lab: &Lab, lines: &str) {
    ok(lab
        .exec(&[
            "sh",
            "-c",
            &format!("printf '{lines}' >> /run/app/access.log"),
        ])
        .unwrap());
}

#[test]
fn suspicious_lines_restart_the_unit_with_a_new_environment() {
    let lab = Lab::boot(Setup::new(SPARROW).definition("app.sparrow", DEFS).daemon()).unwrap();
    ok(lab.exec(&["mkdir", "-p", "/run/app"]).unwrap());
    ok(lab.exec(&["systemctl", "start", "app.service"]).unwrap());
    ok(lab
        .exec(&["systemctl", "start", "systemd-sparrowd.service"])
        .unwrap());
    lab.wait_active_state("systemd-sparrowd.service", "active", secs(20))
        .unwrap();
    lab.wait_for("the monitor to watch", secs(20), |lab| {
        let p = pattern(lab);
        Ok((p["watch"][0] == "/run/app/access.log", p.to_string()))
    })
    .unwrap();
    let first = lab.prop("app.service", "MainPID").unwrap();
    // Normal traffic, then four suspicious lines: a run each time, no restart.
    append(
        &lab,
        "GET /index.html\\nGET /../etc/passwd\\nGET /a/../../b\\n",
    );
    append(&lab, "GET /x/../y\\nGET /../z\\n");
    lab.wait_for("runs after the writes", secs(20), |lab| {
        let p = pattern(lab);
        Ok((p["runs"].as_u64() >= Some(1), p.to_string()))
    })
    .unwrap();
    std::thread::sleep(secs(1));
    assert_eq!(lab.prop("app.service", "MainPID").unwrap(), first);
    // The fifth: a restart with the environment the check returned.
    append(&lab, "GET /../../../root/.ssh/id_rsa\\n");
    lab.wait_for("a restart with MODE=lockdown", secs(30), |lab| {
        let pid = lab.prop("app.service", "MainPID")?;
        let env = lab.prop("app.service", "Environment")?;
        Ok((
            pid != first && pid != "0" && env.contains("MODE=lockdown"),
            format!("MainPID={pid} Environment={env}\n{}", pattern(lab)),
        ))
    })
    .unwrap();
    let env = lab.prop("app.service", "Environment").unwrap();
    assert!(env.contains("SEEN=5"), "{env}");
    let dropin = ok(lab
        .exec(&[
            "cat",
            "/run/systemd/system/app.service.d/50-sparrow-pattern.conf",
        ])
        .unwrap());
    assert!(dropin.contains("Environment=\"MODE=lockdown\""), "{dropin}");
    let p = pattern(&lab);
    assert_eq!(p["restarts"], 1, "{p}");
    assert_eq!(p["environment"]["MODE"], "lockdown", "{p}");
    // Written again, the same answer: no second restart.
    let second = lab.prop("app.service", "MainPID").unwrap();
    append(&lab, "GET /fine\\n");
    let runs = pattern(&lab)["runs"].as_u64().unwrap();
    lab.wait_for("another run", secs(20), |lab| {
        let p = pattern(lab);
        Ok((p["runs"].as_u64() > Some(runs), p.to_string()))
    })
    .unwrap();
    std::thread::sleep(secs(1));
    assert_eq!(lab.prop("app.service", "MainPID").unwrap(), second);
    let j = lab.journal(&["-u", "systemd-sparrowd.service"]).unwrap();
    assert!(
        j.contains("pattern_check: restarting app.service with MODE=lockdown SEEN=5"),
        "{j}"
    );
    assert!(j.contains("5 suspicious requests"), "{j}");
}
