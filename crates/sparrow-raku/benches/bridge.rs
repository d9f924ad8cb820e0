//! Issue 12's performance targets for the Raku bridge:
//!
//! * **One bridge run vs one `raku` per file**: 50 Raku definitions
//!   translated by one bridge process, beside the same 50 translated by
//!   50 processes (each its own `raku` running the same shim, which is what
//!   running every file through `raku` on its own costs). Target: 10×.
//! * **Warm cache**: the same 50 with every translation cached: how long,
//!   and how many Raku processes (target: none).
//! * **Resident-worker call**: a runtime sub (`resource-check`, one
//!   callback for `get-available-memory()`) called through the resident
//!   worker, median and p99 of 300 calls (target: ≤ 2 ms), beside a Raku
//!   process started for the call (start, load, call) as the baseline.
//!
//! Wall-clock medians of `SPARROW_BENCH_RUNS` (3) runs per side, the sides
//! alternating, on all CPUs and then with this process (and so every Raku
//! it starts) pinned to CPU 0. Run: `cargo bench -p sparrow-raku --bench
//! bridge` (about 2 minutes; needs `raku`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sparrow_lang::Facts;
use sparrow_raku::cache::Cache;
use sparrow_raku::{translate, Input, Options, Stats, Translation};

const FILES: usize = 50;

fn facts() -> Facts {
    sparrow_lang::FixedHost::debian().facts
}

/// A definition in the spirit of the seed's: dependencies, environment,
/// sizes, a generation-time sub, runtime subs, a regex, PSI integers.
fn definition(i: usize) -> String {
    format!(
        r#"use Sparrow6::DSL;
my @after = <network-online.target>;
@after.push("postgresql.service") if os() eq "debian";
task-run "svc-{i}", "systemd", %(
    description => "service {i}",
    after => @after,
    env => %( :INDEX<{i}>, :MODE(%*ENV<BENCH_MODE> // "prod") ),
    start => "/usr/bin/svc --index {i}",
    memory-max => {m}.MB,
    orchestration => %( requires => sub {{ my %f = task-run "f", "feature-flags"; %f<use-redis> ?? ["redis.service"] !! ["postgresql.service"] }} ),
    hooks => %( pre-start => sub {{ True }} ),
    health-check => %( type => "http", url => "http://127.0.0.1:{port}/", expect => %( body => /'ok' \d+/ ) ),
    kernel-monitoring => %( psi => %( memory => %( level => "some", threshold => 150000, window => 2000000 ) ) ),
    pressure-response => sub ($event) {{ %( memory-max => {m}.MB ) }},
);
"#,
        m = 256 + i,
        port = 8000 + i
    )
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn pin_to_cpu0() {
    // SAFETY: a zeroed cpu_set_t with CPU 0 set, for this thread (the
    // only one), inherited by the Raku processes it starts.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(0, &mut set);
        assert_eq!(
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set),
            0,
            "sched_setaffinity"
        );
    }
}

struct Side {
    one: Duration,
    each: Duration,
    warm: Duration,
    warm_stats: Stats,
}

fn measure(raku: &Path, texts: &[(PathBuf, String)], cache_dir: &Path, runs: usize) -> Side {
    let inputs: Vec<Input<'_>> = texts
        .iter()
        .map(|(p, t)| Input { path: p, text: t })
        .collect();
    let opts = |cache: Option<Cache>| Options {
        raku: Some(raku.to_path_buf()),
        limit: Duration::from_secs(30),
        cache,
        limits: sparrow_raku::bridge::raku_limits(),
    };
    let env = |k: &str| std::env::var(k).ok();
    let (mut one, mut each) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let t = Instant::now();
        let (out, stats) = translate(&inputs, &facts(), &opts(None), &env);
        one.push(t.elapsed());
        assert_eq!(stats.processes, 1);
        assert!(
            out.iter().all(|t| matches!(t, Translation::Native(_))),
            "{out:?}"
        );
        let t = Instant::now();
        for i in &inputs {
            let (out, stats) = translate(std::slice::from_ref(i), &facts(), &opts(None), &env);
            assert_eq!(stats.processes, 1);
            assert!(matches!(out[0], Translation::Native(_)));
        }
        each.push(t.elapsed());
    }
    // Fill the cache, then read it.
    let _ = std::fs::remove_dir_all(cache_dir);
    let fill = || Some(Cache::new(cache_dir.to_path_buf(), true));
    translate(&inputs, &facts(), &opts(fill()), &env);
    let mut warm = Vec::new();
    let mut warm_stats = Stats::default();
    for _ in 0..runs.max(5) {
        let t = Instant::now();
        let (out, stats) = translate(&inputs, &facts(), &opts(fill()), &env);
        warm.push(t.elapsed());
        assert!(out.iter().all(|t| matches!(t, Translation::Native(_))));
        warm_stats = stats;
    }
    Side {
        one: median(one),
        each: median(each),
        warm: median(warm),
        warm_stats,
    }
}

