//! Runtime mode in the lab: systemd-sparrowd adapting real units over real D-Bus.

mod common;

use common::{ok, secs, status_json, SPARROW};

use sparrow_lab::{Lab, Setup};

fn boot_with_daemon(setup: Setup) -> Lab {
    let lab = Lab::boot(setup.daemon()).unwrap_or_else(|e| panic!("{e}"));
    ok(lab
        .exec(&["systemctl", "start", "systemd-sparrowd.service"])
        .unwrap());
    lab.wait_active_state("systemd-sparrowd.service", "active", secs(20))
        .unwrap();
    lab
}

const ADAPTIVE: &str = r#"
service("adaptive", #{
    exec_start: ["/bin/sleep", "infinity"],
    memory_max: 1.GB,
    monitor: #{
        interval: "1s",
        min_dwell: "0s",
        change_threshold: #{ memory_max: "100M" },
        resources: || {
            let text = read_file("/etc/adaptive-limits");
            let lines = text.split("\n");
            #{ memory_max: lines[0], cpu_quota: lines[1] }
        },
    },
    wanted_by: "multi-user.target",
});
"#;

#[test]
fn the_daemon_applies_what_a_closure_decides_and_ignores_small_changes() {
    let lab = boot_with_daemon(Setup::new(SPARROW).definition("adaptive.sparrow", ADAPTIVE));
    let set_limits = |mem: &str, cpu: &str| {
        ok(lab
            .sh(&format!(
                "printf '%s\\n%s' '{mem}' '{cpu}' > /etc/adaptive-limits"
            ))
            .unwrap())
    };
    set_limits("512M", "50%");
    let wait_limits = |mem_mib: u64, quota: &str| {
        lab.wait_for(
            &format!("MemoryMax={mem_mib}M and CPUQuotaPerSecUSec={quota}"),
            secs(10),
            |lab| {
                let p = lab.show("adaptive.service", &["MemoryMax", "CPUQuotaPerSecUSec"])?;
                Ok((
                    p["MemoryMax"] == (mem_mib << 20).to_string()
                        && p["CPUQuotaPerSecUSec"] == quota,
                    format!("{p:?}"),
                ))
            },
        )
        .unwrap()
    };
    wait_limits(512, "500ms");
    // Growth, over the threshold.
    set_limits("768M", "150%");
    wait_limits(768, "1.500000s");
    // Under the 100M threshold: never applied, and status says why.
    set_limits("800M", "150%");
    std::thread::sleep(secs(3));
    assert_eq!(
        lab.prop("adaptive.service", "MemoryMax").unwrap(),
        (768u64 << 20).to_string()
    );
    let st = status_json(&lab, "adaptive.service");
    let decisions = st["status"]["units"][0]["last_eval"]["decisions"]
        .as_array()
        .unwrap()
        .clone();
    let mem = decisions
        .iter()
        .find(|d| d["prop"] == "memory_max")
        .unwrap();
    assert_eq!(mem["verdict"], "below threshold (changes by 32M)", "{st}");
    // The journal has the change with structured fields.
    let log = lab
        .journal(&[
            "-u",
            "systemd-sparrowd",
            "UNIT=adaptive.service",
            "PROPERTY=MemoryMax",
        ])
        .unwrap();
    assert!(
        log.contains("adaptive.service: MemoryMax 512M -> 768M (grow"),
        "{log}"
    );
}

fn wait_memory_max(lab: &Lab, unit: &str, want: u64) {
    lab.wait_for(&format!("{unit} MemoryMax={want}"), secs(15), |lab| {
        let v = lab.prop(unit, "MemoryMax")?;
        Ok((v == want.to_string(), format!("MemoryMax={v}")))
    })
    .unwrap();
}

const FILE_DRIVEN: &str = r#"
service("web", #{
    exec_start: ["/bin/sleep", "infinity"],
    monitor: #{ interval: "1s", min_dwell: "0s", resources: || {
        // Rhai's trim() changes the string in place.
        let limit = read_file("/etc/web-limit");
        limit.trim();
        #{ memory_max: limit }
    } },
    wanted_by: "multi-user.target",
});
"#;

const TROUBLE: &str = r#"
service("thrower", #{
    exec_start: ["/bin/sleep", "infinity"],
    monitor: #{ interval: "1s", resources: || { throw "the metrics backend is down"; } },
    wanted_by: "multi-user.target",
});
service("spinner", #{
    exec_start: ["/bin/sleep", "infinity"],
    monitor: #{ interval: "1s", resources: || { let n = 0; loop { n += 1; } } },
    wanted_by: "multi-user.target",
});
"#;

