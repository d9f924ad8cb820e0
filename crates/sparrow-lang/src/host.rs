//! What a definition may read about the machine at generation time.
//!
//! The language never reads the machine itself: the caller hands it a
//! [`Host`]. The real one lives in `sparrow-host`; tests use [`FixedHost`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Facts about the host, as the generation-time functions return them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Facts {
    /// os-release `ID` (`debian`, `ubuntu`, `fedora`).
    pub os: String,
    /// os-release `VERSION_ID` (`12`), empty when absent (e.g. testing).
    pub os_version: String,
    /// The kernel's host name.
    pub hostname: String,
    /// Machine architecture as `uname -m` prints it (`x86_64`, `aarch64`).
    pub arch: String,
    /// Kernel release as `uname -r` prints it.
    pub kernel: String,
    /// `none`, or the VM/container technology as `systemd-detect-virt` names it.
    pub virtualization: String,
    /// Physical memory in bytes (`MemTotal`).
    pub memory_total: u64,
    /// CPUs this process may run on (`nproc`).
    pub cpu_count: u64,
}

/// The machine as a definition sees it at generation time: only reads.
pub trait Host {
    /// The host's facts.
    fn facts(&self) -> &Facts;
    /// An environment variable of the generator's process.
    fn env(&self, name: &str) -> Option<String>;
    /// Whether a path exists (follows symlinks).
    fn file_exists(&self, path: &str) -> bool;
}

/// A host whose every answer is fixed: for tests and for rendering a
/// definition as another machine would.
#[derive(Debug, Clone)]
pub struct FixedHost {
    /// The facts to report.
    pub facts: Facts,
    /// The environment to report.
    pub env: BTreeMap<String, String>,
    /// Paths that exist.
    pub files: Vec<String>,
}

impl FixedHost {
    /// A small Debian 12 VM with 4 GiB and 2 CPUs, no environment, no files.
    pub fn debian() -> FixedHost {
        FixedHost {
            facts: Facts {
                os: "debian".into(),
                os_version: "12".into(),
                hostname: "testhost".into(),
                arch: "x86_64".into(),
                kernel: "6.1.0-test".into(),
                virtualization: "kvm".into(),
                memory_total: 4 << 30,
                cpu_count: 2,
            },
            env: BTreeMap::new(),
            files: Vec::new(),
        }
    }
}

impl Host for FixedHost {
    fn facts(&self) -> &Facts {
        &self.facts
    }
    fn env(&self, name: &str) -> Option<String> {
        self.env.get(name).cloned()
    }
    fn file_exists(&self, path: &str) -> bool {
        self.files.iter().any(|f| f == path)
    }
}
