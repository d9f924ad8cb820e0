//! Evaluating a typical `monitor.resources` closure, as a daemon worker
//! does (call with limits, real runtime functions reading /proc, conversion
//! to desired values), side by side with the original design: one
//! `raku -e` per evaluation of the equivalent expression.
//!
//! Run: `cargo bench -p sparrow-daemon --bench evaluate`
//! (`SPARROW_BENCH_EVALS`, `SPARROW_BENCH_RAKU` set the sample sizes).

use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rhai::Map;
use sparrow_host::runtime::RealRuntime;
use sparrow_lang::{FixedHost, Loader, NoModules};
use sparrow_policy::Prop;

const DEFINITION: &str = r#"
service("api", #{
    exec_start: "/usr/bin/api",
    monitor: #{ interval: "10s", resources: || #{
        memory_max: if available_memory() < 1.GB { "512M" } else { "1G" },
        cpu_quota: if load() > 80.0 { "50%" } else { "100%" },
    } },
});
"#;

/// The same decision in Raku, reading the same files.
const RAKU: &str = r#"my $avail = "/proc/meminfo".IO.lines.grep(/^MemAvailable/)[0].words[1] * 1024;
my $load = "/proc/loadavg".IO.slurp.words[0] / $*KERNEL.cpu-cores * 100;
my %r = memory_max => ($avail < 1024**3 ?? "512M" !! "1G"), cpu_quota => ($load > 80 ?? "50%" !! "100%");
say %r;"#;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Median time of one evaluation, with runtime readings shared for `fresh`.
fn measure(evals: usize, fresh: Duration) -> Duration {
    let runtime = Arc::new(
        RealRuntime::new(Arc::default(), Arc::new(|_: &str, _: &str| {})).with_freshness(fresh),
    );
    let loader = Loader::with_runtime(Rc::new(FixedHost::debian()), runtime);
    let loaded = loader.load(
        Path::new("/bench/api.sparrow"),
        DEFINITION,
        Rc::new(NoModules),
    );
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
    let closure = loaded.units[0]
        .runtime
        .monitor
        .resources
        .clone()
        .expect("a resources closure");
    let evaluate = || {
        let v = loader
            .call(&closure, vec![], "api.service", Duration::from_secs(1))
            .expect("evaluates");
        let m: Map = v.cast();
        let mem = sparrow_daemon::eval::desired(Prop::MemoryMax, &m["memory_max"]).unwrap();
        let cpu = sparrow_daemon::eval::desired(Prop::CpuQuota, &m["cpu_quota"]).unwrap();
        (mem, cpu)
    };
    for _ in 0..200 {
        evaluate();
    }
    let times: Vec<Duration> = (0..evals)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(evaluate());
            t.elapsed()
        })
        .collect();
    median(times)
}

fn main() {
    let evals: usize = std::env::var("SPARROW_BENCH_EVALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let raku_n: usize = std::env::var("SPARROW_BENCH_RAKU")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15);
    // Worst case: every runtime function reads /proc afresh. The daemon
    // shares readings for 200 ms between closures evaluated together.
    let fresh = measure(evals, Duration::ZERO);
    let shared = measure(evals, sparrow_host::runtime::FRESH);

    let raku_median = match std::process::Command::new("raku")
        .arg("-e")
        .arg(RAKU)
        .output()
    {
        Ok(o) if o.status.success() => {
            let times: Vec<Duration> = (0..raku_n)
                .map(|_| {
                    let t = Instant::now();
                    let o = std::process::Command::new("raku")
                        .arg("-e")
                        .arg(RAKU)
                        .output()
                        .expect("raku runs");
                    assert!(o.status.success());
                    t.elapsed()
                })
                .collect();
            Some(median(times))
        }
        Ok(o) => panic!("raku failed: {}", String::from_utf8_lossy(&o.stderr)),
        Err(_) => None,
    };

    println!("resources closure evaluation (available_memory(), load(), two resource values; {evals} runs, medians)");
    let us = fresh.as_secs_f64() * 1e6;
    println!(
        "  systemd-sparrowd worker      {us:>10.1} µs   (every reading fresh; target <= 50 µs: {})",
        if us <= 50.0 { "met" } else { "MISSED" }
    );
    println!("  with readings shared         {:>10.1} µs   (within 200 ms, as the daemon evaluates batches)", shared.as_secs_f64() * 1e6);
    match raku_median {
        Some(r) => {
            let ratio = r.as_secs_f64() / fresh.as_secs_f64();
            println!(
                "  raku -e per evaluation       {:>10.1} ms   ({raku_n} spawns)",
                r.as_secs_f64() * 1e3
            );
            println!(
                "  raku / worker                {ratio:>10.0} x   (target >= 1000x: {})",
                if ratio >= 1000.0 { "met" } else { "MISSED" }
            );
        }
        None => println!("  raku: not installed (apt-get install rakudo) - comparison skipped"),
    }
}