#[test]
fn failing_and_endless_closures_are_reported_and_others_keep_going() {
    let lab = boot_with_daemon(
        Setup::new(SPARROW)
            .definition("web.sparrow", FILE_DRIVEN)
            .definition("trouble.sparrow", TROUBLE),
    );
    ok(lab.sh("echo 300M > /etc/web-limit").unwrap());
    wait_memory_max(&lab, "web.service", 300 << 20);
    lab.wait_for("both bad closures to be reported", secs(15), |lab| {
        let t = status_json(lab, "thrower.service");
        let s = status_json(lab, "spinner.service");
        let t_err = t["status"]["units"][0]["last_eval"]["error"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let s_err = s["status"]["units"][0]["last_eval"]["error"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let s_slow = s["status"]["units"][0]["slow"].as_u64().unwrap_or(0);
        Ok((
            t_err.contains("the metrics backend is down") && s_slow > 0,
            format!("thrower: {t_err}; spinner: {s_err} (slow {s_slow})"),
        ))
    })
    .unwrap();
    let t = status_json(&lab, "thrower.service");
    let err = t["status"]["units"][0]["last_eval"]["error"]
        .as_str()
        .unwrap();
    assert!(
        err.starts_with("/etc/systemd/sparrow/trouble.sparrow:4:"),
        "errors name file:line:col: {err}"
    );
    // The daemon still serves the good unit while the spinner keeps a worker busy.
    ok(lab.sh("echo 400M > /etc/web-limit").unwrap());
    wait_memory_max(&lab, "web.service", 400 << 20);
    assert_eq!(
        lab.prop("systemd-sparrowd.service", "NRestarts").unwrap(),
        "0"
    );
    // The human form says the same.
    let human = ok(lab
        .exec(&["/opt/sparrow/bin/systemd-sparrow", "status"])
        .unwrap());
    assert!(human.contains("thrower.service (active)"), "{human}");
    assert!(
        human.contains("failed: /etc/systemd/sparrow/trouble.sparrow:4:"),
        "{human}"
    );
    assert!(
        human.contains("applied") && human.contains("memory_max 300M -> 400M"),
        "{human}"
    );
}

const HOSTILE: &str = r#"
import "h" as h;
service("deep", #{
    exec_start: ["/bin/sleep", "infinity"],
    monitor: #{ interval: "1s", resources: || {
        let a = []; for i in 0..5000 { a = [take(a)]; }
        a.to_debug();
        #{}
    } },
    wanted_by: "multi-user.target",
});
service("bomb", #{
    exec_start: ["/bin/sleep", "infinity"],
    monitor: #{ interval: "1s", resources: || {
        let s = "ab"; for i in 0..19 { s += s; }
        s.replace("a", s);
        #{}
    } },
    wanted_by: "multi-user.target",
});
service("natives", #{
    exec_start: ["/bin/sleep", "infinity"],
    monitor: #{ interval: "1s", resources: || {
        let a = []; a.pad(99999, 7);
        loop { a.to_debug(); }
    } },
    wanted_by: "multi-user.target",
});
service("valueerr", #{
    exec_start: ["/bin/sleep", "infinity"],
    monitor: #{ interval: "1s", resources: || #{ memory_max: "lots" } },
    wanted_by: "multi-user.target",
});
service("imported", #{
    exec_start: ["/bin/sleep", "infinity"],
    monitor: #{ interval: "1s", min_dwell: "0s", resources: || #{ memory_max: h::limit() } },
    wanted_by: "multi-user.target",
});
"#;

