//! `status`, `eval` and `reload`: clients of systemd-sparrowd's control socket.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sparrow_daemon::control::{
    self, Decision, HealthStatus, KernelStatus, PatternStatus, Request, Response, UnitStatus,
};

fn ask(req: Request) -> anyhow::Result<Response> {
    let resp = control::request(&control::socket_path(), &req, Duration::from_secs(20))
        .map_err(anyhow::Error::msg)?;
    if !resp.ok {
        anyhow::bail!(
            "{}",
            resp.error
                .unwrap_or_else(|| "the daemon refused the request".into())
        );
    }
    Ok(resp)
}

fn ago(at_ms: u64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let s = now.saturating_sub(at_ms) / 1000;
    if s < 120 {
        format!("{s}s ago")
    } else {
        format!("{}m ago", s / 60)
    }
}

fn decisions(ds: &[Decision]) -> String {
    ds.iter()
        .map(|d| {
            format!(
                "    {:<16} desired {:<10} live {:<10} {}\n",
                d.prop.to_string(),
                d.desired,
                d.live,
                d.verdict
            )
        })
        .collect()
}

/// The drop-ins the generator wrote for units shipped elsewhere, with the
/// definition each came from (its `# Drop-in from` line): the daemon does
/// not manage them, so they are read from the generator's directories.
fn generated_dropins(unit: Option<&str>) -> Vec<(String, String)> {
    let env = |k: &str| std::env::var(k).ok();
    let normal = sparrow_source::paths::generator_dir(sparrow_source::paths::Mode::System, &env);
    let early = sparrow_source::paths::early_dir(&normal);
    let mut out = Vec::new();
    for dir in [normal, early] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.filter_map(Result::ok) {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(target) = name.strip_suffix(".d") else {
                continue;
            };
            if unit.is_some_and(|u| u != target) {
                continue;
            }
            for f in std::fs::read_dir(e.path())
                .into_iter()
                .flatten()
                .filter_map(Result::ok)
            {
                let file = f.file_name().to_string_lossy().into_owned();
                if !file.starts_with(sparrow_lang::DROPIN_PREFIX) {
                    continue;
                }
                let from = sparrow_source::read_source(&f.path(), sparrow_source::Owners::Any)
                    .ok()
                    .and_then(|t| {
                        t.text
                            .lines()
                            .find_map(|l| {
                                l.strip_prefix("# ")?
                                    .strip_prefix(sparrow_lang::DROPIN_FROM)
                            })
                            .map(str::to_string)
                    })
                    .unwrap_or_default();
                out.push((format!("{name}/{file}"), from));
            }
        }
    }
    out.sort();
    out
}

pub fn status(unit: Option<String>, json: bool) -> anyhow::Result<u8> {
    let dropins = generated_dropins(unit.as_deref());
    let print_dropins = || {
        if !dropins.is_empty() {
            println!(
                "\ndrop-ins from definitions (written by the generator, not managed at runtime):"
            );
            for (path, from) in &dropins {
                println!("  {path} from {from}");
            }
        }
    };
    let resp = match ask(Request::Status { unit }) {
        Ok(r) => r,
        Err(e) if !json => {
            print_dropins();
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&resp)?);
        return Ok(0);
    }
    let st = resp.status.unwrap_or_default();
    let d = &st.daemon;
    println!(
        "systemd-sparrowd (pid {}, {}): {} managed units; {} changes in the last minute (cap {}); {} evaluations, {} errors, {} stopped by limits",
        d.pid, d.bus, d.managed, d.changes_last_minute, d.max_changes_per_minute, d.evaluations, d.errors, d.slow
    );
    for p in &d.problems {
        println!("  definition problem: {p}");
    }
    for w in &d.raku_workers {
        let h = &w.health;
        println!(
            "  Raku worker of evaluator {}: {} start(s), {} call(s){}",
            w.evaluator,
            h.starts,
            h.calls,
            h.last_failure
                .as_deref()
                .map_or(String::new(), |f| format!("; last failure: {f}"))
        );
    }
    for u in &st.units {
        println!("\n{} ({}) from {}", u.unit, u.active_state, u.definition);
        if let Some(q) = &u.quarantined {
            println!("  not evaluated: {q}");
        }
        if u.features.iter().any(|f| f == "resources") {
            resources(u);
        }
        if let Some(h) = &u.health {
            health(h);
        }
        if let Some(k) = &u.kernel {
            kernel(u, k);
        }
        if let Some(p) = &u.pattern {
            pattern(p);
        }
    }
    print_dropins();
    Ok(0)
}

