//! Generator benchmark: 1,000 definitions through the real generator binary,
//! side by side with its floors and its predecessor, in one run.
//!
//! - generator: `systemd-sparrow-generator` over 1,000 definitions (median of runs)
//! - copy floor: `cp -r` of the generator's own output tree (writing the same bytes)
//! - raku: one `raku -e` spawn per definition (the seed's original design),
//!   measured on a subset and scaled to 1,000
//! - peak RSS of the generator (wait4's ru_maxrss)
//!
//! Run: `cargo bench -p sparrow-generator --bench generate`
//! (`SPARROW_BENCH_RUNS`, `SPARROW_BENCH_RAKU` change the sample sizes;
//! `SPARROW_BENCH_KEEP=DIR` keeps the definitions and output in DIR for profiling).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_systemd-sparrow-generator");
const DEFINITIONS: usize = 1000;

/// One definition of a realistic mix: plain services with facts logic,
/// closures, families, templates, and timers.
fn definition(i: usize) -> String {
    match i % 5 {
        0 => format!(
            r#"let mem = if memory_total() >= 8.GB {{ 2.GB }} else {{ 512.MB }};
service("app-{i}", #{{
    description: "Application {i}",
    after_target: ["network"],
    exec_start: ["/usr/bin/app", "--port", {port}, "--name", "app {i}"],
    env: #{{ RUST_LOG: "info", SLOT: {i} }},
    memory_max: mem,
    cpu_quota: `${{cpu_count() * 25}}%`,
    restart: "on-failure",
    wanted_by: "multi-user.target",
}});"#,
            port = 8000 + i
        ),
        1 => format!(
            r#"task_run("web {i}", "systemd-nginx", #{{ name: "nginx-{i}", config: "/etc/nginx/site-{i}.conf", memory_max: 256.MB }});"#
        ),
        2 => format!(
            r#"service("worker-{i}@", #{{
    description: raw("Worker {i} for %i"),
    exec_start: ["/usr/bin/worker", raw("%i")],
    memory_max: || memory_total() / 16,
    wanted_by: "multi-user.target",
    install_section: #{{ DefaultInstance: "main" }},
}});"#
        ),
        3 => format!(
            r#"service("job-{i}", #{{ type: "oneshot", exec_start: "/usr/bin/job --id {i}" }});
timer("job-{i}", #{{ on_calendar: "*-*-* 0{h}:00:00", persistent: true, wanted_by: "timers.target" }});"#,
            h = i % 10
        ),
        _ => format!(
            r#"task_run("cache {i}", "systemd-redis", #{{ name: "redis-{i}", port: {port}, maxmemory: 64.MB }});"#,
            port = 10000 + i
        ),
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Runs a command to completion; returns wall time and peak RSS in KiB.
fn timed(cmd: &mut Command) -> (Duration, u64) {
    let start = Instant::now();
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain old data; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let elapsed = start.elapsed();
    assert_eq!(r, pid, "wait4 failed");
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{cmd:?} failed with status {status}"
    );
    std::mem::forget(child); // already reaped
    (elapsed, usage.ru_maxrss as u64)
}

fn fresh(dir: &Path) {
    let _ = fs::remove_dir_all(dir);
    fs::create_dir_all(dir).unwrap();
}

