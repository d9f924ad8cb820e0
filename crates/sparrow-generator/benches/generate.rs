//! Generator benchmark: 1,000 definitions through the real generator binary,
//! side by side with its floors and its predecessor, in one run.
//!
//! - generator: `systemd-sparrow-generator` over 1,000 definitions (median of
//!   runs), on all CPUs and pinned to one (`taskset -c 0`)
//! - copy floor: `cp -r` of the generator's own output tree (writing the same
//!   bytes), measured the same two ways
//! - raku: one `raku -e` spawn per definition (the seed's original design),
//!   measured on a subset and scaled to 1,000
//! - memory at 20,000 definitions: the peak of the generator and its
//!   evaluator processes together (their resident sizes summed, sampled every
//!   2 ms), and the largest single process (wait4's ru_maxrss)
//!
//! Run: `cargo bench -p sparrow-generator --bench generate`
//! (`SPARROW_BENCH_RUNS`, `SPARROW_BENCH_RAKU`, `SPARROW_BENCH_BIG` change the
//! sample sizes; `SPARROW_BENCH_KEEP=DIR` keeps the definitions and output in
//! DIR for profiling).

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

/// What one run cost.
struct Run {
    wall: Duration,
    /// wait4's ru_maxrss: the largest single process of the tree, KiB.
    max_rss_kib: u64,
    /// The largest sum of the tree's resident sizes seen while it ran, KiB.
    tree_rss_kib: u64,
}

/// Resident size of `pid` and all its descendants, KiB (from /proc).
fn tree_rss(pid: u32) -> u64 {
    let own = fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0);
    let children: u64 = fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|t| fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|c| {
            c.split_whitespace()
                .filter_map(|p| p.parse::<u32>().ok())
                .collect::<Vec<_>>()
        })
        .map(tree_rss)
        .sum();
    own + children
}

/// Runs a command to completion; with `sample`, watches the process tree's
/// memory while it runs.
fn timed(cmd: &mut Command, sample: bool) -> Run {
    let start = Instant::now();
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id() as libc::pid_t;
    let mut tree_rss_kib = 0;
    let mut status = 0;
    // SAFETY: rusage is plain old data; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        let flags = if sample { libc::WNOHANG } else { 0 };
        // SAFETY: as above.
        let r = unsafe { libc::wait4(pid, &mut status, flags, &mut usage) };
        if r == pid {
            break;
        }
        assert_eq!(r, 0, "wait4 failed");
        tree_rss_kib = tree_rss_kib.max(tree_rss(pid as u32));
        std::thread::sleep(Duration::from_millis(2));
    }
    let wall = start.elapsed();
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{cmd:?} failed with status {status}"
    );
    std::mem::forget(child); // already reaped
    Run {
        wall,
        max_rss_kib: usage.ru_maxrss as u64,
        tree_rss_kib,
    }
}

fn fresh(dir: &Path) {
    let _ = fs::remove_dir_all(dir);
    fs::create_dir_all(dir).unwrap();
}

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `cmd`, or `taskset -c 0 cmd` when pinned to one CPU.
fn command(pinned: bool, program: &Path) -> Command {
    if pinned {
        let mut c = Command::new("taskset");
        c.arg("-c").arg("0").arg(program);
        c
    } else {
        Command::new(program)
    }
}

struct Tree {
    defs: PathBuf,
    normal: PathBuf,
    early: PathBuf,
    late: PathBuf,
    empty: PathBuf,
    facts: PathBuf,
}

impl Tree {
    fn new(base: &Path, n: usize) -> Tree {
        let defs = base.join("defs");
        fs::create_dir_all(&defs).unwrap();
        for i in 0..n {
            fs::write(defs.join(format!("def-{i:05}.sparrow")), definition(i)).unwrap();
        }
        let facts = base.join("facts.json");
        fs::write(
            &facts,
            r#"{"memory_total": 8589934592, "cpu_count": 4, "os": "debian"}"#,
        )
        .unwrap();
        let t = Tree {
            defs,
            normal: base.join("normal"),
            early: base.join("early"),
            late: base.join("late"),
            empty: base.join("empty"),
            facts,
        };
        fs::create_dir_all(&t.empty).unwrap();
        t
    }

