//! task_run from closures the daemon runs, in the lab: a real task
//! directory and a built-in plugin decide a live property, `systemd-sparrow
//! eval` shows the closure's result, and a failing task is reported with its
//! exit code and stderr while the daemon keeps serving.

mod common;

use common::{ok, secs, status_json, SPARROW};

use sparrow_lab::{Lab, Setup};

const PLANNED: &str = r#"
service("planned", #{
    exec_start: ["/bin/sleep", "infinity"],
    monitor: #{ interval: "1s", min_dwell: "0s", resources: || {
        let plan = task_run("memory plan", "/opt/tasks/plan", #{ unit: "planned" });
        let mem = task_run("memory", "resource-monitor", #{});
        if mem.memory_total > 0 && plan.__data__.exit_code == 0 {
            #{ memory_max: plan.limit }
        } else {
            #{}
        }
    } },
    wanted_by: "multi-user.target",
});
service("failing", #{
    exec_start: ["/bin/sleep", "infinity"],
    monitor: #{ interval: "1s", resources: || {
        task_run("broken probe", "/opt/tasks/broken", #{});
        #{}
    } },
    wanted_by: "multi-user.target",
});
"#;

/// A plan task (bash, with a config.yaml default and a task.check) and a
/// task that fails with a message on stderr.
const SETUP_TASKS: &str = r#"
mkdir -p /opt/tasks/plan /opt/tasks/broken
printf 'default_limit: 200M\n' > /opt/tasks/plan/config.yaml
cat > /opt/tasks/plan/task.bash <<'EOF'
limit=$(cat /etc/planned-limit 2>/dev/null || config default_limit)
echo "plan for $(config unit): $limit"
update_state limit "$limit"
EOF
printf 'regexp: ^^ plan \\s for \\s planned\n' > /opt/tasks/plan/task.check
printf 'echo "probe: backend unreachable" >&2\nexit 3\n' > /opt/tasks/broken/task.bash
"#;

fn wait_memory_max(lab: &Lab, unit: &str, want: u64) {
    lab.wait_for(&format!("{unit} MemoryMax={want}"), secs(15), |lab| {
        let v = lab.prop(unit, "MemoryMax")?;
        Ok((v == want.to_string(), format!("MemoryMax={v}")))
    })
    .unwrap();
}

#[test]
fn closures_run_tasks_and_their_results_are_applied() {
    let lab = Lab::boot(
        Setup::new(SPARROW)
            .definition("planned.sparrow", PLANNED)
            .daemon(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    ok(lab.sh(SETUP_TASKS).unwrap());
    ok(lab
        .exec(&["systemctl", "start", "systemd-sparrowd.service"])
        .unwrap());
    // The task's default (config.yaml) is applied live.
    wait_memory_max(&lab, "planned.service", 200 << 20);
    // The task reads the machine: a new plan is applied on the next round.
    ok(lab.sh("echo 300M > /etc/planned-limit").unwrap());
    wait_memory_max(&lab, "planned.service", 300 << 20);
    // `eval` runs the closure (and so the task) now and shows its result.
    ok(lab.sh("echo 350M > /etc/planned-limit").unwrap());
    let out = ok(lab
        .exec(&[
            "/opt/sparrow/bin/systemd-sparrow",
            "eval",
            "planned.service",
        ])
        .unwrap());
    assert!(out.contains("memory_max") && out.contains("350M"), "{out}");
    // The failing task: its exit code and stderr reach the status, and the
    // daemon goes on.
    lab.wait_for("the failing task to be reported", secs(15), |lab| {
        let st = status_json(lab, "failing.service");
        let err = st["status"]["units"][0]["last_eval"]["error"]
            .as_str()
            .unwrap_or("")
            .to_string();
        Ok((
            err.contains("exit code 3") && err.contains("backend unreachable"),
            err,
        ))
    })
    .unwrap();
    let st = status_json(&lab, "failing.service");
    let err = st["status"]["units"][0]["last_eval"]["error"]
        .as_str()
        .unwrap();
    assert!(
        err.starts_with("/etc/systemd/sparrow/planned.sparrow:"),
        "errors name file:line:col: {err}"
    );
    assert_eq!(
        lab.show("systemd-sparrowd.service", &["ActiveState"])
            .unwrap()["ActiveState"],
        "active"
    );
    // Tasks ran in scratch directories on /run (a tmpfs), all removed.
    let left = ok(lab
        .sh("test -d /run/systemd-sparrow/tasks && ls -A /run/systemd-sparrow/tasks | wc -l")
        .unwrap());
    assert_eq!(left.trim(), "0", "scratch directories left: {left}");
}
