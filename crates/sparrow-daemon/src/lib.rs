//! systemd-sparrowd: keeps running services right-sized.
//!
//! The daemon loads the same definitions as the generator, and for every
//! unit with a `monitor.resources` closure or a dynamic resource property it
//! re-evaluates the closures on the unit's interval while the unit is
//! active, decides with `sparrow-policy` whether each value should change
//! now, and applies changes through `SetUnitProperties(runtime=true)`.
//!
//! Topology (see ARCHITECTURE.md): event sources (the schedule, systemd's
//! D-Bus signals, control requests, the evaluator pool) feed one bounded
//! channel; the core turns events into decisions; D-Bus work runs in
//! spawned tasks that report back as events, so nothing on the event path
//! waits on systemd or on a closure.
#![deny(missing_docs)]

pub mod actuator;
pub mod alert;
pub mod clock;
pub mod config;
pub mod control;
pub mod core;
#[cfg(test)]
mod doubles;
pub mod dropin;
pub mod eval;
pub mod notify;
mod private;
pub mod probe;
pub mod run;
pub mod slice;
pub mod spec;
pub mod state;
pub mod systemd;
pub mod watch;
pub mod worker;

pub use crate::run::{run, Config};

/// Logs to the journal when it is there (structured fields such as
/// `UNIT=`), else to stderr.
pub fn init_logging() {
    use tracing_subscriber::prelude::*;
    let journal = std::path::Path::new("/run/systemd/journal/socket")
        .exists()
        .then(|| {
            tracing_journald::layer().ok().map(|l| {
                l.with_field_prefix(None)
                    .with_syslog_identifier("systemd-sparrowd".into())
            })
        });
    match journal.flatten() {
        Some(layer) => tracing_subscriber::registry().with(layer).init(),
        None => tracing_subscriber::registry()
            .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
            .init(),
    }
}

/// The daemon's `main`: logging, a single-threaded runtime, [`run`].
pub fn main() -> std::process::ExitCode {
    init_logging();
    // The loop thread: it takes the kernel's wake-ups and systemd's replies.
    slice::apply();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("systemd-sparrowd: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(Config::from_env())) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            std::process::ExitCode::FAILURE
        }
    }
}
