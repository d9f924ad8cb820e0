//! systemd-sparrowd under load, in the lab (needs root), in three runs:
//!
//! * **steady**: 500 managed units evaluated every 10 s, nothing to change:
//!   CPU and memory (PSS) of the daemon and its evaluator processes;
//! * **churn**: the same, but 10 % of the units' closures return a new
//!   `memory_max` every interval, so values really go through D-Bus:
//!   applies per second, the daemon's CPU and systemd's own CPU (PID 1),
//!   beside systemd's CPU in the steady run;
//! * **idle**: 100 units at a 30 s interval: wake-ups per second of every
//!   thread of the daemon and its evaluators (voluntary + involuntary
//!   context switches, from `/proc/PID/task/*/status`), then the same with
//!   every unit stopped (nothing due: it should not wake at all).
//!
//! Everything is read from /proc inside the lab.
//!
//! Run: `cargo bench -p systemd-sparrow --bench daemon_load`
//! (`SPARROW_BENCH_RUNS=steady,churn,idle` picks runs; `SPARROW_BENCH_UNITS`
//! and `SPARROW_BENCH_SECONDS` change the steady/churn size and length).

use std::time::{Duration, Instant};

use sparrow_lab::{Lab, Setup};

const SPARROW: &str = env!("CARGO_BIN_EXE_systemd-sparrow");

fn definition(i: usize, interval: &str, churn: bool) -> String {
    // Static values equal to what the closure decides on an idle host: the
    // steady state, where every evaluation finds nothing to change. A
    // churning unit reads its memory_max from a file the bench flips.
    let memory = if churn {
        r#"{ let m = read_file("/etc/churn"); m.trim(); m }"#
    } else {
        r#"if available_memory() < 1.GB { "512M" } else { "1G" }"#
    };
    format!(
        r#"service("bench-{i}", #{{
    exec_start: ["/bin/sleep", "infinity"],
    memory_max: 1.GB,
    cpu_quota: "100%",
    monitor: #{{ interval: "{interval}", min_dwell: "0s", max_changes_per_minute: 12, resources: || #{{
        memory_max: {memory},
        cpu_quota: if load() > 80.0 {{ "50%" }} else {{ "100%" }},
    }} }},
}});"#
    )
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn cat(lab: &Lab, path: &str) -> String {
    lab.exec(&["cat", path]).unwrap().stdout
}

fn proc_field(text: &str, key: &str) -> u64 {
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
    let stat = cat(lab, &format!("/proc/{pid}/stat"));
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
        let t = cat(lab, &format!("/proc/{p}/smaps_rollup"));
        (rss + proc_field(&t, "Rss:"), pss + proc_field(&t, "Pss:"))
    })
}

/// Context switches (voluntary + involuntary) of every thread of the
/// daemon and of its evaluator processes: each is the thread going to
/// sleep and being woken, or being preempted.
///
/// Per thread (`PID/TID name`).
fn per_thread(lab: &Lab, pid: &str) -> std::collections::BTreeMap<String, u64> {
    let mut pids = vec![pid.to_string()];
    pids.extend(children(lab, pid));
    let globs: Vec<String> = pids
        .iter()
        .map(|p| format!("/proc/{p}/task/*/status"))
        .collect();
    // One "==> file <==" header per thread.
    let out = lab
        .sh(&format!("tail -n +1 {} 2>/dev/null", globs.join(" ")))
        .unwrap()
        .stdout;
    let mut map = std::collections::BTreeMap::new();
    let mut key = String::new();
    for l in out.lines() {
        if let Some(path) = l.strip_prefix("==> ") {
            key = path
                .trim_end_matches(" <==")
                .replace("/proc/", "")
                .replace("/status", "");
        } else if let Some(name) = l.strip_prefix("Name:") {
            key = format!("{key} {}", name.trim());
        } else if let Some(v) = l
            .strip_prefix("voluntary_ctxt_switches:")
            .or_else(|| l.strip_prefix("nonvoluntary_ctxt_switches:"))
        {
            *map.entry(key.clone()).or_default() += v.trim().parse::<u64>().unwrap_or(0);
        }
    }
    map
}

/// With `SPARROW_BENCH_THREADS=1`, which threads woke, between two readings.
fn show_threads(
    a: &std::collections::BTreeMap<String, u64>,
    b: &std::collections::BTreeMap<String, u64>,
) {
    if std::env::var_os("SPARROW_BENCH_THREADS").is_none() {
        return;
    }
    for (k, v) in b {
        println!("    {k:<40} {:>6}", v - a.get(k).copied().unwrap_or(0));
    }
}

