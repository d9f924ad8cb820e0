//! systemd-sparrowd under load, in the lab: 500 managed units evaluated
//! every 10 s; the daemon's CPU time and resident memory over 2 minutes,
//! read from /proc. Needs root (it boots a lab).
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

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(lab: &Lab, pid: &str) -> u64 {
    let stat = lab
        .exec(&["cat", &format!("/proc/{pid}/stat")])
        .unwrap()
        .stdout;
    // Fields after the parenthesised command name; utime and stime are 14 and 15.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
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
    let t0 = cpu_ticks(&lab, &pid);
    let began = Instant::now();
    let mut rss_max = 0;
    while began.elapsed() < Duration::from_secs(secs) {
        rss_max = rss_max.max(proc_field(&lab, &pid, "status", "VmRSS:"));
        std::thread::sleep(Duration::from_secs(5));
    }
    let elapsed = began.elapsed().as_secs_f64();
    let t1 = cpu_ticks(&lab, &pid);
    let (e1, errors) = evals(&lab);
    let hwm = proc_field(&lab, &pid, "status", "VmHWM:");
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let cpu = (t1 - t0) as f64 / hz / elapsed * 100.0;
    println!("systemd-sparrowd with {n} managed units at a 10 s interval, over {elapsed:.0} s (from /proc/{pid})");
    println!(
        "  evaluations in the window      {:>8}   ({:.1}/s, {} errors in all)",
        e1 - e0,
        (e1 - e0) as f64 / elapsed,
        errors
    );
    println!(
        "  CPU                            {cpu:>8.2} % of one core   (target <= 1%: {})",
        if cpu <= 1.0 { "met" } else { "MISSED" }
    );
    let mb = rss_max as f64 / 1024.0;
    println!(
        "  RSS (max sampled; VmHWM)       {mb:>8.1} MB  ({:.1} MB)   (target <= 40 MB: {})",
        hwm as f64 / 1024.0,
        if mb <= 40.0 { "met" } else { "MISSED" }
    );
}
