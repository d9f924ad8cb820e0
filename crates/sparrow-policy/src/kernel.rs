//! Kernel signals, decided without I/O: the PSI trigger line written to a
//! `*.pressure` file (with the kernel's rules, and the rounding an
//! unprivileged daemon needs), pressure readings, `memory.events` counters
//! and what changed between two readings, and the coalescing of change
//! notifications for watched files.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Millis;

/// A resource with pressure stall information.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Resource {
    /// `memory.pressure`.
    Memory,
    /// `cpu.pressure`.
    Cpu,
    /// `io.pressure`.
    Io,
}

impl Resource {
    /// Every resource, in the order events and readings list them.
    pub const ALL: [Resource; 3] = [Resource::Memory, Resource::Cpu, Resource::Io];

    /// `memory`, `cpu`, `io`: the definition's key and the file's stem.
    pub fn name(self) -> &'static str {
        match self {
            Resource::Memory => "memory",
            Resource::Cpu => "cpu",
            Resource::Io => "io",
        }
    }

    /// The resource named `name`.
    pub fn from_name(name: &str) -> Option<Resource> {
        Resource::ALL.into_iter().find(|r| r.name() == name)
    }

    /// `memory-pressure` and so on: the event type a trigger raises.
    pub fn event_type(self) -> &'static str {
        match self {
            Resource::Memory => "memory-pressure",
            Resource::Cpu => "cpu-pressure",
            Resource::Io => "io-pressure",
        }
    }
}

/// A PSI trigger as the definition asks for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TriggerSpec {
    /// Which resource.
    pub resource: Resource,
    /// `full` (all non-idle tasks stalled) rather than `some`.
    pub full: bool,
    /// Stall time within a window that fires the trigger, µs.
    pub threshold_us: u64,
    /// The window, µs.
    pub window_us: u64,
}

/// The kernel's bounds on a trigger window (`kernel/sched/psi.c`).
pub const WINDOW_MIN_US: u64 = 500_000;
/// See [`WINDOW_MIN_US`].
pub const WINDOW_MAX_US: u64 = 10_000_000;
/// Without `CAP_SYS_RESOURCE` a window must be a multiple of this.
pub const UNPRIVILEGED_STEP_US: u64 = 2_000_000;

/// A trigger ready to be written: the line, and what was changed to make
/// the kernel accept it (said once in the log and in status).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trigger {
    /// What was asked for.
    pub spec: TriggerSpec,
    /// Threshold as written, µs (after rounding).
    pub threshold_us: u64,
    /// Window as written, µs (after rounding).
    pub window_us: u64,
    /// Why the window (and threshold) differ from the definition's, if they do.
    pub rounded: Option<String>,
}

impl Trigger {
    /// What is written to the pressure file: `some 150000 2000000`.
    pub fn line(&self) -> String {
        format!(
            "{} {} {}",
            if self.spec.full { "full" } else { "some" },
            self.threshold_us,
            self.window_us
        )
    }
}

/// `2 s`, `150 ms`, `750 µs`: a span of µs as a person writes it.
pub fn show_us(us: u64) -> String {
    match us {
        u if u % 1_000_000 == 0 => format!("{} s", u / 1_000_000),
        u if u % 1_000 == 0 => format!("{} ms", u / 1_000),
        u => format!("{u} µs"),
    }
}

/// The trigger the kernel will accept for `spec`, or why there is none.
/// Without `CAP_SYS_RESOURCE` (`privileged` false) the kernel accepts only
/// windows that are multiples of 2 s: the window is rounded up and the
/// threshold scaled with it, so the trigger still fires at the same share
/// of stalled time.
pub fn trigger(spec: TriggerSpec, privileged: bool) -> Result<Trigger, String> {
    let TriggerSpec {
        threshold_us,
        window_us,
        ..
    } = spec;
    if !(WINDOW_MIN_US..=WINDOW_MAX_US).contains(&window_us) {
        return Err(format!(
            "window {} is outside the kernel's 500 ms..10 s",
            show_us(window_us)
        ));
    }
    if threshold_us == 0 || threshold_us > window_us {
        return Err(format!(
            "threshold {} must be more than 0 and at most the window ({})",
            show_us(threshold_us),
            show_us(window_us)
        ));
    }
    if privileged || window_us % UNPRIVILEGED_STEP_US == 0 {
        return Ok(Trigger {
            spec,
            threshold_us,
            window_us,
            rounded: None,
        });
    }
    let window = window_us.div_ceil(UNPRIVILEGED_STEP_US) * UNPRIVILEGED_STEP_US;
    // The same share of the window; never past it.
    let threshold = ((u128::from(threshold_us) * u128::from(window)) / u128::from(window_us))
        .min(u128::from(window)) as u64;
    Ok(Trigger {
        spec,
        threshold_us: threshold,
        window_us: window,
        rounded: Some(format!(
            "window {} rounded up to {} and threshold {} scaled to {} (without CAP_SYS_RESOURCE the kernel accepts only windows that are multiples of 2 s)",
            show_us(window_us),
            show_us(window),
            show_us(threshold_us),
            show_us(threshold)
        )),
    })
}

