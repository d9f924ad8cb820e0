//! systemd-sparrowd under load, in the lab: 500 managed units evaluated
//! every 10 s; CPU time and resident memory over 2 minutes of the daemon and
//! its evaluator processes together, read from /proc. Needs root (it boots
//! a lab).
//!
//! Run: `cargo bench -p systemd-sparrow --bench daemon_load`
//! (`SPARROW_BENCH_UNITS`, `SPARROW_BENCH_SECONDS` change the size and length).

use std::time::{Duration, Instant};

use sparrow_lab::{Lab, Setup};

const SPARROW: &str = env!("CARGO_BIN_EXE_systemd-sparrow");

fn definition(i: usize) -> String {
    // Static values equal to what the closure decides on an idle host: the
    // steady state, where every evaluation finds nothing to change.
    format!(
        r#"service("bench-{i}", #{{
    exec_start: ["/bin/sleep", "infinity"],
    memory_max: 1.GB,
    cpu_quota: "100%",
    monitor: #{{ interval: "10s", resources: || #{{
        memory_max: if available_memory() < 1.GB {{ "512M" }} else {{ "1G" }},
        cpu_quota: if load() > 80.0 {{ "50%" }} else {{ "100%" }},
    }} }},
}});"#
    )
}

fn proc_field(lab: &Lab, pid: &str, file: &str, key: &str) -> u64 {
    let text = lab
        .exec(&["cat", &format!("/proc/{pid}/{file}")])
        .unwrap()
        .stdout;
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// The daemon's evaluator processes.
fn children(lab: &Lab, pid: &str) -> Vec<String> {
    lab.exec(&["pgrep", "-P", pid])
        .unwrap()
        .stdout
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// utime + stime of a process, in clock ticks; with `reaped`, also those of
/// its children that have exited (cutime + cstime).
fn cpu_ticks(lab: &Lab, pid: &str, reaped: bool) -> u64 {
    let stat = lab
        .exec(&["cat", &format!("/proc/{pid}/stat")])
        .unwrap()
        .stdout;
    // Fields after the parenthesised command name; utime, stime, cutime and
    // cstime are 14 to 17.
    let Some(close) = stat.rfind(')') else {
        return 0; // gone meanwhile
    };
    let f: Vec<u64> = stat[close + 2..]
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    f[11] + f[12] + if reaped { f[13] + f[14] } else { 0 }
}

/// CPU ticks of the daemon and every evaluator process it has had.
fn tree_ticks(lab: &Lab, pid: &str) -> u64 {
    cpu_ticks(lab, pid, true)
        + children(lab, pid)
            .iter()
            .map(|c| cpu_ticks(lab, c, false))
            .sum::<u64>()
}

/// Memory of the daemon and its evaluator processes, KiB: resident (which
/// counts the shared binary once per process) and proportional (`Pss`,
/// shared pages divided among the processes that share them).
fn tree_memory(lab: &Lab, pid: &str) -> (u64, u64) {
    let mut pids = vec![pid.to_string()];
    pids.extend(children(lab, pid));
    pids.iter().fold((0, 0), |(rss, pss), p| {
        (
            rss + proc_field(lab, p, "smaps_rollup", "Rss:"),
            pss + proc_field(lab, p, "smaps_rollup", "Pss:"),
        )
    })
}

fn main() {
    let n: usize = std::env::var("SPARROW_BENCH_UNITS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let secs: u64 = std::env::var("SPARROW_BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(120);
    let mut setup = Setup::new(SPARROW).daemon();
    for i in 0..n {
        setup = setup.definition(&format!("bench-{i}.sparrow"), &definition(i));
    }
    setup.boot_timeout = Duration::from_secs(120);
    let lab = Lab::boot(setup).unwrap_or_else(|e| panic!("{e}"));
    let start = lab
        .exec_timeout(
            &[
                "/bin/bash",
                "-c",
                &format!("systemctl start bench-{{0..{}}}.service", n - 1),
            ],
            Duration::from_secs(120),
        )
        .unwrap();
    assert!(start.ok(), "{}", start.stderr);
    let o = lab
        .exec(&["systemctl", "start", "systemd-sparrowd.service"])
        .unwrap();
    assert!(o.ok(), "{}", o.stderr);
    let want = format!("managing {n} units ({n} active)");
    lab.wait_for(
        "the daemon to track every unit",
        Duration::from_secs(60),
        |lab| {
            let t = lab.prop("systemd-sparrowd.service", "StatusText")?;
            Ok((t.starts_with(&want), t))
        },
    )
    .unwrap();
    // Let the first round of evaluations (spread over the interval) pass.
    std::thread::sleep(Duration::from_secs(15));
    let pid = lab.prop("systemd-sparrowd.service", "MainPID").unwrap();
    let evals = |lab: &Lab| {
        let out = lab
            .exec(&["/opt/sparrow/bin/systemd-sparrow", "status", "--json"])
            .unwrap()
            .stdout;
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        (
            v["status"]["daemon"]["evaluations"].as_u64().unwrap(),
            v["status"]["daemon"]["errors"].as_u64().unwrap(),
        )
    };
    let (e0, _) = evals(&lab);
    let t0 = tree_ticks(&lab, &pid);
    let d0 = cpu_ticks(&lab, &pid, false);
    let began = Instant::now();
    let (mut rss_max, mut pss_max) = (0, 0);
    while began.elapsed() < Duration::from_secs(secs) {
        let (rss, pss) = tree_memory(&lab, &pid);
        rss_max = rss_max.max(rss);
        pss_max = pss_max.max(pss);
        std::thread::sleep(Duration::from_secs(5));
    }
    let elapsed = began.elapsed().as_secs_f64();
    let t1 = tree_ticks(&lab, &pid);
    let d1 = cpu_ticks(&lab, &pid, false);
    let (e1, errors) = evals(&lab);
    let evaluators = children(&lab, &pid).len();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let cpu = (t1 - t0) as f64 / hz / elapsed * 100.0;
    let daemon_cpu = (d1 - d0) as f64 / hz / elapsed * 100.0;
    println!("systemd-sparrowd with {n} managed units at a 10 s interval, over {elapsed:.0} s (the daemon, PID {pid}, and its evaluator processes, from /proc)");
    println!(
        "  evaluations in the window      {:>8}   ({:.1}/s, {} errors in all)",
        e1 - e0,
        (e1 - e0) as f64 / elapsed,
        errors
    );
    println!(
        "  CPU                            {cpu:>8.2} % of one core   (target <= 1%: {}); the daemon itself {daemon_cpu:.2} %, its evaluator processes {:.2} %",
        if cpu <= 1.0 { "met" } else { "MISSED" },
        cpu - daemon_cpu
    );
    let mb = |kib: u64| kib as f64 / 1024.0;
    println!(
        "  memory, daemon + {evaluators} evaluator processes (max sampled): PSS {:>6.1} MB (target <= 40 MB: {}); RSS summed over processes {:.1} MB",
        mb(pss_max),
        if mb(pss_max) <= 40.0 { "met" } else { "MISSED" },
        mb(rss_max),
    );
}
