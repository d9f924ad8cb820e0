//! `resource-monitor`: memory, load and pressure stall information, with
//! optional thresholds (any one exceeded fails the task).
//!
//! | param | type | meaning |
//! |---|---|---|
//! | `max_load_percent` | number | load1 / cpus * 100 at most |
//! | `min_available_memory` | size (bytes, `"512M"`) | MemAvailable at least |
//! | `max_psi_R_avgN` | number | R = cpu, memory, io; N = 10, 60, 300: the `some` line's avgN at most |
//! | `max_psi_R_full_avgN` | number | the same for the `full` line (`max_psi_R_some_avgN` is also read) |
//!
//! State: `memory_total`, `memory_available`, `memory_free` (bytes),
//! `load1`, `load5`, `load15`, `load_percent` (floats), `cpus` (online),
//! `psi` (`{cpu: {some: {avg10, avg60, avg300, total}, full: ..}, memory:
//! .., io: ..}`, the lines the kernel has). Without PSI (`/proc/pressure`
//! missing) `psi` is left out and `psi_note` says why.

use serde_json::{Map, Value};

use super::params::{num_param, size_param};
use super::{frame, Call, Fail, Report};
use crate::Outcome;

const RESOURCES: [&str; 3] = ["cpu", "memory", "io"];

pub(crate) fn run(call: &Call) -> Outcome {
    frame("resource-monitor", call, check)
}

/// A meminfo field in bytes (`MemTotal:  16 kB`).
fn meminfo_field(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(name)?.strip_prefix(':')?;
        let mut it = rest.split_whitespace();
        let n: u64 = it.next()?.parse().ok()?;
        Some(match it.next() {
            Some("kB") => n.saturating_mul(1024),
            _ => n,
        })
    })
}

/// One PSI file: `{some: {avg10, avg60, avg300, total}, full: ..}`.
fn parse_psi(text: &str) -> Map<String, Value> {
    let mut out = Map::new();
    for line in text.lines() {
        let mut it = line.split_whitespace();
        let Some(kind) = it.next() else { continue };
        let mut vals = Map::new();
        for kv in it {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let v = match k {
                "total" => v.parse::<u64>().ok().map(Value::from),
                _ => v.parse::<f64>().ok().map(Value::from),
            };
            if let Some(v) = v {
                vals.insert(k.to_owned(), v);
            }
        }
        out.insert(kind.to_owned(), Value::Object(vals));
    }
    out
}

fn online_cpus() -> u64 {
    // SAFETY: sysconf only reads a system value.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    match u64::try_from(n) {
        Ok(n) if n > 0 => n,
        _ => std::thread::available_parallelism().map_or(1, |n| n.get() as u64),
    }
}

/// A `max_psi_*` parameter: (resource, line, avgN), or `None` when the
/// name is not one.
fn psi_threshold_name(name: &str) -> Option<(&str, &str, &str)> {
    let rest = name.strip_prefix("max_psi_")?;
    let (head, avg) = rest.rsplit_once('_')?;
    if !matches!(avg, "avg10" | "avg60" | "avg300") {
        return None;
    }
    let (res, line) = match head.split_once('_') {
        Some((r, l @ ("some" | "full"))) => (r, l),
        Some(_) => return None,
        None => (head, "some"),
    };
    RESOURCES.contains(&res).then_some((res, line, avg))
}