    fn generate(&self, pinned: bool, sample: bool) -> Run {
        for d in [&self.normal, &self.early, &self.late] {
            fresh(d);
        }
        timed(
            command(pinned, Path::new(BIN))
                .env_clear()
                .env("SYSTEMD_SPARROW_PATH", &self.defs)
                .env("SYSTEMD_SPARROW_UNIT_ROOT", &self.empty)
                .env("SYSTEMD_SPARROW_FACTS", &self.facts)
                .env("SYSTEMD_SPARROW_LOG", "stderr")
                .args([&self.normal, &self.early, &self.late]),
            sample,
        )
    }

    fn copy(&self, pinned: bool, dst: &Path) -> Duration {
        let _ = fs::remove_dir_all(dst);
        timed(
            command(pinned, Path::new("/bin/cp"))
                .arg("-r")
                .arg(&self.normal)
                .arg(dst),
            false,
        )
        .wall
    }
}

fn main() {
    // `cargo bench` passes --bench; other arguments are filters we do not use.
    let runs = env_num("SPARROW_BENCH_RUNS", 21);
    let raku_n = env_num("SPARROW_BENCH_RAKU", 15);
    let big_n = env_num("SPARROW_BENCH_BIG", 20_000);
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
    let tree = Tree::new(&t.join("small"), DEFINITIONS);

    // Warm the page cache and check the output once.
    tree.generate(false, false);
    let files = walk_count(&tree.normal);
    assert!(files >= DEFINITIONS, "generator wrote only {files} entries");

    let copy_dst = t.join("copy");
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut figures = Vec::new();
    for pinned in [true, false] {
        let mut gen_times = Vec::new();
        let mut cp_times = Vec::new();
        for _ in 0..runs {
            // Interleave so drift on a noisy machine hits both sides alike.
            gen_times.push(tree.generate(pinned, false).wall);
            cp_times.push(tree.copy(pinned, &copy_dst));
        }
        figures.push((pinned, median(gen_times), median(cp_times)));
    }

    let raku = which("raku").filter(|_| raku_n > 0);
    let raku_per_def = raku.as_ref().map(|raku| {
        let times: Vec<Duration> = (0..raku_n)
            .map(|i| timed(Command::new(raku).arg("-e").arg(raku_equivalent(i)), false).wall)
            .collect();
        median(times)
    });

    // Memory does not grow with the number of definitions: a big tree.
    let big = Tree::new(&t.join("big"), big_n);
    let big_run = big.generate(false, true);
    let big_files = walk_count(&big.normal);

    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!("systemd-sparrow generator benchmark: {DEFINITIONS} definitions, {files} output entries, {runs} runs (medians), this machine has {cpus} CPUs");
    let mut all_cpu_gen = Duration::ZERO;
    for (pinned, gen, cp) in &figures {
        let label = if *pinned {
            "1 CPU (taskset -c 0)"
        } else {
            "all CPUs"
        };
        let target = if *pinned { 3.0 } else { 2.0 };
        let ratio = gen.as_secs_f64() / cp.as_secs_f64();
        println!("  {label}:");
        println!("    generator (1,000 definitions)    {:>10.2} ms", ms(*gen));
        println!("    cp -r of the output tree (floor) {:>10.2} ms", ms(*cp));
        println!(
            "    generator / cp -r                {:>10.2} x   (target <= {target}x: {})",
            ratio,
            verdict(ratio <= target)
        );
        if !pinned {
            all_cpu_gen = *gen;
        }
    }
    match raku_per_def {
        Some(per) => {
            let scaled = per * DEFINITIONS as u32;
            let speedup = scaled.as_secs_f64() / all_cpu_gen.as_secs_f64();
            println!("  raku -e per definition ({raku_n} spawns) {:>8.2} ms each, {:.0} ms per 1,000 (scaled)", ms(per), ms(scaled));
            println!(
                "  raku / generator (all CPUs)        {:>10.0} x   (target >= 1000x: {})",
                speedup,
                verdict(speedup >= 1000.0)
            );
        }
        None => println!(
            "  raku: not installed (apt-get install rakudo) or not asked for - comparison skipped"
        ),
    }
    let mb = |kib: u64| kib as f64 / 1024.0;
    println!(
        "  {big_n} definitions ({big_files} entries) in {:.0} ms: peak RSS of the generator and its evaluators together {:>6.1} MB  (target <= 50 MB: {}); largest single process {:.1} MB",
        ms(big_run.wall),
        mb(big_run.tree_rss_kib),
        verdict(mb(big_run.tree_rss_kib) <= 50.0),
        mb(big_run.max_rss_kib),
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