/// Issue 7: what kills a thread or a process (stack overflow, allocation
/// failure), time lost inside native calls, repeating value errors, and
/// definitions that crash while loading: the daemon stays up, keeps
/// managing the good units, and says in `status` what happened.
#[test]
fn hostile_closures_and_definitions_cannot_take_the_daemon_down() {
    let lab = Lab::boot(
        Setup::new(SPARROW)
            .definition("web.sparrow", FILE_DRIVEN)
            .definition("hostile.sparrow", HOSTILE)
            .definition("lib/h.sparrow", "fn limit() { \"320M\" }\n")
            .definition(
                "crash.sparrow",
                "let a = []; for i in 0..5000 { a = [take(a)]; }\nprint(a);\n",
            )
            .definition("lib/open.sparrow", "fn f() { 1 }\n")
            // Room for a debug build on a busy machine: what is tested here
            // is what kills a process, not the time limit.
            .unit_file(
                "systemd-sparrowd.service.d/limit.conf",
                "[Service]\nEnvironment=SYSTEMD_SPARROWD_CALL_LIMIT_MS=4000\n",
            )
            .definition(
                "uses-open.sparrow",
                "import \"open\" as o;\nservice(\"open\", #{ exec_start: \"/bin/true\", memory_max: || o::f() });\n",
            )
            .daemon(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    // A module anyone may write: the daemon must refuse it as the generator does.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        lab.definitions_dir().join("lib/open.sparrow"),
        std::fs::Permissions::from_mode(0o666),
    )
    .unwrap();
    ok(lab.sh("echo 300M > /etc/web-limit").unwrap());
    ok(lab
        .exec(&["systemctl", "start", "systemd-sparrowd.service"])
        .unwrap());
    lab.wait_active_state("systemd-sparrowd.service", "active", secs(20))
        .unwrap();
    let pid = lab.prop("systemd-sparrowd.service", "MainPID").unwrap();
    wait_memory_max(&lab, "web.service", 300 << 20);
    // The closure that calls a lib/ module's function works.
    wait_memory_max(&lab, "imported.service", 320 << 20);
    lab.wait_for("the hostile closures to be reported", secs(30), |lab| {
        let st = status_json(lab, "");
        let unit = |name: &str| {
            st["status"]["units"]
                .as_array()
                .unwrap()
                .iter()
                .find(|u| u["unit"] == name)
                .cloned()
                .unwrap_or_default()
        };
        let deep = unit("deep.service")["quarantined"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let bomb = unit("bomb.service")["quarantined"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let natives = unit("natives.service")["slow"].as_u64().unwrap_or(0);
        let value = unit("valueerr.service")["last_eval"]["error"]
            .as_str()
            .unwrap_or("")
            .to_string();
        Ok((
            deep.contains("overflowed the stack")
                && bomb.contains("ran out of memory")
                && natives > 0
                && value.contains("hostile.sparrow:31:"),
            format!("deep: {deep}; bomb: {bomb}; natives slow: {natives}; value: {value}"),
        ))
    })
    .unwrap();
    // The daemon may have read the module before it was opened up: re-read.
    ok(lab
        .exec(&["/opt/sparrow/bin/systemd-sparrow", "reload"])
        .unwrap());
    lab.wait_for("the open module to be refused", secs(15), |lab| {
        let problems = status_json(lab, "")["status"]["daemon"]["problems"].to_string();
        // The stack guard stops the deep file; on a loaded machine the
        // wall-clock limit may come first: either way it is left out alone.
        let crash_stopped = problems
            .contains("crash.sparrow: evaluating this file overflowed the stack")
            || (problems.contains("crash.sparrow:") && problems.contains("wall-clock limit"));
        Ok((
            crash_stopped && problems.contains("writable by group or others"),
            problems,
        ))
    })
    .unwrap();
    // Still serving the good unit, and never restarted.
    ok(lab.sh("echo 400M > /etc/web-limit").unwrap());
    wait_memory_max(&lab, "web.service", 400 << 20);
    assert_eq!(
        lab.prop("systemd-sparrowd.service", "MainPID").unwrap(),
        pid
    );
    assert_eq!(
        lab.prop("systemd-sparrowd.service", "NRestarts").unwrap(),
        "0"
    );
    // The same value error, every second: logged once.
    std::thread::sleep(secs(3));
    let log = lab
        .journal(&["-u", "systemd-sparrowd", "UNIT=valueerr.service"])
        .unwrap();
    assert_eq!(
        log.matches("evaluation of valueerr.service failed").count(),
        1,
        "{log}"
    );
}

#[test]
fn status_eval_reload_and_readiness() {
    let lab = boot_with_daemon(Setup::new(SPARROW).definition("web.sparrow", FILE_DRIVEN));
    ok(lab.sh("echo 300M > /etc/web-limit").unwrap());
    wait_memory_max(&lab, "web.service", 300 << 20);
    // READY=1 came with a STATUS= line; the watchdog is on.
    lab.wait_for("STATUS= to count the active unit", secs(5), |lab| {
        let t = lab.prop("systemd-sparrowd.service", "StatusText")?;
        Ok((
            t.starts_with("managing 1 units (1 active); 1 changes applied"),
            t,
        ))
    })
    .unwrap();
    let p = lab
        .show("systemd-sparrowd.service", &["WatchdogUSec"])
        .unwrap();
    assert_eq!(p["WatchdogUSec"], "30s");
    let st = status_json(&lab, "web.service");
    let u = &st["status"]["units"][0];
    assert_eq!(u["interval_ms"], 1000, "{st}");
    assert!(u["next_eval_in_ms"].as_u64().unwrap() <= 1000, "{st}");
    assert!(u["last_eval"]["at_ms"].as_u64().unwrap() > 0, "{st}");
    assert_eq!(u["applied"][0]["new"], "300M", "{st}");
    assert_eq!(u["live"]["memory_max"], "300M", "{st}");
    // eval: what would change, without applying. An hourly unit, so that
    // its schedule does not apply the value first.
    let hourly = FILE_DRIVEN
        .replace("\"web\"", "\"hourly\"")
        .replace("/etc/web-limit", "/etc/hourly-limit")
        .replace("interval: \"1s\"", "interval: \"1h\"");
    lab.write_definition("hourly.sparrow", &hourly).unwrap();
    ok(lab.sh("echo 100M > /etc/hourly-limit").unwrap());
    lab.daemon_reload().unwrap();
    ok(lab.exec(&["systemctl", "start", "hourly.service"]).unwrap());
    wait_memory_max(&lab, "hourly.service", 100 << 20);
    ok(lab.sh("echo 600M > /etc/hourly-limit").unwrap());
    let out = ok(lab
        .exec(&[
            "/opt/sparrow/bin/systemd-sparrow",
            "eval",
            "hourly.service",
            "resources",
        ])
        .unwrap());
    assert!(out.contains("nothing was applied"), "{out}");
    assert!(
        out.contains("memory_max")
            && out.contains("desired 600M")
            && out.contains("live 100M")
            && out.contains(" apply"),
        "{out}"
    );
    std::thread::sleep(secs(2));
    assert_eq!(
        lab.prop("hourly.service", "MemoryMax").unwrap(),
        (100u64 << 20).to_string(),
        "eval must not apply"
    );
    // A new definition is picked up by `systemd-sparrow reload`.
    lab.write_definition(
        "db.sparrow",
        &FILE_DRIVEN
            .replace("\"web\"", "\"db\"")
            .replace("/etc/web-limit", "/etc/db-limit"),
    )
    .unwrap();
    ok(lab.exec(&["systemctl", "daemon-reload"]).unwrap());
    ok(lab.exec(&["systemctl", "start", "db.service"]).unwrap());
    ok(lab.sh("echo 200M > /etc/db-limit").unwrap());
    let reload = ok(lab
        .exec(&["/opt/sparrow/bin/systemd-sparrow", "reload"])
        .unwrap());
    assert!(reload.contains("re-reading definitions"), "{reload}");
    wait_memory_max(&lab, "db.service", 200 << 20);
    // A broken #!raku unit is not skipped silently: the daemon translates
    // Raku definitions through the bridge, and status names the file, the
    // line and Raku's message.
    lab.write_unit_file("legacy.service", "#!raku\nservice-name 'legacy';\n")
        .unwrap();
    ok(lab
        .exec(&["/opt/sparrow/bin/systemd-sparrow", "reload"])
        .unwrap());
    lab.wait_for("the Raku unit to be reported", secs(10), |lab| {
        let problems = status_json(lab, "")["status"]["daemon"]["problems"].to_string();
        Ok((
            problems.contains("legacy.service:2: Raku: Undeclared routine: service-name"),
            problems,
        ))
    })
    .unwrap();
    // Unknown units are refused with a reason.
    let o = lab
        .exec(&["/opt/sparrow/bin/systemd-sparrow", "status", "nope.service"])
        .unwrap();
    assert_eq!(o.code, Some(2));
    assert!(
        o.stderr.contains("nope.service is not managed"),
        "{}",
        o.stderr
    );
}

#[test]
fn the_control_socket_is_for_root_only() {
    let lab = boot_with_daemon(Setup::new(SPARROW).definition("web.sparrow", FILE_DRIVEN));
    // Open the file permissions, so that the daemon's own check answers.
    ok(lab
        .sh("chmod 755 /run/systemd-sparrow && chmod 666 /run/systemd-sparrow/control.sock")
        .unwrap());
    let o = lab
        .exec(&[
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "/opt/sparrow/bin/systemd-sparrow",
            "status",
        ])
        .unwrap();
    assert_eq!(o.code, Some(2), "{}{}", o.stdout, o.stderr);
    assert!(
        o.stderr
            .contains("permission denied: the control socket is for root (you are uid 65534)"),
        "{}",
        o.stderr
    );
    // The uid is checked before a byte is read: a silent user gets the
    // answer at once, not after the read timeout.
    let silent = r#"
import socket, time
s = socket.socket(socket.AF_UNIX); s.connect("/run/systemd-sparrow/control.sock")
s.settimeout(3); t = time.time(); reply = s.recv(4096)
print(round(time.time() - t, 2), reply.decode().strip())
"#;
    let o = lab
        .exec(&[
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "python3",
            "-c",
            silent,
        ])
        .unwrap();
    let secs_waited: f64 = o
        .stdout
        .split(' ')
        .next()
        .unwrap_or("9")
        .parse()
        .unwrap_or(9.0);
    assert!(secs_waited < 1.0, "{}{}", o.stdout, o.stderr);
    assert!(o.stdout.contains("permission denied"), "{}", o.stdout);
    // A request line is bounded.
    let long = r#"
import socket
s = socket.socket(socket.AF_UNIX); s.connect("/run/systemd-sparrow/control.sock")
s.settimeout(10)
try:
    s.sendall(b'{"cmd":"status","unit":"' + b'x' * 200000 + b'"}\n')
except OSError:
    pass
print(s.recv(4096).decode().strip())
"#;
    let o = ok(lab.exec(&["python3", "-c", long]).unwrap());
    assert!(o.contains("request longer than 65536 bytes"), "{o}");
    // Out of descriptors, it pauses instead of spinning on accept, and
    // answers again once descriptors are free.
    ok(lab
        .sh("mkdir -p /etc/systemd/system/systemd-sparrowd.service.d && printf '[Service]\\nLimitNOFILE=64\\n' > /etc/systemd/system/systemd-sparrowd.service.d/nofile.conf && systemctl daemon-reload && systemctl restart systemd-sparrowd")
        .unwrap());
    lab.wait_active_state("systemd-sparrowd.service", "active", secs(20))
        .unwrap();
    let pid = lab.prop("systemd-sparrowd.service", "MainPID").unwrap();
    let flood = format!(
        r#"
import socket, time
def cpu():
    f = open("/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / 100.0
held = []
for i in range(120):
    s = socket.socket(socket.AF_UNIX); s.connect("/run/systemd-sparrow/control.sock"); held.append(s)
c0 = cpu(); time.sleep(3); c1 = cpu()
print(round(c1 - c0, 2))
"#
    );
    let o = ok(lab
        .exec_timeout(&["python3", "-c", &flood], secs(30))
        .unwrap());
    let busy: f64 = o.trim().parse().unwrap_or(99.0);
    assert!(
        busy < 0.5,
        "the daemon used {busy} s of CPU in 3 s at fd exhaustion"
    );
    // The flood is gone with its process: the daemon answers again.
    let st = status_json(&lab, "web.service");
    assert_eq!(st["ok"], true, "{st}");
    let log = lab.journal(&["-u", "systemd-sparrowd"]).unwrap();
    assert!(log.contains("accept failed"), "{log}");
}

#[test]
fn a_killed_daemon_resumes_without_reapplying() {
    let lab = boot_with_daemon(Setup::new(SPARROW).definition("web.sparrow", FILE_DRIVEN));
    ok(lab.sh("echo 300M > /etc/web-limit").unwrap());
    wait_memory_max(&lab, "web.service", 300 << 20);
    let applied = |lab: &Lab| {
        let log = lab
            .journal(&[
                "-u",
                "systemd-sparrowd",
                "UNIT=web.service",
                "PROPERTY=MemoryMax",
            ])
            .unwrap();
        log.lines().filter(|l| l.contains("->")).count()
    };
    assert_eq!(applied(&lab), 1);
    let pid = lab.prop("systemd-sparrowd.service", "MainPID").unwrap();
    ok(lab
        .exec(&[
            "systemctl",
            "kill",
            "--signal=KILL",
            "systemd-sparrowd.service",
        ])
        .unwrap());
    lab.wait_for("systemd to restart the daemon", secs(20), |lab| {
        let p = lab.show(
            "systemd-sparrowd.service",
            &["MainPID", "ActiveState", "NRestarts"],
        )?;
        Ok((
            p["ActiveState"] == "active" && p["MainPID"] != pid && p["NRestarts"] == "1",
            format!("{p:?}"),
        ))
    })
    .unwrap();
    // It evaluates again (several 1 s intervals) and finds the value live.
    lab.wait_for(
        "the restarted daemon to evaluate web.service",
        secs(10),
        |lab| {
            let st = status_json(lab, "web.service");
            let n = st["status"]["units"][0]["evaluations"]
                .as_u64()
                .unwrap_or(0);
            Ok((n >= 3, st.to_string()))
        },
    )
    .unwrap();
    let st = status_json(&lab, "web.service");
    assert_eq!(
        st["status"]["units"][0]["last_eval"]["decisions"][0]["verdict"], "same",
        "{st}"
    );
    assert_eq!(
        applied(&lab),
        1,
        "nothing was applied again after the restart"
    );
    // Its state file survived the crash (dwell timers).
    let state = ok(lab
        .exec(&["cat", "/run/systemd-sparrow/state.json"])
        .unwrap());
    assert!(
        state.contains("web.service") && state.contains("memory_max"),
        "{state}"
    );
    // And it still acts on changes.
    ok(lab.sh("echo 350M > /etc/web-limit").unwrap());
    wait_memory_max(&lab, "web.service", 350 << 20);
}

/// A drop-in that makes the daemon try the system bus before systemd's
/// private socket (its default as root).
const SYSTEM_BUS_FIRST: (&str, &str) = (
    "systemd-sparrowd.service.d/bus.conf",
    "[Service]\nEnvironment=SYSTEMD_SPARROWD_BUS=system\n",
);

#[test]
fn dbus_restarts_and_daemon_reloads_are_survived() {
    let lab = boot_with_daemon(
        Setup::new(SPARROW)
            .definition("web.sparrow", FILE_DRIVEN)
            .unit_file(SYSTEM_BUS_FIRST.0, SYSTEM_BUS_FIRST.1),
    );
    ok(lab.sh("echo 300M > /etc/web-limit").unwrap());
    wait_memory_max(&lab, "web.service", 300 << 20);
    let st = status_json(&lab, "");
    assert_eq!(st["status"]["daemon"]["bus"], "system bus", "{st}");

    ok(lab.exec(&["systemctl", "restart", "dbus.service"]).unwrap());
    ok(lab.sh("echo 320M > /etc/web-limit").unwrap());
    wait_memory_max(&lab, "web.service", 320 << 20);

    // daemon-reload with an edited definition: the new interval is used and
    // what the daemon knows of the unit (its changes) is kept.
    lab.write_definition(
        "web.sparrow",
        &FILE_DRIVEN.replace("interval: \"1s\"", "interval: \"2s\""),
    )
    .unwrap();
    lab.daemon_reload().unwrap();
    lab.wait_for("the new interval after daemon-reload", secs(10), |lab| {
        let st = status_json(lab, "web.service");
        Ok((
            st["status"]["units"][0]["interval_ms"] == 2000,
            st.to_string(),
        ))
    })
    .unwrap();
    let st = status_json(&lab, "web.service");
    assert!(
        st["status"]["units"][0]["applied"]
            .as_array()
            .unwrap()
            .len()
            >= 2,
        "history kept across reload: {st}"
    );
    assert!(
        st["status"]["daemon"]["generation"].as_u64().unwrap() >= 2,
        "{st}"
    );
    ok(lab.sh("echo 340M > /etc/web-limit").unwrap());
    wait_memory_max(&lab, "web.service", 340 << 20);
    assert_eq!(
        lab.prop("systemd-sparrowd.service", "NRestarts").unwrap(),
        "0"
    );
}

const PROBE: &str = r#"
service("probe", #{
    exec_start: ["/usr/bin/python3", "-m", "http.server", "--bind", "127.0.0.1", 8099],
    monitor: #{ interval: "1s", min_dwell: "0s", resources: || {
        let mem = service_memory("probe");
        let cpu = psi("cpu");
        log(`state=${service_state("probe")} mem=${mem} avail=${available_memory()} free=${free_memory()} load=${load()} cpu10=${cpu.some.avg10} conns=${connections(8099)}`);
        #{ memory_high: if mem > 1.MB { 200.MB } else { 100.MB } }
    } },
    wanted_by: "multi-user.target",
});
"#;

/// `key=value` pairs of a log line.
fn fields(line: &str) -> std::collections::HashMap<String, String> {
    line.split_whitespace()
        .filter_map(|w| w.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn runtime_functions_read_the_real_machine() {
    let lab = boot_with_daemon(Setup::new(SPARROW).definition("probe.sparrow", PROBE));
    // service_memory() read the unit's real cgroup: over 1M, so MemoryHigh=200M.
    lab.wait_for("MemoryHigh=200M from service_memory()", secs(15), |lab| {
        let v = lab.prop("probe.service", "MemoryHigh")?;
        Ok((v == (200u64 << 20).to_string(), format!("MemoryHigh={v}")))
    })
    .unwrap();
    // Hold a connection open so that connections(8099) has one to count.
    ok(lab
        .exec(&[
            "systemd-run",
            "--unit=holder",
            "/usr/bin/python3",
            "-c",
            "import socket,time; s=socket.create_connection(('127.0.0.1', 8099)); time.sleep(120)",
        ])
        .unwrap());
    let mut last = String::new();
    lab.wait_for(
        "a log() line counting the open connection",
        secs(15),
        |lab| {
            let log = lab
                .journal(&["-u", "systemd-sparrowd", "UNIT=probe.service"])
                .unwrap();
            last = log
                .lines()
                .rev()
                .find(|l| l.contains("state="))
                .unwrap_or("")
                .to_string();
            Ok((
                fields(&last).get("conns").map(String::as_str) == Some("1"),
                log,
            ))
        },
    )
    .unwrap();
    let f = fields(&last);
    assert_eq!(f["state"], "active", "{last}");
    let num = |k: &str| {
        f[k].parse::<f64>()
            .unwrap_or_else(|_| panic!("{k} is not a number: {last}"))
    };
    assert!(num("mem") > 1_048_576.0, "{last}");
    let meminfo = ok(lab.exec(&["cat", "/proc/meminfo"]).unwrap());
    let total: f64 = meminfo
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<f64>()
        .unwrap()
        * 1024.0;
    assert!(num("avail") > 0.0 && num("avail") <= total, "{last}");
    assert!(
        num("free") > 0.0 && num("free") <= num("avail") + total,
        "{last}"
    );
    assert!(num("load") >= 0.0 && num("cpu10") >= 0.0, "{last}");
}

const ENCODINGS: &str = r#"
service("enc", #{
    exec_start: ["/bin/sleep", "infinity"],
    monitor: #{ interval: "1s", min_dwell: "0s", resources: || #{
        memory_high: "25%",
        tasks_max: "10%",
        cpu_weight: 300,
        io_weight: 200,
        allowed_cpus: [0],
        memory_swap_max: "infinity",
    } },
    memory_swap_max: 64.MB,
    wanted_by: "multi-user.target",
});
"#;