/// One line of a pressure file.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct PressureLine {
    /// Share of the last 10 s with a stall, percent.
    pub avg10: f64,
    /// Over 60 s.
    pub avg60: f64,
    /// Over 300 s.
    pub avg300: f64,
    /// Total stall time, µs.
    pub total: u64,
}

/// A pressure file: `some` and, where the kernel has it, `full`.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Pressure {
    /// Some task stalled.
    pub some: PressureLine,
    /// Every non-idle task stalled.
    pub full: Option<PressureLine>,
}

/// Parses a `*.pressure` file (`/proc/pressure/*` has the same format):
/// `some avg10=0.00 avg60=0.00 avg300=0.00 total=0`, then `full ...`.
pub fn parse_pressure(text: &str) -> Result<Pressure, String> {
    let mut some = None;
    let mut full = None;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let mut words = line.split_whitespace();
        let kind = words.next().unwrap_or_default();
        let mut p = PressureLine::default();
        let mut seen = 0;
        for w in words {
            let (k, v) = w
                .split_once('=')
                .ok_or_else(|| format!("not a pressure line: {line:?}"))?;
            let bad = || format!("bad {k} in {line:?}");
            match k {
                "avg10" => p.avg10 = v.parse().map_err(|_| bad())?,
                "avg60" => p.avg60 = v.parse().map_err(|_| bad())?,
                "avg300" => p.avg300 = v.parse().map_err(|_| bad())?,
                "total" => p.total = v.parse().map_err(|_| bad())?,
                _ => continue, // a field a later kernel adds
            }
            seen += 1;
        }
        if seen < 4 {
            return Err(format!("not a pressure line: {line:?}"));
        }
        match kind {
            "some" => some = Some(p),
            "full" => full = Some(p),
            _ => return Err(format!("not a pressure line: {line:?}")),
        }
    }
    Ok(Pressure {
        some: some.ok_or("no `some` line")?,
        full,
    })
}

/// The `memory.events` counters an event is raised for, with its type.
pub const MEMORY_EVENTS: [(&str, &str); 4] = [
    ("high", "memory-high"),
    ("max", "memory-max"),
    ("oom", "oom"),
    ("oom_kill", "oom-kill"),
];

/// Parses `memory.events` (or `memory.events.local`): `name count` lines.
pub fn parse_counters(text: &str) -> Result<BTreeMap<String, u64>, String> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (k, v) = l
                .split_once(' ')
                .ok_or_else(|| format!("not a counter line: {l:?}"))?;
            let n = v
                .trim()
                .parse()
                .map_err(|_| format!("not a counter line: {l:?}"))?;
            Ok((k.to_string(), n))
        })
        .collect()
}

/// What rose between two readings of `memory.events`: (event type, by how
/// much), in [`MEMORY_EVENTS`] order. Without a previous reading nothing
/// rose (the first reading is the baseline); a counter that went down
/// belongs to a new cgroup and counts from zero.
pub fn memory_deltas(
    before: Option<&BTreeMap<String, u64>>,
    now: &BTreeMap<String, u64>,
) -> Vec<(&'static str, u64)> {
    let Some(before) = before else {
        return Vec::new();
    };
    MEMORY_EVENTS
        .iter()
        .filter_map(|(counter, event)| {
            let n = *now.get(*counter)?;
            let was = before.get(*counter).copied().unwrap_or(0);
            let rose = if n >= was { n - was } else { n };
            (rose > 0).then_some((*event, rose))
        })
        .collect()
}

/// Coalesces change notifications of watched files into calls: the first
/// change asks for a call `quiet_ms` later (more changes meanwhile join
/// it, so a burst of writes is one call, and a steady stream still gets
/// one every `quiet_ms`); a change while a call runs asks for one more
/// after it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Debounce {
    due: Option<Millis>,
    running: bool,
    again: bool,
}

impl Debounce {
    /// A file changed at `now`.
    pub fn changed(&mut self, now: Millis, quiet_ms: Millis) {
        if self.running {
            self.again = true;
        } else if self.due.is_none() {
            self.due = Some(now + quiet_ms);
        }
    }

    /// When a call is due, if one is.
    pub fn due(&self) -> Option<Millis> {
        self.due.filter(|_| !self.running)
    }

    /// Starts the call if it is due at `now`.
    pub fn start(&mut self, now: Millis) -> bool {
        match self.due() {
            Some(at) if at <= now => {
                self.due = None;
                self.running = true;
                true
            }
            _ => false,
        }
    }

    /// Starts a call now whatever is due (the interval came round); a
    /// pending change is served by it.
    pub fn start_now(&mut self) -> bool {
        if self.running {
            return false;
        }
        self.due = None;
        self.running = true;
        true
    }

    /// The call ended at `now`; a change that came during it asks for
    /// another `quiet_ms` later.
    pub fn finished(&mut self, now: Millis, quiet_ms: Millis) {
        self.running = false;
        if std::mem::take(&mut self.again) {
            self.due = Some(now + quiet_ms);
        }
    }

    /// Whether a call runs.
    pub fn running(&self) -> bool {
        self.running
    }
}

#[cfg(test)]
mod tests;
