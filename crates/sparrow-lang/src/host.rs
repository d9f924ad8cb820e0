//! What a definition may read about the machine at generation time.
//!
//! The language never reads the machine itself: the caller hands it a
//! [`Host`]. The real one lives in `sparrow-host`; tests use [`FixedHost`].

use std::collections::BTreeMap;
use std::path::PathBuf;

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
    /// The built-in `feature-flags` plugin, the one task a definition may
    /// run at generation time: the JSON object in `file` (default
    /// `/etc/systemd/sparrow/flags.json`); a missing file is no flags.
    fn feature_flags(&self, file: Option<&str>) -> Result<serde_json::Value, String>;
}

/// Where the generated `ExecStartPre=` lines find `systemd-sparrow`.
pub const HOOK_RUNNER_ENV: &str = "SYSTEMD_SPARROW_HOOK_RUNNER";
/// The candidates, in order: the Debian package's place, then the README's
/// manual install; the first that exists is used.
pub const HOOK_RUNNERS: &[&str] = &["/usr/bin/systemd-sparrow", "/usr/local/bin/systemd-sparrow"];

/// The absolute path the generated hook lines call: `SYSTEMD_SPARROW_HOOK_RUNNER`
/// when set to a plain absolute path, else the first of [`HOOK_RUNNERS`] that
/// exists, else the package's place (the start then fails with systemd's
/// "No such file or directory" for that path, which names it).
pub fn hook_runner(host: &dyn Host) -> String {
    if let Some(p) = host.env(HOOK_RUNNER_ENV) {
        if plain_path(&p) {
            return p;
        }
    }
    HOOK_RUNNERS
        .iter()
        .find(|p| host.file_exists(p))
        .unwrap_or(&HOOK_RUNNERS[0])
        .to_string()
}

/// An absolute path of characters that need no quoting or escaping in a
/// command line (so a `-` prefix and `%n` can be written around it).
pub fn plain_path(p: &str) -> bool {
    p.starts_with('/')
        && p.len() < 1024
        && p.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'.' | b'_' | b'-' | b'+'))
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
    /// What `feature-flags` reports (whatever file it is asked for).
    pub flags: serde_json::Map<String, serde_json::Value>,
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
            flags: serde_json::Map::new(),
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
    fn feature_flags(&self, _file: Option<&str>) -> Result<serde_json::Value, String> {
        Ok(serde_json::Value::Object(self.flags.clone()))
    }
}

/// One line of a PSI file (`some` or `full`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PsiLine {
    /// Share of the last 10 s with a stall, in percent.
    pub avg10: f64,
    /// Over 60 s.
    pub avg60: f64,
    /// Over 300 s.
    pub avg300: f64,
    /// Total stall time in microseconds.
    pub total: u64,
}

/// Pressure stall information for one resource.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Psi {
    /// Some task stalled.
    pub some: PsiLine,
    /// All non-idle tasks stalled (absent for CPU on older kernels).
    pub full: Option<PsiLine>,
}

/// The machine as a closure sees it while the service runs: reads only,
/// each quick (no network, no D-Bus round trip inside a call).
pub trait RuntimeHost: Send + Sync {
    /// `MemAvailable` in bytes.
    fn available_memory(&self) -> Result<u64, String>;
    /// `MemFree` in bytes.
    fn free_memory(&self) -> Result<u64, String>;
    /// 1-minute load average as a percentage of all CPUs.
    fn load(&self) -> Result<f64, String>;
    /// System-wide pressure for `memory`, `cpu` or `io`.
    fn psi(&self, resource: &str) -> Result<Psi, String>;
    /// Memory the unit's cgroup uses now, in bytes.
    fn service_memory(&self, unit: &str) -> Result<u64, String>;
    /// The unit's ActiveState (`active`, `inactive`, `failed`, ...; `unknown`).
    fn service_state(&self, unit: &str) -> String;
    /// Established TCP connections to a local port.
    fn connections(&self, port: u16) -> Result<u64, String>;
    /// A small regular file's text.
    fn read_file(&self, path: &str) -> Result<String, String>;
    /// The last `bytes` bytes of a regular file, as text (a character cut
    /// at the start is dropped). Hosts without files keep this default.
    fn read_file_tail(&self, path: &str, bytes: u64) -> Result<String, String> {
        let _ = bytes;
        Err(format!("{path}: this host reads no files"))
    }
    /// A message from a closure about `unit`.
    fn log(&self, unit: &str, message: &str);
    /// `alert(message, severity)` from a closure about `unit`
    /// (`severity` is `info`, `warning` or `critical`, checked already).
    /// Hosts that deliver alerts override this; the default logs it.
    fn alert(&self, unit: &str, message: &str, severity: &str) {
        self.log(unit, &format!("ALERT ({severity}): {message}"));
    }
    /// Runs a task plugin (`task_run(desc, plugin, params)` in a closure
    /// about `unit`); it must end by `deadline`. Returns the task's state
    /// with `__data__` (exit code, stdout, failed checks).
    ///
    /// Hosts without tasks (test doubles of other features) keep this
    /// default, which says so.
    fn task_run(
        &self,
        unit: &str,
        desc: &str,
        plugin: &str,
        params: serde_json::Value,
        deadline: std::time::Instant,
    ) -> Result<serde_json::Value, TaskFailure> {
        let _ = (unit, params, deadline);
        Err(TaskFailure {
            exit_code: 1,
            message: format!("task_run({desc:?}, {plugin:?}): this host runs no tasks"),
            stderr_tail: Vec::new(),
        })
    }

    /// Calls a sub of a Raku definition (`raku_sub(file, desc, keys,
    /// args)` in a translated closure). While it runs, `native(name, args)`
    /// runs one of this language's runtime functions for it (its
    /// `get-available-memory()`, `task-run`, ...). Hosts without Raku keep
    /// this default, which says so.
    fn raku_call(
        &self,
        file: &str,
        desc: &str,
        keys: &[String],
        args: Vec<serde_json::Value>,
        native: &mut RakuNative<'_>,
    ) -> Result<serde_json::Value, String> {
        let _ = (desc, keys, args, native);
        Err(format!("{file}: this host runs no Raku subs"))
    }
}

/// A runtime function, called by name for a Raku sub.
pub type RakuNative<'a> =
    dyn FnMut(&str, Vec<serde_json::Value>) -> Result<serde_json::Value, String> + 'a;

/// A task that failed (or could not run), as `task_run` throws it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskFailure {
    /// Its exit code (Sparrow6's: the task's own, 2 for failed checks, 101
    /// for a failed hook, 124 for a timeout; 1 when it could not start).
    pub exit_code: i32,
    /// What happened, one line.
    pub message: String,
    /// The last lines of its stderr.
    pub stderr_tail: Vec<String>,
}
/// Where `import "name"` finds user modules.
pub trait ModuleSource {
    /// The user module `name` (from `lib/` beside the definition), `Ok(None)`
    /// when there is none, or an error message (unreadable, unsafe owner).
    fn module(&self, name: &str) -> Result<Option<ModuleText>, String>;
}

/// A module's text and where it came from.
#[derive(Debug, Clone)]
pub struct ModuleText {
    /// Its path, used in diagnostics.
    pub path: PathBuf,
    /// Its source.
    pub text: String,
}

/// No user modules: only the built-in library.
pub struct NoModules;

impl ModuleSource for NoModules {
    fn module(&self, _name: &str) -> Result<Option<ModuleText>, String> {
        Ok(None)
    }
}
