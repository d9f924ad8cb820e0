//! Resource properties and their encodings.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

/// systemd's "no limit" for 64-bit resource properties.
pub const INFINITY: u64 = u64::MAX;

/// A resource property that can be changed while the unit runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Prop {
    /// `MemoryMin=`
    MemoryMin,
    /// `MemoryLow=`
    MemoryLow,
    /// `MemoryHigh=`
    MemoryHigh,
    /// `MemoryMax=`
    MemoryMax,
    /// `MemorySwapMax=`
    MemorySwapMax,
    /// `CPUQuota=` (D-Bus: `CPUQuotaPerSecUSec`)
    CpuQuota,
    /// `CPUWeight=`
    CpuWeight,
    /// `IOWeight=`
    IoWeight,
    /// `TasksMax=`
    TasksMax,
    /// `AllowedCPUs=`
    AllowedCpus,
}

impl Prop {
    /// Every property.
    pub const ALL: [Prop; 10] = [
        Prop::MemoryMin,
        Prop::MemoryLow,
        Prop::MemoryHigh,
        Prop::MemoryMax,
        Prop::MemorySwapMax,
        Prop::CpuQuota,
        Prop::CpuWeight,
        Prop::IoWeight,
        Prop::TasksMax,
        Prop::AllowedCpus,
    ];

    /// The definition key (`memory_max`).
    pub fn key(self) -> &'static str {
        match self {
            Prop::MemoryMin => "memory_min",
            Prop::MemoryLow => "memory_low",
            Prop::MemoryHigh => "memory_high",
            Prop::MemoryMax => "memory_max",
            Prop::MemorySwapMax => "memory_swap_max",
            Prop::CpuQuota => "cpu_quota",
            Prop::CpuWeight => "cpu_weight",
            Prop::IoWeight => "io_weight",
            Prop::TasksMax => "tasks_max",
            Prop::AllowedCpus => "allowed_cpus",
        }
    }

    /// The property for a definition key.
    pub fn from_key(key: &str) -> Option<Prop> {
        Prop::ALL.into_iter().find(|p| p.key() == key)
    }

    /// The D-Bus property systemd reports the live value in (and takes
    /// absolute values through).
    pub fn dbus_name(self) -> &'static str {
        match self {
            Prop::MemoryMin => "MemoryMin",
            Prop::MemoryLow => "MemoryLow",
            Prop::MemoryHigh => "MemoryHigh",
            Prop::MemoryMax => "MemoryMax",
            Prop::MemorySwapMax => "MemorySwapMax",
            Prop::CpuQuota => "CPUQuotaPerSecUSec",
            Prop::CpuWeight => "CPUWeight",
            Prop::IoWeight => "IOWeight",
            Prop::TasksMax => "TasksMax",
            Prop::AllowedCpus => "AllowedCPUs",
        }
    }

    /// The unit-file directive, which is what an administrator knows it by
    /// (`CPUQuota`, where D-Bus says `CPUQuotaPerSecUSec`): used in logs.
    pub fn directive(self) -> &'static str {
        match self {
            Prop::CpuQuota => "CPUQuota",
            other => other.dbus_name(),
        }
    }

    fn is_memory(self) -> bool {
        matches!(
            self,
            Prop::MemoryMin
                | Prop::MemoryLow
                | Prop::MemoryHigh
                | Prop::MemoryMax
                | Prop::MemorySwapMax
        )
    }
}

impl fmt::Display for Prop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// A value a definition asked for, before it is resolved against the machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Desired {
    /// An absolute amount: bytes, a weight, a task count.
    Amount(u64),
    /// No limit.
    Infinity,
    /// A percentage: of physical memory (memory), of one CPU (`cpu_quota`),
    /// of the system's task limit (`tasks_max`).
    Percent(f64),
    /// A set of CPUs.
    Cpus(BTreeSet<u32>),
    /// `CPUWeight=idle` (sent to systemd as weight 0).
    Idle,
}

/// What the machine is, for resolving percentages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Machine {
    /// Physical memory in bytes.
    pub memory: u64,
    /// The system-wide task limit systemd scales `TasksMax=` percentages by.
    pub tasks: u64,
}

