//! The language's limits and the names of its functions: shared by the
//! engine (which enforces and registers them) and diagnostics (which name
//! them in messages and hints). Depends on nothing else in the crate.

use std::time::Duration;

/// Operations one evaluation (a definition, a module, a closure) may take.
pub const MAX_OPERATIONS: u64 = 2_000_000;
/// How deeply service families may expand one another.
pub(crate) const MAX_FAMILY_DEPTH: u32 = 8;
/// Wall-clock time one evaluation may take.
pub const WALL_CLOCK: Duration = Duration::from_secs(2);

/// Functions a definition can call at generation time (for "did you mean"
/// hints, together with the runtime ones in `RUNTIME_ONLY`).
pub(crate) const GENERATION_FUNCTIONS: &[&str] = &[
    "service",
    "timer",
    "task_run",
    "os",
    "os_version",
    "hostname",
    "arch",
    "kernel",
    "virtualization",
    "env",
    "memory_total",
    "cpu_count",
    "file_exists",
    "parse_size",
    "raw",
    "family_params",
];

/// Every function a definition can call.
pub fn function_names() -> impl Iterator<Item = &'static str> {
    GENERATION_FUNCTIONS
        .iter()
        .copied()
        .chain(RUNTIME_ONLY.iter().map(|(n, _)| *n))
}

/// Runtime-only functions and their arities: at generation time they raise
/// a clear error instead of "function not found"; with a [`RuntimeHost`]
/// the first nine are real and the rest say they are not available yet.
pub(crate) const RUNTIME_ONLY: &[(&str, usize)] = &[
    ("available_memory", 0),
    ("free_memory", 0),
    ("load", 0),
    ("psi", 1),
    ("service_memory", 1),
    ("service_state", 1),
    ("connections", 1),
    ("http_get", 1),
    ("read_file", 1),
    ("read_file_tail", 2),
    ("matches", 2),
    ("journal", 2),
    ("alert", 2),
    ("log", 1),
];

/// `task_run` plugins that declare a plain service (Sparrow6 spelling).
pub const SYSTEMD_PLUGINS: &[&str] = &[
    "systemd",
    "systemd-dynamic",
    "systemd-with-health",
    "systemd-pressure-aware",
    "systemd-adaptive",
    "systemd-pattern-monitor",
];

/// The runtime functions the daemon provides (the rest of `RUNTIME_ONLY`
/// comes with later parts of runtime mode).
pub(crate) const RUNTIME_PROVIDED: &[&str] = &[
    "available_memory",
    "free_memory",
    "load",
    "psi",
    "service_memory",
    "service_state",
    "connections",
    "read_file",
    "read_file_tail",
    "matches",
    "alert",
    "log",
];
