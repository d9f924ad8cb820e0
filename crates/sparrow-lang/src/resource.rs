//! Resource-control values: the one reader that turns what a definition
//! or a closure gives for a resource key into a typed [`Resource`], used
//! by the unit renderer at generation time and by the daemon at runtime,
//! so both accept and mean the same.

use rhai::Dynamic;

use crate::value::{array, integer, percent, render_percent, size, text, Issue, Size};

/// How a resource-control key's value is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceKind {
    /// Bytes: `"512M"`, `2.GB`, an integer, `"infinity"`, or a percentage of
    /// physical memory.
    Size,
    /// `CPUQuota=`: a percentage of one CPU (`"150%"`), or `"infinity"` for
    /// no quota. A bare number is an error: `1.5` reads as one and a half
    /// CPUs to a person and as 1.5 % to systemd.
    Quota,
    /// A weight 1..=10000; with `idle`, also `"idle"` (`CPUWeight=`).
    Weight {
        /// `"idle"` is allowed.
        idle: bool,
    },
    /// `TasksMax=`: a count, a percentage of the system's limit, or `"infinity"`.
    Tasks,
    /// `AllowedCPUs=`: `"0-3,6"` or an array of CPU numbers.
    Cpus,
}

/// A resource-control value: the one reading of a resource key, for the
/// unit file and for the daemon alike (so a value `check` accepts is one
/// the daemon can apply, and the other way round).
#[derive(Debug, Clone, PartialEq)]
pub enum Resource {
    /// An amount: bytes, a weight, a task count.
    Amount(u64),
    /// A percentage (of memory, of one CPU, of the task limit).
    Percent(f64),
    /// No limit.
    Infinity,
    /// `CPUWeight=idle`.
    Idle,
    /// A set of CPUs.
    Cpus(std::collections::BTreeSet<u32>),
}

impl Resource {
    /// The unit-file spelling for a key of `kind`.
    pub fn render(&self, kind: ResourceKind) -> String {
        match self {
            Resource::Amount(n) if kind == ResourceKind::Size => Size::Bytes(*n).render(),
            Resource::Amount(n) => n.to_string(),
            Resource::Percent(p) => render_percent(*p),
            // systemd has no CPUQuota=infinity: an empty assignment is "no
            // quota", which is what "infinity" asks for.
            Resource::Infinity if kind == ResourceKind::Quota => String::new(),
            Resource::Infinity => "infinity".into(),
            Resource::Idle => "idle".into(),
            Resource::Cpus(set) => render_cpus(set),
        }
    }
}

/// `0-2 5 7-8`: runs of consecutive CPUs as ranges.
fn render_cpus(set: &std::collections::BTreeSet<u32>) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut run: Option<(u32, u32)> = None;
    for &c in set {
        run = match run {
            Some((a, b)) if c == b + 1 => Some((a, c)),
            Some((a, b)) => {
                out.push(if a == b {
                    a.to_string()
                } else {
                    format!("{a}-{b}")
                });
                Some((c, c))
            }
            None => Some((c, c)),
        };
    }
    if let Some((a, b)) = run {
        out.push(if a == b {
            a.to_string()
        } else {
            format!("{a}-{b}")
        });
    }
    out.join(" ")
}

/// The highest CPU number systemd accepts in a CPU set.
const MAX_CPU: u32 = 8191;

/// Parses `"0-3,6 8"`: CPU numbers and ranges, comma or space separated.
fn cpu_list(s: &str) -> Result<std::collections::BTreeSet<u32>, Issue> {
    let bad = |why: String| Issue::new(why).help("write it like \"0-3,6\" or [0, 1]");
    let mut set = std::collections::BTreeSet::new();
    for part in s.split([',', ' ']).filter(|p| !p.trim().is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let num = |t: &str| {
            t.trim()
                .parse::<u32>()
                .map_err(|_| bad(format!("{s:?} is not a CPU list")))
        };
        let (a, b) = (num(a)?, num(b)?);
        if a > b {
            return Err(bad(format!(
                "{s:?} has the range {a}-{b}, which runs backwards"
            )));
        }
        if b > MAX_CPU {
            return Err(bad(format!(
                "{s:?} names CPU {b}; the highest is {MAX_CPU}"
            )));
        }
        set.extend(a..=b);
    }
    if set.is_empty() {
        return Err(bad(format!("{s:?} is not a CPU list")));
    }
    Ok(set)
}

/// Reads a resource-control value.
pub fn resource(kind: ResourceKind, v: &Dynamic) -> Result<Resource, Issue> {
    let word = v.clone().into_string().ok();
    let word = word.as_deref().map(str::trim);
    match kind {
        ResourceKind::Size => Ok(match size(v)? {
            Size::Bytes(n) => Resource::Amount(n),
            Size::Percent(p) => Resource::Percent(p),
            Size::Infinity => Resource::Infinity,
        }),
        ResourceKind::Quota if word == Some("infinity") => Ok(Resource::Infinity),
        ResourceKind::Quota if v.is_int() || v.is_float() => {
            let n = v.to_string();
            let cpus = v
                .as_float()
                .ok()
                .or_else(|| v.as_int().ok().map(|i| i as f64));
            Err(Issue::new(format!(
                "{n} is a bare number; a CPU quota is a percentage of one CPU"
            ))
            .help(match cpus {
                Some(c) if c > 0.0 && c <= 64.0 => format!(
                    "write \"{}%\" for {n} CPUs, or \"{n}%\" for {n} % of one CPU",
                    crate::value::fmt_number(c * 100.0)
                ),
                _ => "write it as a string with %, such as \"150%\" (1.5 CPUs)".into(),
            }))
        }
        ResourceKind::Quota => percent(v).map(Resource::Percent),
        ResourceKind::Weight { idle: true } if word == Some("idle") => Ok(Resource::Idle),
        ResourceKind::Weight { idle } => integer(v, 1, 10_000)
            .map(|n| Resource::Amount(n as u64))
            .map_err(|i| {
                if idle {
                    i.help("a weight is 1..10000, or \"idle\"")
                } else {
                    i
                }
            }),
        ResourceKind::Tasks if v.is_int() => {
            integer(v, 1, i64::MAX).map(|n| Resource::Amount(n as u64))
        }
        ResourceKind::Tasks => Ok(match size(v)? {
            Size::Bytes(n) => Resource::Amount(n),
            Size::Percent(p) => Resource::Percent(p),
            Size::Infinity => Resource::Infinity,
        }),
        ResourceKind::Cpus => match array(v) {
            Some(items) => {
                let set = items
                    .iter()
                    .map(|i| integer(i, 0, i64::from(MAX_CPU)).map(|n| n as u32))
                    .collect::<Result<std::collections::BTreeSet<u32>, _>>()?;
                if set.is_empty() {
                    return Err(
                        Issue::new("an empty CPU list").help("list at least one CPU, like [0, 1]")
                    );
                }
                Ok(Resource::Cpus(set))
            }
            None => cpu_list(&text(v)?.text).map(Resource::Cpus),
        },
    }
}
