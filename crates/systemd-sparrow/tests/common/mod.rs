//! Helpers shared by the lab test binaries.

use std::time::Duration;

use sparrow_lab::Output;

/// The binary under test: CLI, generator and daemon in one.
pub const SPARROW: &str = env!("CARGO_BIN_EXE_systemd-sparrow");

/// Standard output of a command that must succeed.
pub fn ok(o: Output) -> String {
    o.expect_ok()
}

/// Seconds.
pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}