fn pattern(p: &PatternStatus) {
    let watch = if p.watch.is_empty() {
        String::new()
    } else {
        format!(" and when {} changes", p.watch.join(" or "))
    };
    println!(
        "  pattern check: every {}s{watch}; {} runs, {} failed",
        p.interval_ms / 1000,
        p.runs,
        p.errors
    );
    if let Some(at) = p.last_run_ms {
        println!("  last run {}: {}", ago(at), p.last_outcome);
    }
    if let Some(env) = &p.environment {
        let vars: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!(
            "  running with {} (restarts for it: {})",
            vars.join(" "),
            p.restarts
        );
    }
}

fn kernel(u: &UnitStatus, k: &KernelStatus) {
    for w in &k.watches {
        let fired = match w.last_fired_ms {
            Some(at) => format!("; fired {} times, last {}", w.fired, ago(at)),
            None => "; not fired".into(),
        };
        let file = if w.file.is_empty() {
            String::new()
        } else {
            format!(" on {}", w.file)
        };
        println!("  kernel: {}{file}: {}{fired}", w.what, w.state);
        if let Some(n) = &w.note {
            println!("    ({n})");
        }
    }
    if let Some(r) = &k.last_response {
        println!(
            "  kernel response {} to {}: {}",
            ago(r.at_ms),
            r.event,
            r.outcome
        );
    }
    println!(
        "  kernel responses {}, failed {}, folded into a later one {}",
        k.responses, k.errors, k.coalesced
    );
    if !u.features.iter().any(|f| f == "resources") {
        if let Some(e) = u.last_eval.as_ref().filter(|e| e.error.is_none()) {
            print!(
                "  last decision {}:\n{}",
                ago(e.at_ms),
                decisions(&e.decisions)
            );
        }
        applied(u);
    }
}

fn applied(u: &UnitStatus) {
    for a in &u.applied {
        println!(
            "  applied {}: {} {} -> {} ({})",
            ago(a.at_ms),
            a.prop,
            a.old,
            a.new,
            a.reason
        );
    }
}

fn resources(u: &UnitStatus) {
    let next = u
        .next_eval_in_ms
        .map(|ms| format!(", next in {}s", ms.div_ceil(1000)))
        .unwrap_or_default();
    println!("  resources: every {}s{next}", u.interval_ms / 1000);
    match &u.last_eval {
        None => println!("  not evaluated yet"),
        Some(e) => match &e.error {
            Some(err) => println!("  last evaluation {} failed: {err}", ago(e.at_ms)),
            None => print!(
                "  last evaluation {} ({} µs):\n{}",
                ago(e.at_ms),
                e.took_us,
                decisions(&e.decisions)
            ),
        },
    }
    applied(u);
    println!(
        "  evaluations {}, errors {}, stopped by limits {}",
        u.evaluations, u.errors, u.slow
    );
}

fn health(h: &HealthStatus) {
    let latency = h
        .last_latency_ms
        .map(|ms| format!(", last probe {ms} ms"))
        .unwrap_or_default();
    let next = h
        .next_probe_in_ms
        .map(|ms| format!(", next in {}s", ms.div_ceil(1000)))
        .unwrap_or_default();
    println!(
        "  health ({} check): {}; {} failures, {} successes in a row{latency}{next}",
        h.check, h.state, h.failures, h.successes
    );
    if let Some(e) = &h.last_error {
        println!("  last error: {e}");
    }
    let window = h.budget_window_ms / 1000;
    println!(
        "  restarts: {} since the daemon started; {} of at most {} within {window}s{}",
        h.restarts,
        h.restarts_in_window,
        h.budget_max,
        if h.budget_exhausted {
            " - budget exhausted: not restarting until healthy or `systemd-sparrow reset`"
        } else {
            ""
        }
    );
}

pub fn eval(unit: String, json: bool) -> anyhow::Result<u8> {
    let resp = ask(Request::Eval { unit })?;
    if json {
        println!("{}", serde_json::to_string_pretty(&resp)?);
        return Ok(0);
    }
    let r = resp.eval.unwrap_or_default();
    if let Some(err) = &r.error {
        println!(
            "{}: evaluation failed after {} µs: {err}",
            r.unit, r.took_us
        );
        return Ok(1);
    }
    print!(
        "{}: evaluated in {} µs; nothing was applied\n{}",
        r.unit,
        r.took_us,
        decisions(&r.decisions)
    );
    Ok(0)
}

pub fn reset(unit: String) -> anyhow::Result<u8> {
    let resp = ask(Request::Reset { unit })?;
    println!("{}", resp.message.unwrap_or_default());
    Ok(0)
}

pub fn reload() -> anyhow::Result<u8> {
    let resp = ask(Request::Reload)?;
    println!("{}", resp.message.unwrap_or_default());
    Ok(0)
}