#[test]
fn every_property_reaches_systemd_with_the_right_encoding_once() {
    let lab = boot_with_daemon(Setup::new(SPARROW).definition("enc.sparrow", ENCODINGS));
    lab.wait_for("all six properties to be applied", secs(15), |lab| {
        let p = lab.show(
            "enc.service",
            &["CPUWeight", "IOWeight", "AllowedCPUs", "MemorySwapMax"],
        )?;
        Ok((
            p["CPUWeight"] == "300"
                && p["IOWeight"] == "200"
                && p["AllowedCPUs"] == "0"
                && p["MemorySwapMax"] == "infinity",
            format!("{p:?}"),
        ))
    })
    .unwrap();
    let p = lab
        .show("enc.service", &["MemoryHigh", "TasksMax"])
        .unwrap();
    // Percentages went through the *Scale properties: systemd resolved them
    // against the machine (the lab shares the host's memory and task limits).
    let total: u64 = std::fs::read_to_string("/proc/meminfo")
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u64>()
        .unwrap()
        * 1024;
    let high: u64 = p["MemoryHigh"].parse().unwrap();
    assert!(
        high.abs_diff(total / 4) < 8 << 20,
        "MemoryHigh={high}, a quarter of {total}"
    );
    assert_eq!(high % 4096, 0, "page-rounded as systemd does");
    let tasks: u64 = p["TasksMax"].parse().unwrap();
    assert!(tasks > 100, "TasksMax={tasks}");
    // Several more evaluations find everything live, rounding included:
    // each property was set exactly once.
    std::thread::sleep(secs(4));
    let log = lab
        .journal(&["-u", "systemd-sparrowd", "UNIT=enc.service"])
        .unwrap();
    for prop in [
        "MemoryHigh",
        "TasksMax",
        "CPUWeight",
        "IOWeight",
        "AllowedCPUs",
        "MemorySwapMax",
    ] {
        let n = log
            .lines()
            .filter(|l| l.contains(&format!(": {prop} ")))
            .count();
        assert_eq!(n, 1, "{prop} applied {n} times:\n{log}");
    }
    let st = status_json(&lab, "enc.service");
    let verdicts: Vec<&str> = st["status"]["units"][0]["last_eval"]["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["verdict"].as_str().unwrap())
        .collect();
    assert!(verdicts.iter().all(|v| *v == "same"), "{st}");
}

/// Values the generator accepts for a dynamic property are applied live
/// with the same meaning: `idle` (D-Bus weight 0) and `infinity` for a quota.
const DRIFT: &str = r#"
service("drift", #{
    exec_start: ["/bin/sleep", "infinity"],
    cpu_weight: || if file_exists("/etc/drift") { "idle" } else { 100 },
    cpu_quota: || if file_exists("/etc/drift") { "infinity" } else { "50%" },
    monitor: #{ interval: "1s", min_dwell: "0s" },
    wanted_by: "multi-user.target",
});
"#;

