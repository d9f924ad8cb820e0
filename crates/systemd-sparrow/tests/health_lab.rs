//! Health checks in the lab: a service serving `/health` from a flag file.
//! Removing the flag makes systemd-sparrowd restart it (its MainPID
//! changes) until the restart budget is spent; then it stops restarting and
//! ONE alert reaches a webhook receiver on loopback; a restarted daemon
//! does not hand out a fresh budget; restoring the flag makes it healthy
//! again. A `check` closure calling the `http-check` task plugin and an
//! `on_failure` closure run in the daemon's evaluators.

mod common;

use common::{ok, secs, unit_status, SPARROW};

use sparrow_lab::{Lab, Setup};

/// 200 "ok" while /run/healthy exists, else 503.
const SERVER: &str = r#"
import http.server, os, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        good = os.path.exists('/run/healthy')
        self.send_response(200 if good else 503)
        self.end_headers()
        self.wfile.write(b'ok' if good else b'down')
    def log_message(self, *a):
        pass
http.server.HTTPServer(('127.0.0.1', int(sys.argv[1])), H).serve_forever()
"#;

/// Appends each POSTed body to /run/alerts.log.
const RECEIVER: &str = r#"
import http.server
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers['Content-Length']))
        with open('/run/alerts.log', 'ab') as f:
            f.write(body + b'\n')
        self.send_response(200)
        self.end_headers()
    def log_message(self, *a):
        pass
http.server.HTTPServer(('127.0.0.1', 18090), H).serve_forever()
"#;

const WEB: &str = r#"
service("web", #{
    exec_start: ["/usr/bin/python3", "/etc/systemd/sparrow/healthd.py", 18080],
    health: #{
        type: "http", url: "http://127.0.0.1:18080/health",
        expect: #{ status: 200, body: "ok" },
        interval: "1s", timeout: "1s", initial_delay: "1s",
        failure_threshold: 2,
        on_failure: "restart",
        restart_budget: #{ max: 2, within: "10m" },
    },
});
service("probed", #{
    exec_start: ["/bin/sleep", "infinity"],
    health: #{
        check: || {
            task_run("web answers", "http-check", #{ url: "http://127.0.0.1:18080/health", status: 200 });
            true
        },
        interval: "1s", failure_threshold: 1,
        restart_budget: #{ max: 1, within: "10m" },
        // Its last value names what the daemon does next.
        on_failure: |event| {
            log(`on_failure: ${event.unit} ${event.check} after ${event.failures}`);
            alert(`the probe of ${event.unit} failed`, "warning");
            "restart"
        },
    },
});
"#;

const CONFIG: &str = r#"
[alerts.webhook]
url = "http://127.0.0.1:18090/hook"
timeout = "2s"
retries = 2
backoff = "200ms"
"#;

fn status(lab: &Lab, unit: &str) -> serde_json::Value {
    unit_status(lab, unit)["health"].clone()
}

fn wait_health(lab: &Lab, unit: &str, what: &str, ok_when: impl Fn(&serde_json::Value) -> bool) {
    lab.wait_for(what, secs(40), |lab| {
        let h = status(lab, unit);
        Ok((ok_when(&h), h.to_string()))
    })
    .unwrap();
}

fn main_pid(lab: &Lab) -> String {
    lab.prop("web.service", "MainPID").unwrap()
}

