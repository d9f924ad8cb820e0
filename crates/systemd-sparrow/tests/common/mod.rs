//! Helpers shared by the lab test binaries.

use std::time::Duration;

use sparrow_lab::{Lab, Output};

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

/// `systemd-sparrow status [UNIT] --json` in the lab; an empty `unit` means all.
#[allow(dead_code)] // not every test binary asks the daemon
pub fn status_json(lab: &Lab, unit: &str) -> serde_json::Value {
    let mut argv = vec!["/opt/sparrow/bin/systemd-sparrow", "status", "--json"];
    if !unit.is_empty() {
        argv.push(unit);
    }
    let out = ok(lab.exec(&argv).unwrap());
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// `unit`'s entry of `status --json`.
#[allow(dead_code)] // not every test binary asks the daemon
pub fn unit_status(lab: &Lab, unit: &str) -> serde_json::Value {
    status_json(lab, unit)["status"]["units"][0].clone()
}