#[derive(serde::Deserialize)]
struct Counters {
    evaluations: u64,
    errors: u64,
    applied: u64,
}

fn counters(lab: &Lab) -> Counters {
    let out = lab
        .exec(&["/opt/sparrow/bin/systemd-sparrow", "status", "--json"])
        .unwrap()
        .stdout;
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    serde_json::from_value(v["status"]["daemon"].clone()).unwrap()
}

/// Boots a lab with `n` bench units (`churning` of them churn), starts
/// them and the daemon, and waits until it tracks them all.
fn boot(n: usize, churning: usize, interval: &str) -> (Lab, String) {
    let mut setup = Setup::new(SPARROW).daemon().unit_file(
        "systemd-sparrowd.service.d/bench.conf",
        // Room for the churn: 10 % of 500 units changing every 10 s is 300
        // changes a minute, above the default daemon-wide cap of 60.
        "[Service]\nEnvironment=SYSTEMD_SPARROWD_MAX_CHANGES_PER_MINUTE=1000\n",
    );
    for i in 0..n {
        setup = setup.definition(
            &format!("bench-{i}.sparrow"),
            &definition(i, interval, i < churning),
        );
    }
    setup.boot_timeout = Duration::from_secs(120);
    let lab = Lab::boot(setup).unwrap_or_else(|e| panic!("{e}"));
    assert!(lab.sh("printf 1G > /etc/churn").unwrap().ok());
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
    let pid = lab.prop("systemd-sparrowd.service", "MainPID").unwrap();
    (lab, pid)
}

struct Window {
    secs: f64,
    tree_cpu: f64,
    daemon_cpu: f64,
    systemd_cpu: f64,
    evaluations: u64,
    applied: u64,
    errors: u64,
    pss_max: u64,
    rss_max: u64,
}

/// Measures `secs` seconds; `every` runs each `flip` seconds (the churn).
fn measure(lab: &Lab, pid: &str, secs: u64, flip: Option<u64>) -> Window {
    let c0 = counters(lab);
    let (t0, d0, s0) = (
        tree_ticks(lab, pid),
        cpu_ticks(lab, pid, false),
        cpu_ticks(lab, "1", false),
    );
    let began = Instant::now();
    let (mut rss_max, mut pss_max) = (0, 0);
    let mut flips = 0;
    while began.elapsed() < Duration::from_secs(secs) {
        if let Some(every) = flip {
            if began.elapsed() >= Duration::from_secs(flips * every) {
                let v = if flips % 2 == 0 { "512M" } else { "1G" };
                assert!(lab.sh(&format!("printf {v} > /etc/churn")).unwrap().ok());
                flips += 1;
            }
        }
        let (rss, pss) = tree_memory(lab, pid);
        rss_max = rss_max.max(rss);
        pss_max = pss_max.max(pss);
        std::thread::sleep(Duration::from_secs(1));
    }
    let secs = began.elapsed().as_secs_f64();
    let (t1, d1, s1) = (
        tree_ticks(lab, pid),
        cpu_ticks(lab, pid, false),
        cpu_ticks(lab, "1", false),
    );
    let c1 = counters(lab);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let pc = |a: u64, b: u64| (b - a) as f64 / hz / secs * 100.0;
    Window {
        secs,
        tree_cpu: pc(t0, t1),
        daemon_cpu: pc(d0, d1),
        systemd_cpu: pc(s0, s1),
        evaluations: c1.evaluations - c0.evaluations,
        applied: c1.applied - c0.applied,
        errors: c1.errors,
        pss_max,
        rss_max,
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "MISSED"
    }
}

fn steady(n: usize, secs: u64) -> Window {
    let (lab, pid) = boot(n, 0, "10s");
    // Let the first round of evaluations (spread over the interval) pass.
    std::thread::sleep(Duration::from_secs(15));
    let w = measure(&lab, &pid, secs, None);
    let mb = |kib: u64| kib as f64 / 1024.0;
    println!("steady: {n} managed units at a 10 s interval, nothing to change, over {:.0} s (the daemon, PID {pid}, and its {} evaluator processes)", w.secs, children(&lab, &pid).len());
    println!(
        "  evaluations                    {:>8.1}/s   ({} errors in all)",
        w.evaluations as f64 / w.secs,
        w.errors
    );
    println!(
        "  CPU                            {:>8.2} % of one core   (target <= 1%: {}); the daemon itself {:.2} %, its evaluators {:.2} %",
        w.tree_cpu,
        verdict(w.tree_cpu <= 1.0),
        w.daemon_cpu,
        w.tree_cpu - w.daemon_cpu
    );
    println!(
        "  memory (max sampled)           PSS {:>6.1} MB (target <= 40 MB: {}); RSS summed over processes {:.1} MB",
        mb(w.pss_max),
        verdict(mb(w.pss_max) <= 40.0),
        mb(w.rss_max),
    );
    println!(
        "  systemd (PID 1)                {:>8.2} % of one core",
        w.systemd_cpu
    );
    w
}