fn check(_: &Call, p: &Map<String, Value>, r: &mut Report) -> Result<(), Fail> {
    // Parameters first: a typo must fail even when nothing is exceeded.
    let max_load = num_param(p, "max_load_percent")?;
    let min_avail = size_param(p, "min_available_memory")?;
    let mut psi_limits = Vec::new();
    for name in p.keys().filter(|k| k.starts_with("max_psi_")) {
        let Some((res, line, avg)) = psi_threshold_name(name) else {
            return Err(format!(
                "unknown parameter `{name}` (expected max_psi_{{cpu,memory,io}}[_some|_full]_avg{{10,60,300}})"
            )
            .into());
        };
        if let Some(limit) = num_param(p, name)? {
            psi_limits.push((name.as_str(), res, line, avg, limit));
        }
    }

    let meminfo = std::fs::read_to_string("/proc/meminfo")
        .map_err(|e| format!("cannot read /proc/meminfo: {e}"))?;
    let field =
        |n: &str| meminfo_field(&meminfo, n).ok_or_else(|| format!("/proc/meminfo has no {n}"));
    let (total, avail, free) = (
        field("MemTotal")?,
        field("MemAvailable")?,
        field("MemFree")?,
    );
    r.set("memory_total", total);
    r.set("memory_available", avail);
    r.set("memory_free", free);

    let loadavg = std::fs::read_to_string("/proc/loadavg")
        .map_err(|e| format!("cannot read /proc/loadavg: {e}"))?;
    let loads: Vec<f64> = loadavg
        .split_whitespace()
        .take(3)
        .filter_map(|v| v.parse().ok())
        .collect();
    let [l1, l5, l15] = loads[..] else {
        return Err(format!("/proc/loadavg is not understood: {:?}", loadavg.trim()).into());
    };
    let cpus = online_cpus();
    let load_percent = (l1 / cpus as f64 * 10_000.0).round() / 100.0;
    r.set("load1", l1);
    r.set("load5", l5);
    r.set("load15", l15);
    r.set("cpus", cpus);
    r.set("load_percent", load_percent);

    let mut psi = Map::new();
    let mut missing = Vec::new();
    for res in RESOURCES {
        let path = format!("/proc/pressure/{res}");
        match std::fs::read_to_string(&path) {
            Ok(t) => {
                psi.insert(res.to_owned(), Value::Object(parse_psi(&t)));
            }
            Err(e) => missing.push(format!("{path}: {e}")),
        }
    }
    if !missing.is_empty() {
        let note = format!("PSI not available ({})", missing.join("; "));
        r.line(&note);
        r.set("psi_note", note);
    }
    let psi = Value::Object(psi);
    if psi.as_object().is_some_and(|m| !m.is_empty()) {
        r.set("psi", psi.clone());
    }
    r.line(format!(
        "memory {avail} of {total} bytes available, load {l1} {l5} {l15} ({load_percent}% of {cpus} cpus)"
    ));

    let mut over = Vec::new();
    if let Some(max) = max_load {
        if load_percent > max {
            over.push(format!(
                "load is {load_percent}% of {cpus} cpus (load1 {l1}), above max_load_percent {max}"
            ));
        }
    }
    if let Some(min) = min_avail {
        if avail < min {
            over.push(format!(
                "available memory is {avail} bytes, below min_available_memory {min}"
            ));
        }
    }
    for (name, res, line, avg, limit) in psi_limits {
        match psi[res][line][avg].as_f64() {
            Some(v) if v > limit => over.push(format!(
                "PSI {res} {line} {avg} is {v}, above {name} {limit}"
            )),
            Some(_) => {}
            None => over.push(format!(
                "{name} cannot be checked: no PSI {res} {line} line on this kernel"
            )),
        }
    }
    if over.is_empty() {
        Ok(())
    } else {
        Err(over.join("; ").into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn meminfo_and_psi_parse() {
        let m = "MemTotal:       16 kB\nMemFree:        8 kB\nMemAvailable:   12 kB\nHugePages_Total: 0\n";
        assert_eq!(meminfo_field(m, "MemTotal"), Some(16 * 1024));
        assert_eq!(meminfo_field(m, "MemAvailable"), Some(12 * 1024));
        assert_eq!(meminfo_field(m, "HugePages_Total"), Some(0));
        assert_eq!(meminfo_field(m, "Mem"), None);
        let p = parse_psi(
            "some avg10=0.29 avg60=0.17 avg300=0.20 total=466487868\nfull avg10=1.50 avg60=0.00 avg300=0.00 total=0\n",
        );
        assert_eq!(
            Value::Object(p),
            json!({"some": {"avg10": 0.29, "avg60": 0.17, "avg300": 0.2, "total": 466487868u64},
                   "full": {"avg10": 1.5, "avg60": 0.0, "avg300": 0.0, "total": 0}})
        );
    }

    #[test]
    fn psi_threshold_names() {
        assert_eq!(
            psi_threshold_name("max_psi_memory_avg10"),
            Some(("memory", "some", "avg10"))
        );
        assert_eq!(
            psi_threshold_name("max_psi_io_full_avg300"),
            Some(("io", "full", "avg300"))
        );
        assert_eq!(
            psi_threshold_name("max_psi_cpu_some_avg60"),
            Some(("cpu", "some", "avg60"))
        );
        assert_eq!(psi_threshold_name("max_psi_disk_avg10"), None);
        assert_eq!(psi_threshold_name("max_psi_cpu_avg5"), None);
        assert_eq!(psi_threshold_name("max_psi_cpu_half_avg10"), None);
    }
}