fn main() {
    // `cargo bench` passes --bench; other arguments are filters we do not use.
    let runs: usize = std::env::var("SPARROW_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(21);
    let raku_n: usize = std::env::var("SPARROW_BENCH_RAKU")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15);
    // Generators write to /run, a tmpfs; measure both sides on one.
    let base = if Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let tmp = tempfile::Builder::new()
        .prefix("sparrow-bench")
        .tempdir_in(&base)
        .unwrap();
    let keep = std::env::var_os("SPARROW_BENCH_KEEP").map(PathBuf::from);
    let t = keep.as_deref().unwrap_or(tmp.path());
    let defs = t.join("defs");
    fs::create_dir_all(&defs).unwrap();
    for i in 0..DEFINITIONS {
        fs::write(defs.join(format!("def-{i:04}.sparrow")), definition(i)).unwrap();
    }
    let facts = t.join("facts.json");
    fs::write(
        &facts,
        r#"{"memory_total": 8589934592, "cpu_count": 4, "os": "debian"}"#,
    )
    .unwrap();
    let (normal, early, late, empty) = (
        t.join("normal"),
        t.join("early"),
        t.join("late"),
        t.join("empty"),
    );
    fs::create_dir_all(&empty).unwrap();

    let generate = || {
        for d in [&normal, &early, &late] {
            fresh(d);
        }
        timed(
            Command::new(BIN)
                .env_clear()
                .env("SYSTEMD_SPARROW_PATH", &defs)
                .env("SYSTEMD_SPARROW_UNIT_ROOT", &empty)
                .env("SYSTEMD_SPARROW_FACTS", &facts)
                .env("SYSTEMD_SPARROW_LOG", "stderr")
                .args([&normal, &early, &late]),
        )
    };
    let copy_dst = t.join("copy");
    let copy = || {
        let _ = fs::remove_dir_all(&copy_dst);
        timed(Command::new("cp").arg("-r").arg(&normal).arg(&copy_dst)).0
    };

    // Warm the page cache and check the output once.
    generate();
    let files = walk_count(&normal);
    assert!(files >= DEFINITIONS, "generator wrote only {files} entries");

    let mut gen_times = Vec::new();
    let mut cp_times = Vec::new();
    let mut peak_rss = 0;
    for _ in 0..runs {
        // Interleave so drift on a noisy machine hits both sides alike.
        let (d, rss) = generate();
        gen_times.push(d);
        peak_rss = peak_rss.max(rss);
        cp_times.push(copy());
    }
    let gen = median(gen_times);
    let cp = median(cp_times);

    let raku = which("raku");
    let raku_per_def = raku.as_ref().map(|raku| {
        let times: Vec<Duration> = (0..raku_n)
            .map(|i| timed(Command::new(raku).arg("-e").arg(raku_equivalent(i))).0)
            .collect();
        median(times)
    });

    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!("systemd-sparrow generator benchmark: {DEFINITIONS} definitions, {files} output entries, {runs} runs (medians)");
    println!("  generator (1,000 definitions)      {:>10.2} ms", ms(gen));
    println!("  cp -r of the output tree (floor)   {:>10.2} ms", ms(cp));
    let copy_ratio = gen.as_secs_f64() / cp.as_secs_f64();
    println!(
        "  generator / cp -r                  {:>10.2} x   (target <= 3x: {})",
        copy_ratio,
        verdict(copy_ratio <= 3.0)
    );
    match raku_per_def {
        Some(per) => {
            let scaled = per * DEFINITIONS as u32;
            let speedup = scaled.as_secs_f64() / gen.as_secs_f64();
            println!("  raku -e per definition ({raku_n} spawns) {:>8.2} ms each, {:.0} ms per 1,000 (scaled)", ms(per), ms(scaled));
            println!(
                "  raku / generator                   {:>10.0} x   (target >= 1000x: {})",
                speedup,
                verdict(speedup >= 1000.0)
            );
        }
        None => println!("  raku: not installed (apt-get install rakudo) - comparison skipped"),
    }
    let rss_mb = peak_rss as f64 / 1024.0;
    println!(
        "  generator peak RSS                 {:>10.1} MB  (target < 50 MB: {})",
        rss_mb,
        verdict(rss_mb < 50.0)
    );
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "MISSED"
    }
}

fn walk_count(dir: &Path) -> usize {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            if fs::symlink_metadata(&p).unwrap().is_dir() {
                walk_count(&p)
            } else {
                1
            }
        })
        .sum()
}

fn which(prog: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(prog))
        .find(|p| p.is_file())
}

/// What the seed did per definition: evaluate it in Raku and print a unit.
fn raku_equivalent(i: usize) -> String {
    format!(
        r#"my $mem = 8589934592 >= 8 * 1024**3 ?? "2G" !! "512M";
my %d = description => "Application {i}", exec-start => "/usr/bin/app --port {port} --name app{i}",
        memory-max => $mem, cpu-quota => (4 * 25) ~ "%", wanted-by => "multi-user.target";
say "[Unit]\nDescription=%d<description>\nAfter=network.target\n\n[Service]\nExecStart=%d<exec-start>\nMemoryMax=%d<memory-max>\nCPUQuota=%d<cpu-quota>\n\n[Install]\nWantedBy=%d<wanted-by>";"#,
        port = 8000 + i
    )
}