fn churn(n: usize, secs: u64, steady: Option<&Window>) {
    let churning = n / 10;
    let (lab, pid) = boot(n, churning, "10s");
    std::thread::sleep(Duration::from_secs(15));
    let w = measure(&lab, &pid, secs, Some(10));
    println!("churn: {n} units at a 10 s interval, {churning} of them asking for a new memory_max every interval, over {:.0} s", w.secs);
    println!(
        "  applies                        {:>8.2}/s   (changes made through SetUnitProperties and read back; {:.1} evaluations/s)",
        w.applied as f64 / w.secs,
        w.evaluations as f64 / w.secs
    );
    println!(
        "  CPU, daemon + evaluators       {:>8.2} % of one core   (the daemon itself {:.2} %)",
        w.tree_cpu, w.daemon_cpu
    );
    match steady {
        Some(s) => println!(
            "  systemd (PID 1)                {:>8.2} % of one core   (steady run: {:.2} %)",
            w.systemd_cpu, s.systemd_cpu
        ),
        None => println!(
            "  systemd (PID 1)                {:>8.2} % of one core",
            w.systemd_cpu
        ),
    }
}

fn idle(secs: u64) {
    let n = 100;
    let (lab, pid) = boot(n, 0, "30s");
    // Past the first evaluations (at start) and into the steady schedule.
    std::thread::sleep(Duration::from_secs(35));
    let p0 = per_thread(&lab, &pid);
    let began = Instant::now();
    let c0 = counters(&lab);
    std::thread::sleep(Duration::from_secs(secs));
    let p1 = per_thread(&lab, &pid);
    show_threads(&p0, &p1);
    let (w0, w1): (u64, u64) = (p0.values().sum(), p1.values().sum());
    let elapsed = began.elapsed().as_secs_f64();
    let c1 = counters(&lab);
    let rate = (w1 - w0) as f64 / elapsed;
    println!("idle: {n} managed units at a 30 s interval, over {elapsed:.0} s ({} evaluations; daemon and evaluator threads, from /proc)", c1.evaluations - c0.evaluations);
    println!(
        "  wake-ups                       {rate:>8.2}/s   (target <= 1/s: {})",
        verdict(rate <= 1.0)
    );
    // Nothing due: every unit stopped.
    let stop = lab
        .exec_timeout(
            &[
                "/bin/bash",
                "-c",
                &format!("systemctl stop bench-{{0..{}}}.service", n - 1),
            ],
            Duration::from_secs(120),
        )
        .unwrap();
    assert!(stop.ok(), "{}", stop.stderr);
    std::thread::sleep(Duration::from_secs(5));
    let p0 = per_thread(&lab, &pid);
    let began = Instant::now();
    std::thread::sleep(Duration::from_secs(secs / 2));
    let p1 = per_thread(&lab, &pid);
    show_threads(&p0, &p1);
    let (w0, w1): (u64, u64) = (p0.values().sum(), p1.values().sum());
    let elapsed = began.elapsed().as_secs_f64();
    let rate = (w1 - w0) as f64 / elapsed;
    println!(
        "  nothing due (units stopped)    {rate:>8.2}/s   over {elapsed:.0} s (the watchdog ping, WatchdogSec=30s, is one per 10 s)"
    );
}

fn main() {
    let runs: String = env_or("SPARROW_BENCH_RUNS", "steady,churn,idle".to_string());
    let n: usize = env_or("SPARROW_BENCH_UNITS", 500);
    let secs: u64 = env_or("SPARROW_BENCH_SECONDS", 120);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("systemd-sparrowd load ({cores} CPUs)");
    let mut s = None;
    for run in runs.split(',') {
        match run {
            "steady" => s = Some(steady(n, secs)),
            "churn" => churn(n, secs.min(60), s.as_ref()),
            "idle" => idle(60),
            other => panic!("unknown run {other:?} (steady, churn, idle)"),
        }
    }
}
