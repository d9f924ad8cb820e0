//! Task benchmark: what `task_run` costs, side by side with its baselines,
//! in one run.
//!
//! 1. A built-in plugin called from a closure (`feature-flags`, in-process)
//!    vs the same check as an external task (a bash task that `cat`s the
//!    same file), both through `task_run` in a closure: median per call.
//! 2. An external bash task through `task_run` vs running the same
//!    `bash task.bash` directly (`std::process::Command`, output read):
//!    median per run, and the ratio.
//! 3. Task::Check over 10,000 output lines (a realistic check file: plain
//!    lines, regexes with captures, a negation, a range, a sequence): median
//!    per evaluation.
//!
//! Run: `cargo bench -p sparrow-host --bench tasks` (`SPARROW_BENCH_RUNS`
//! changes the sample size; `SPARROW_BENCH_PER_CHECK=1` also times each
//! line of the check file alone). Pin both sides to one CPU with
//! `taskset -c 0 cargo bench ...`: the figures are printed with the number
//! of CPUs this process may use.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sparrow_host::runtime::{RealRuntime, Units};
use sparrow_host::RealHost;
use sparrow_lang::{Closure, Loader, NoModules};
use sparrow_task::check::{self, BlockRun, Blocks};
use sparrow_task::layout::Lang;
use sparrow_task::search::SearchPath;
use sparrow_task::TaskError;

fn runs(default: usize) -> usize {
    std::env::var("SPARROW_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn time(n: usize, mut f: impl FnMut()) -> Duration {
    // One warm-up: page cache, lazy statics.
    f();
    median(
        (0..n)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed()
            })
            .collect(),
    )
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// A loader and the `resources` closure of a unit whose body is `body`.
fn closure(plugins: &Path, body: &str) -> (Loader, Closure) {
    let rt = RealRuntime::new(Units::default(), Arc::new(|_: &str, _: &str| {}))
        .with_plugins(SearchPath::new(vec![plugins.to_path_buf()]));
    let host = RealHost::from_facts(sparrow_lang::FixedHost::debian().facts);
    let l = Loader::with_runtime(Rc::new(host), Arc::new(rt));
    let def = format!(
        "service(\"web\", #{{ exec_start: \"/bin/true\", monitor: #{{ resources: || {{ {body} }} }} }});"
    );
    let loaded = l.load(Path::new("/defs/web.sparrow"), &def, Rc::new(NoModules));
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
    let c = loaded.units[0].runtime.monitor.resources.clone().unwrap();
    (l, c)
}

fn call(l: &Loader, c: &Closure) {
    let out = l
        .call(c, vec![], "web.service", Duration::from_secs(10))
        .expect("the closure runs");
    assert!(out.is_map());
}

struct NoBlocks;

impl Blocks for NoBlocks {
    fn run(&mut self, _: Lang, _: &str) -> Result<BlockRun, TaskError> {
        unreachable!("the benchmark's check has no blocks")
    }
}

const CHECK: &str = r#"# a realistic check over a service's report
regexp: ^^ line \s (\d+) \s ok $$
line 9999 ok
!regexp: ERROR || FATAL
~regexp: 'warn:' \s+ (\w+)
regexp: <[a..z]>+ \s \d ** 2..4
:any:
between: {'line 100 '} {'line 200 '}
regexp: 1 (\d) (\d) \s
!regexp: FAIL
end:
begin:
line 5000 ok
line 5001 ok
end:
"#;

fn main() {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let n = runs(200);
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    let flags = dir.path().join("flags.json");
    fs::write(&flags, r#"{"use-redis": true, "new-ui": false}"#).unwrap();
    let ext = plugins.join("flags-ext");
    fs::create_dir_all(&ext).unwrap();
    fs::write(ext.join("task.bash"), "cat $(config file)\n").unwrap();
    fs::write(ext.join("sparrow.json"), r#"{"name": "flags-ext"}"#).unwrap();

    println!("task benchmark ({cpus} CPUs available; median of {n} runs)");

    // 1. Built-in vs the same check as an external task, from a closure.
    let (l, builtin) = closure(
        &plugins,
        &format!(
            r#"let f = task_run("flags", "feature-flags", #{{ file: "{}" }}); #{{}}"#,
            flags.display()
        ),
    );
    let t_builtin = time(n * 10, || call(&l, &builtin));
    let (l2, external) = closure(
        &plugins,
        &format!(
            r#"let f = task_run("flags", "flags-ext", #{{ file: "{}" }}); #{{}}"#,
            flags.display()
        ),
    );
    let t_external = time(n, || call(&l2, &external));
    println!(
        "built-in feature-flags from a closure: {:.1} µs (target <= 20 µs); as an external bash task: {:.0} µs; {:.0}x faster",
        us(t_builtin),
        us(t_external),
        t_external.as_secs_f64() / t_builtin.as_secs_f64()
    );

    // 2. A bash task through task_run vs `bash task.bash`.
    let task = dir.path().join("plain");
    fs::create_dir_all(&task).unwrap();
    fs::write(
        task.join("task.bash"),
        "for i in 1 2 3 4 5; do echo \"line $i\"; done\n",
    )
    .unwrap();
    let search = SearchPath::new(vec![]);
    let opts = sparrow_task::RunOptions::default();
    let t_runner = time(n, || {
        let o = sparrow_task::task_run(
            &search,
            "plain",
            task.to_str().unwrap(),
            serde_json::json!({}),
            &opts,
            &mut sparrow_task::runner::Silent,
        )
        .unwrap();
        assert_eq!(o.stdout.len(), 5);
    });
    let script = task.join("task.bash");
    let t_bash = time(n, || {
        let o = Command::new("bash").arg(&script).output().unwrap();
        assert_eq!(o.stdout.split(|&b| b == b'\n').count(), 6);
    });
    println!("scratch directories in {}", opts.cache_base.display());
    println!(
        "bash task through task_run: {:.0} µs; `bash task.bash` directly: {:.0} µs; ratio {:.2}x (target <= 1.5x)",
        us(t_runner),
        us(t_bash),
        t_runner.as_secs_f64() / t_bash.as_secs_f64()
    );

    // 3. Task::Check over 10,000 lines.
    let data: Vec<String> = (1..=10_000).map(|i| format!("line {i} ok")).collect();
    let cache = tempfile::tempdir().unwrap();
    let t_check = time(n / 4 + 1, || {
        let mut blocks = NoBlocks;
        let mut cx = check::Context {
            file: "task.check",
            cache_root: cache.path(),
            blocks: &mut blocks,
        };
        let r = check::evaluate(CHECK, &data, &mut cx).unwrap();
        assert_eq!(r.failed, 0, "{:?}", r.lines);
    });
    if std::env::var_os("SPARROW_BENCH_PER_CHECK").is_some() {
        for l in CHECK.lines() {
            let mut blocks = NoBlocks;
            let t = time(20, || {
                let mut cx = check::Context {
                    file: "x",
                    cache_root: cache.path(),
                    blocks: &mut blocks,
                };
                check::evaluate(l, &data, &mut cx).unwrap();
            });
            println!("{:8.3} ms  {l}", t.as_secs_f64() * 1e3);
        }
    }
    println!(
        "Task::Check, 13 checks over 10,000 lines: {:.2} ms (target <= 5 ms)",
        t_check.as_secs_f64() * 1e3
    );
}