/// How a D-Bus value is encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettingValue {
    /// `t`
    U64(u64),
    /// `u`
    U32(u32),
    /// `ay`
    Bytes(Vec<u8>),
}

/// One `(name, value)` of `SetUnitProperties`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// The D-Bus property name (`MemoryMax`, `MemoryMaxScale`, ...).
    pub name: &'static str,
    /// Its value.
    pub value: SettingValue,
}

/// A resolved desired value: what systemd will report once it is set, and
/// how to set it.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// The property.
    pub prop: Prop,
    /// What systemd reports for it afterwards (bytes, µs per s, weight,
    /// count; [`INFINITY`] for no limit; a CPU bitmask for `AllowedCPUs`).
    pub value: LiveValue,
    /// How to set it.
    pub setting: Setting,
}

/// A value as systemd reports it over D-Bus.
pub type LiveValue = crate::verdict::Live;

/// `percent` of `whole`, as systemd scales it (`UINT32_MAX` = 100%).
fn scale(percent: f64) -> u32 {
    ((percent / 100.0) * f64::from(u32::MAX))
        .round()
        .clamp(0.0, f64::from(u32::MAX)) as u32
}

/// What systemd computes for a `Memory*Scale` value (`physical_memory_scale`):
/// whole pages, rounded down; 0 and 100% exact.
fn scaled_memory(memory: u64, s: u32) -> u64 {
    const PAGE: u64 = 4096;
    match s {
        0 => 0,
        u32::MAX => memory,
        s => ((u128::from(memory / PAGE) * u128::from(s) / u128::from(u32::MAX)) as u64) * PAGE,
    }
}

/// What systemd computes for `TasksMaxScale` (`system_tasks_max_scale`).
fn scaled_tasks(tasks: u64, s: u32) -> u64 {
    ((u128::from(tasks) * u128::from(s)) / u128::from(u32::MAX)) as u64
}

/// The `AllowedCPUs` bitmask: byte i holds CPUs 8i..8i+7, lowest bit first.
pub fn cpu_mask(cpus: &BTreeSet<u32>) -> Vec<u8> {
    let Some(max) = cpus.iter().max() else {
        return Vec::new();
    };
    let mut mask = vec![0u8; *max as usize / 8 + 1];
    for c in cpus {
        mask[*c as usize / 8] |= 1 << (c % 8);
    }
    mask
}

/// The CPUs in an `AllowedCPUs` bitmask.
pub fn cpus_of_mask(mask: &[u8]) -> BTreeSet<u32> {
    let mut out = BTreeSet::new();
    for (i, byte) in mask.iter().enumerate() {
        for bit in 0..8 {
            if byte & (1 << bit) != 0 {
                out.insert(i as u32 * 8 + bit);
            }
        }
    }
    out
}

/// Why a desired value cannot be set on a property.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ResolveError {
    /// `allowed_cpus` got something other than a non-empty CPU list.
    #[error("allowed_cpus needs a list of CPUs")]
    NotCpus,
    /// A CPU list for a numeric property.
    #[error("{0} takes a number, not a CPU list")]
    Cpus(Prop),
    /// `infinity` where there is no such value.
    #[error("{0} has no \"infinity\"")]
    NoInfinity(Prop),
    /// `idle` for anything but `cpu_weight`.
    #[error("{0} has no \"idle\"")]
    NoIdle(Prop),
    /// A percentage outside 0..=100.
    #[error("{0}: {1}% is not between 0% and 100%")]
    Percent(Prop, f64),
    /// `cpu_quota` of zero or less.
    #[error("cpu_quota must be positive")]
    QuotaNotPositive,
    /// A weight outside 1..=10000.
    #[error("{0}: {1} is out of range 1..=10000")]
    Weight(Prop, u64),
    /// A percentage for a weight.
    #[error("{0} takes a weight, not a percentage")]
    WeightPercent(Prop),
    /// Any other mismatch of property and value.
    #[error("{0} cannot be set to {1}")]
    Other(Prop, String),
}