#[test]
fn idle_weights_and_unlimited_quotas_are_applied_as_the_generator_writes_them() {
    let lab = boot_with_daemon(Setup::new(SPARROW).definition("drift.sparrow", DRIFT));
    let want = |weight: &'static str, quota: &'static str| {
        move |lab: &Lab| {
            let p = lab.show("drift.service", &["CPUWeight", "CPUQuotaPerSecUSec"])?;
            Ok((
                p["CPUWeight"] == weight && p["CPUQuotaPerSecUSec"] == quota,
                format!("{p:?}"),
            ))
        }
    };
    lab.wait_for("the generated values", secs(10), want("100", "500ms"))
        .unwrap();
    ok(lab.sh("touch /etc/drift").unwrap());
    lab.wait_for("idle and no quota", secs(10), want("idle", "infinity"))
        .unwrap();
    // Read back as set: later evaluations find nothing to change.
    std::thread::sleep(secs(3));
    let st = status_json(&lab, "drift.service");
    let decisions = st["status"]["units"][0]["last_eval"]["decisions"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(decisions.len(), 2, "{st}");
    assert!(decisions.iter().all(|d| d["verdict"] == "same"), "{st}");
}

#[test]
fn the_private_socket_is_the_default_and_survives_daemon_reexec() {
    let lab = boot_with_daemon(Setup::new(SPARROW).definition("web.sparrow", FILE_DRIVEN));
    let st = status_json(&lab, "");
    assert_eq!(st["status"]["daemon"]["bus"], "private socket", "{st}");
    ok(lab.sh("echo 300M > /etc/web-limit").unwrap());
    wait_memory_max(&lab, "web.service", 300 << 20);
    // Re-executing systemd closes every private connection: the daemon
    // connects again and goes on applying.
    ok(lab.exec(&["systemctl", "daemon-reexec"]).unwrap());
    ok(lab.sh("echo 320M > /etc/web-limit").unwrap());
    wait_memory_max(&lab, "web.service", 320 << 20);
    let log = lab.journal(&["-u", "systemd-sparrowd.service"]).unwrap();
    assert!(
        log.matches("connected to systemd (private socket)").count() >= 2,
        "a second connection after the re-exec:\n{log}"
    );
    // Unit state changes still arrive (signals on the direct connection).
    ok(lab.exec(&["systemctl", "restart", "web.service"]).unwrap());
    ok(lab.sh("echo 340M > /etc/web-limit").unwrap());
    wait_memory_max(&lab, "web.service", 340 << 20);
    assert_eq!(
        lab.prop("systemd-sparrowd.service", "NRestarts").unwrap(),
        "0"
    );
}

#[test]
fn without_a_system_bus_the_daemon_falls_back_to_systemds_private_socket() {
    let lab = Lab::boot(
        Setup::new(SPARROW)
            .daemon()
            .definition("web.sparrow", FILE_DRIVEN)
            .unit_file(SYSTEM_BUS_FIRST.0, SYSTEM_BUS_FIRST.1),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    // Masked, so that the daemon's Wants=dbus.service cannot bring it back.
    ok(lab.sh("systemctl mask --runtime dbus.socket dbus.service && systemctl stop dbus.socket dbus.service").unwrap());
    ok(lab
        .exec(&["systemctl", "start", "systemd-sparrowd.service"])
        .unwrap());
    lab.wait_active_state("systemd-sparrowd.service", "active", secs(20))
        .unwrap();
    lab.wait_for("the daemon on the private socket", secs(10), |lab| {
        let st = status_json(lab, "");
        Ok((
            st["status"]["daemon"]["bus"] == "private socket",
            st.to_string(),
        ))
    })
    .unwrap();
    ok(lab.sh("echo 300M > /etc/web-limit").unwrap());
    wait_memory_max(&lab, "web.service", 300 << 20);
    // Unit state changes still arrive (signals on the direct connection).
    ok(lab.exec(&["systemctl", "restart", "web.service"]).unwrap());
    ok(lab.sh("echo 310M > /etc/web-limit").unwrap());
    wait_memory_max(&lab, "web.service", 310 << 20);
    lab.wait_for("the daemon to see web.service restarted", secs(10), |lab| {
        let st = status_json(lab, "web.service");
        Ok((
            st["status"]["units"][0]["active_state"] == "active",
            st.to_string(),
        ))
    })
    .unwrap();
}
