//! The clock edge: the run loop reads the time once per event and hands it
//! to the core, which never reads a clock itself.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::core::Now;

/// Where the time comes from.
pub trait Clock: Send + Sync {
    /// Now: monotonic milliseconds for decisions, wall-clock for display.
    fn now(&self) -> Now;
}

/// The machine's clocks: `CLOCK_MONOTONIC` (since boot, never set back, the
/// same for every process, so dwell times survive a restart of the daemon)
/// and the wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

/// `CLOCK_MONOTONIC` in µs (the same for every thread and process: kernel
/// wake-ups are stamped with it and compared later).
pub fn mono_us() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime fills the struct; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000
}

impl Clock for SystemClock {
    fn now(&self) -> Now {
        Now {
            mono: mono_us() / 1_000,
            wall: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
        }
    }
}