impl Desired {
    /// Resolves the value for `prop` on `machine`.
    pub fn resolve(&self, prop: Prop, machine: Machine) -> Result<Target, ResolveError> {
        use crate::verdict::Live;
        let num = |name: &'static str, v: u64| Setting {
            name,
            value: SettingValue::U64(v),
        };
        let target = |value: Live, setting: Setting| {
            Ok(Target {
                prop,
                value,
                setting,
            })
        };
        match (prop, self) {
            (Prop::AllowedCpus, Desired::Cpus(set)) if !set.is_empty() => target(
                Live::Cpus(set.clone()),
                Setting {
                    name: "AllowedCPUs",
                    value: SettingValue::Bytes(cpu_mask(set)),
                },
            ),
            (Prop::AllowedCpus, _) => Err(ResolveError::NotCpus),
            (_, Desired::Cpus(_)) => Err(ResolveError::Cpus(prop)),
            (p, Desired::Infinity)
                if p.is_memory() || matches!(p, Prop::CpuQuota | Prop::TasksMax) =>
            {
                target(Live::Num(INFINITY), num(p.dbus_name(), INFINITY))
            }
            (p, Desired::Infinity) => Err(ResolveError::NoInfinity(p)),
            (p, Desired::Amount(n)) if p.is_memory() => {
                target(Live::Num(*n), num(p.dbus_name(), *n))
            }
            (p, Desired::Percent(pc)) if p.is_memory() => {
                if !(0.0..=100.0).contains(pc) {
                    return Err(ResolveError::Percent(p, *pc));
                }
                let s = scale(*pc);
                let name = match p {
                    Prop::MemoryMin => "MemoryMinScale",
                    Prop::MemoryLow => "MemoryLowScale",
                    Prop::MemoryHigh => "MemoryHighScale",
                    Prop::MemoryMax => "MemoryMaxScale",
                    _ => "MemorySwapMaxScale",
                };
                target(
                    Live::Num(scaled_memory(machine.memory, s)),
                    Setting {
                        name,
                        value: SettingValue::U32(s),
                    },
                )
            }
            (Prop::CpuQuota, Desired::Percent(_) | Desired::Amount(_)) => {
                // An integer for cpu_quota means percent, as in definitions.
                let pc = match self {
                    Desired::Percent(pc) => *pc,
                    Desired::Amount(n) => *n as f64,
                    _ => 0.0,
                };
                if pc <= 0.0 {
                    return Err(ResolveError::QuotaNotPositive);
                }
                let usec = (pc * 10_000.0).round() as u64;
                target(Live::Num(usec), num("CPUQuotaPerSecUSec", usec))
            }
            (Prop::CpuWeight, Desired::Idle) => target(Live::Num(0), num("CPUWeight", 0)),
            (p, Desired::Idle) => Err(ResolveError::NoIdle(p)),
            (Prop::CpuWeight | Prop::IoWeight, Desired::Amount(n)) => {
                if !(1..=10_000).contains(n) {
                    return Err(ResolveError::Weight(prop, *n));
                }
                target(Live::Num(*n), num(prop.dbus_name(), *n))
            }
            (Prop::CpuWeight | Prop::IoWeight, Desired::Percent(_)) => {
                Err(ResolveError::WeightPercent(prop))
            }
            (Prop::TasksMax, Desired::Amount(n)) => target(Live::Num(*n), num("TasksMax", *n)),
            (Prop::TasksMax, Desired::Percent(pc)) => {
                let s = scale(*pc);
                target(
                    Live::Num(scaled_tasks(machine.tasks, s)),
                    Setting {
                        name: "TasksMaxScale",
                        value: SettingValue::U32(s),
                    },
                )
            }
            (p, d) => Err(ResolveError::Other(p, format!("{d:?}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::Live;

    const M: Machine = Machine {
        memory: 8 << 30,
        tasks: 100_000,
    };

    fn t(prop: Prop, d: Desired) -> Result<(Live, &'static str, SettingValue), String> {
        d.resolve(prop, M)
            .map(|t| (t.value, t.setting.name, t.setting.value))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn conversions_to_systemds_encodings() {
        use SettingValue::*;
        type Case = (
            Prop,
            Desired,
            Result<(Live, &'static str, SettingValue), &'static str>,
        );
        let cases: Vec<Case> = vec![
            (
                Prop::MemoryMax,
                Desired::Amount(512 << 20),
                Ok((Live::Num(512 << 20), "MemoryMax", U64(512 << 20))),
            ),
            (
                Prop::MemoryMax,
                Desired::Infinity,
                Ok((Live::Num(INFINITY), "MemoryMax", U64(INFINITY))),
            ),
            (
                Prop::MemoryHigh,
                Desired::Percent(50.0),
                Ok((Live::Num(4 << 30), "MemoryHighScale", U32(2_147_483_648))),
            ),
            (
                Prop::MemoryHigh,
                Desired::Percent(33.0),
                Ok((
                    Live::Num(2_834_677_760),
                    "MemoryHighScale",
                    U32(1_417_339_207),
                )),
            ),
            (
                Prop::MemoryLow,
                Desired::Percent(0.0),
                Ok((Live::Num(0), "MemoryLowScale", U32(0))),
            ),
            (
                Prop::MemoryMax,
                Desired::Percent(100.0),
                Ok((Live::Num(8 << 30), "MemoryMaxScale", U32(u32::MAX))),
            ),
            (Prop::MemoryMax, Desired::Percent(150.0), Err("not between")),
            (
                Prop::CpuQuota,
                Desired::Percent(150.0),
                Ok((Live::Num(1_500_000), "CPUQuotaPerSecUSec", U64(1_500_000))),
            ),
            (
                Prop::CpuQuota,
                Desired::Percent(12.5),
                Ok((Live::Num(125_000), "CPUQuotaPerSecUSec", U64(125_000))),
            ),
            (
                Prop::CpuQuota,
                Desired::Amount(50),
                Ok((Live::Num(500_000), "CPUQuotaPerSecUSec", U64(500_000))),
            ),
            (
                Prop::CpuQuota,
                Desired::Infinity,
                Ok((Live::Num(INFINITY), "CPUQuotaPerSecUSec", U64(INFINITY))),
            ),
            (Prop::CpuQuota, Desired::Percent(0.0), Err("positive")),
            (
                Prop::CpuWeight,
                Desired::Amount(200),
                Ok((Live::Num(200), "CPUWeight", U64(200))),
            ),
            (Prop::IoWeight, Desired::Amount(0), Err("out of range")),
            (Prop::CpuWeight, Desired::Infinity, Err("no \"infinity\"")),
            (
                Prop::TasksMax,
                Desired::Amount(512),
                Ok((Live::Num(512), "TasksMax", U64(512))),
            ),
            (
                Prop::TasksMax,
                Desired::Percent(10.0),
                Ok((Live::Num(10_000), "TasksMaxScale", U32(429_496_730))),
            ),
            (
                Prop::TasksMax,
                Desired::Infinity,
                Ok((Live::Num(INFINITY), "TasksMax", U64(INFINITY))),
            ),
            (
                Prop::AllowedCpus,
                Desired::Cpus([0, 1, 9].into()),
                Ok((
                    Live::Cpus([0, 1, 9].into()),
                    "AllowedCPUs",
                    Bytes(vec![0b11, 0b10]),
                )),
            ),
            (Prop::AllowedCpus, Desired::Amount(3), Err("list of CPUs")),
            (
                Prop::MemoryMax,
                Desired::Cpus([1].into()),
                Err("not a CPU list"),
            ),
        ];
        for (prop, d, want) in cases {
            let got = t(prop, d.clone());
            match (&got, &want) {
                (Ok(g), Ok(w)) => assert_eq!((&g.0, g.1, &g.2), (&w.0, w.1, &w.2), "{prop} {d:?}"),
                (Err(g), Err(w)) => assert!(g.contains(w), "{prop} {d:?}: {g}"),
                _ => panic!("{prop} {d:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn cpu_masks_round_trip() {
        for set in [
            BTreeSet::from([0u32]),
            BTreeSet::from([1, 2, 3, 15, 16]),
            BTreeSet::new(),
        ] {
            assert_eq!(cpus_of_mask(&cpu_mask(&set)), set);
        }
        assert_eq!(cpu_mask(&BTreeSet::from([7u32, 8])), vec![0x80, 0x01]);
    }

    #[test]
    fn keys_round_trip() {
        for p in Prop::ALL {
            assert_eq!(Prop::from_key(p.key()), Some(p));
        }
        assert_eq!(Prop::from_key("memory"), None);
    }
}