struct Calls {
    median: Duration,
    p99: Duration,
    one_shot: Duration,
}

const RESIDENT_DEF: &str = r#"task-run "svc", "systemd", %(
    start => "/bin/true",
    hooks => %( resource-check => sub { %( memory-max => get-available-memory() div 2, cpu-weight => 50 ) } ),
);
"#;

fn resident_calls(raku: &Path, dir: &Path) -> Calls {
    use sparrow_raku::resident::Resident;
    let path = dir.join("resident.raku");
    std::fs::write(&path, RESIDENT_DEF).expect("writing the definition");
    let keys = ["hooks".to_string(), "resource-check".to_string()];
    let mut cb = |_: &str, _: Vec<serde_json::Value>| Ok(serde_json::json!(1_000_000));
    let mut r = Resident::new(raku.to_path_buf(), facts(), Duration::from_secs(5));
    r.load(&path).expect("loading");
    let mut times = Vec::new();
    for _ in 0..300 {
        let t = Instant::now();
        let v = r.call(&path, "svc", &keys, &[], &mut cb).expect("a call");
        times.push(t.elapsed());
        assert_eq!(v["cpu-weight"], 50);
    }
    times.sort();
    let mut one_shot = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let mut fresh = Resident::new(raku.to_path_buf(), facts(), Duration::from_secs(30));
        fresh
            .call(&path, "svc", &keys, &[], &mut cb)
            .expect("a call");
        one_shot.push(t.elapsed());
    }
    Calls {
        median: times[times.len() / 2],
        p99: times[times.len() * 99 / 100],
        one_shot: median(one_shot),
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    let Some(raku) = sparrow_raku::find_raku(&|k| std::env::var(k).ok()) else {
        eprintln!("raku bench: no raku (Debian: apt-get install rakudo); skipped");
        return;
    };
    let runs: usize = std::env::var("SPARROW_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let texts: Vec<(PathBuf, String)> = (0..FILES)
        .map(|i| (dir.path().join(format!("svc-{i}.raku")), definition(i)))
        .collect();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let all = measure(&raku, &texts, &dir.path().join("cache-all"), runs);
    let calls_all = resident_calls(&raku, dir.path());
    pin_to_cpu0();
    let one = measure(&raku, &texts, &dir.path().join("cache-one"), runs);
    let calls_one = resident_calls(&raku, dir.path());
    println!(
        "\nRaku bridge (issue 12): {FILES} Raku definitions, wall-clock medians of {runs} runs ({cpus} CPUs / pinned to CPU 0)\n"
    );
    println!("| figure | {cpus} CPUs | 1 CPU | target |");
    println!("|---|---|---|---|");
    println!(
        "| one bridge run (1 raku process) | {} | {} | |",
        ms(all.one),
        ms(one.one)
    );
    println!(
        "| {FILES} separate raku processes (baseline) | {} | {} | |",
        ms(all.each),
        ms(one.each)
    );
    let ratio = |s: &Side| s.each.as_secs_f64() / s.one.as_secs_f64();
    let verdict = |r: f64| if r >= 10.0 { "met" } else { "MISSED" };
    println!(
        "| baseline ÷ bridge | **{:.1}×** ({}) | **{:.1}×** ({}) | ≥ 10× |",
        ratio(&all),
        verdict(ratio(&all)),
        ratio(&one),
        verdict(ratio(&one))
    );
    println!(
        "| warm cache: time / raku processes / files from the cache | {} / **{}** / {} | {} / **{}** / {} | no Raku process |",
        ms(all.warm),
        all.warm_stats.processes,
        all.warm_stats.cached,
        ms(one.warm),
        one.warm_stats.processes,
        one.warm_stats.cached
    );
    let us = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1e3);
    let ok = |d: Duration| {
        if d <= Duration::from_millis(2) {
            "met"
        } else {
            "MISSED"
        }
    };
    println!(
        "| resident-worker call of a sub (one callback): median / p99 | **{}** ({}) / {} | **{}** ({}) / {} | ≤ 2 ms |",
        us(calls_all.median),
        ok(calls_all.median),
        us(calls_all.p99),
        us(calls_one.median),
        ok(calls_one.median),
        us(calls_one.p99)
    );
    println!(
        "| a Raku process per call instead (start, load, call; baseline) | {} | {} | |",
        ms(calls_all.one_shot),
        ms(calls_one.one_shot)
    );
}