fn alerts(lab: &Lab) -> Vec<serde_json::Value> {
    let text = lab
        .exec(&["cat", "/run/alerts.log"])
        .map(|o| o.stdout)
        .unwrap_or_default();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn a_failing_check_restarts_within_the_budget_alerts_once_and_recovers() {
    // The configuration and scripts beside the definition (the generator
    // reads only *.sparrow there); the daemon reads daemon.toml at start
    // (the lab's first boot enables and starts it by preset).
    let lab = Lab::boot(
        Setup::new(SPARROW)
            .definition("web.sparrow", WEB)
            .definition("daemon.toml", CONFIG)
            .definition("healthd.py", SERVER)
            .definition("receiver.py", RECEIVER)
            .daemon(),
    )
    .unwrap();
    ok(lab.exec(&["touch", "/run/healthy"]).unwrap());
    ok(lab
        .exec(&[
            "systemd-run",
            "--unit=receiver",
            "/usr/bin/python3",
            "/etc/systemd/sparrow/receiver.py",
        ])
        .unwrap());
    ok(lab
        .exec(&["systemctl", "start", "web.service", "probed.service"])
        .unwrap());
    ok(lab
        .exec(&["systemctl", "start", "systemd-sparrowd.service"])
        .unwrap());
    lab.wait_active_state("systemd-sparrowd.service", "active", secs(20))
        .unwrap();

    wait_health(&lab, "web.service", "web healthy", |h| {
        h["state"] == "healthy"
    });
    wait_health(&lab, "probed.service", "probed healthy", |h| {
        h["state"] == "healthy"
    });
    let first = main_pid(&lab);

    // The flag goes: the daemon restarts the service (a new MainPID)...
    ok(lab.exec(&["rm", "/run/healthy"]).unwrap());
    lab.wait_for("a restart", secs(20), |lab| {
        let pid = main_pid(lab);
        Ok((pid != first && pid != "0", pid))
    })
    .unwrap();
    // ... and once more, then the budget (2 within 10 min) is spent.
    wait_health(&lab, "web.service", "budget exhausted", |h| {
        h["budget_exhausted"] == true
    });
    let h = status(&lab, "web.service");
    assert_eq!(
        (h["restarts"].as_u64(), h["restarts_in_window"].as_u64()),
        (Some(2), Some(2)),
        "{h}"
    );
    assert_eq!(h["state"], "unhealthy");
    assert!(
        h["last_error"]
            .as_str()
            .unwrap()
            .contains("HTTP 503 (wanted 200)"),
        "{h}"
    );
    lab.wait_for("the alert at the webhook", secs(10), |lab| {
        let a = alerts(lab);
        let j = lab
            .journal(&["-u", "systemd-sparrowd.service", "-u", "receiver.service"])
            .unwrap();
        Ok((!a.is_empty(), format!("{a:?}\n{j}")))
    })
    .unwrap();

    // The check closure (task_run of http-check) failed too, and its
    // on_failure closure ran.
    wait_health(&lab, "probed.service", "probed unhealthy", |h| {
        h["state"] == "unhealthy"
    });
    let p = status(&lab, "probed.service");
    assert!(
        p["last_error"].as_str().unwrap().contains("http-check"),
        "{p}"
    );
    lab.wait_for("on_failure's log line", secs(10), |lab| {
        let j = lab.journal(&["-u", "systemd-sparrowd.service"]).unwrap();
        Ok((j.contains("on_failure: probed.service check after 1"), j))
    })
    .unwrap();
    // It returned "restart": the daemon restarted it, within its budget.
    lab.wait_for("the restart on_failure asked for", secs(10), |lab| {
        let j = lab.journal(&["-u", "systemd-sparrowd.service"]).unwrap();
        Ok((
            j.contains("restarting probed.service (restart 1 of at most 1")
                && j.contains("its on_failure closure said \"restart\""),
            j,
        ))
    })
    .unwrap();

    // No more restarts while it keeps failing, even across a daemon restart
    // (the budget is crash-only state), and still exactly one alert.
    let pid = main_pid(&lab);
    ok(lab
        .exec(&["systemctl", "restart", "systemd-sparrowd.service"])
        .unwrap());
    lab.wait_active_state("systemd-sparrowd.service", "active", secs(20))
        .unwrap();
    wait_health(
        &lab,
        "web.service",
        "unhealthy after the daemon restart",
        |h| h["state"] == "unhealthy",
    );
    std::thread::sleep(secs(3));
    assert_eq!(
        main_pid(&lab),
        pid,
        "restarted although the budget is spent"
    );
    let h = status(&lab, "web.service");
    assert_eq!(h["budget_exhausted"], true, "{h}");
    let all = alerts(&lab);
    // The on_failure closure's alert() reached the webhook too (the same
    // alert of a unit at most once a minute per daemon run: the restart
    // above may have let a second through).
    let from_closure: Vec<_> = all
        .iter()
        .filter(|a| a["unit"] == "probed.service" && a["check"] == "alert()")
        .collect();
    assert!((1..=2).contains(&from_closure.len()), "{all:?}");
    assert_eq!(from_closure[0]["check"], "alert()");
    assert_eq!(from_closure[0]["severity"], "warning");
    assert_eq!(
        from_closure[0]["message"],
        "the probe of probed.service failed"
    );
    let a: Vec<_> = all.iter().filter(|a| a["unit"] == "web.service").collect();
    assert_eq!(a.len(), 1, "{all:?}");
    assert_eq!(a[0]["check"], "http");
    assert_eq!(a[0]["severity"], "critical");
    assert!(
        a[0]["message"]
            .as_str()
            .unwrap()
            .contains("restart budget exhausted"),
        "{a:?}"
    );
    // The journal has it with structured fields.
    let j = lab
        .journal(&[
            "-u",
            "systemd-sparrowd.service",
            "SEVERITY=critical",
            "CHECK=http",
        ])
        .unwrap();
    assert!(
        j.contains("alert: web.service: restart budget exhausted"),
        "{j}"
    );

    // The flag is back: healthy, and the budget is no longer spent.
    ok(lab.exec(&["touch", "/run/healthy"]).unwrap());
    wait_health(&lab, "web.service", "healthy again", |h| {
        h["state"] == "healthy" && h["budget_exhausted"] == false
    });
    wait_health(&lab, "probed.service", "probed healthy again", |h| {
        h["state"] == "healthy"
    });
    let out = ok(lab
        .exec(&["/opt/sparrow/bin/systemd-sparrow", "reset", "web.service"])
        .unwrap());
    assert!(out.contains("restart budget reset"), "{out}");
    // A reset starts a fresh episode: unknown until probed again.
    wait_health(&lab, "web.service", "healthy after the reset", |h| {
        h["state"] == "healthy" && h["restarts_in_window"] == 0
    });
    let human = ok(lab
        .exec(&["/opt/sparrow/bin/systemd-sparrow", "status", "web.service"])
        .unwrap());
    assert!(human.contains("health (http check): healthy"), "{human}");
}
