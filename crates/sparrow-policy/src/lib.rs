//! Deciding live resource changes, without doing any.
//!
//! - [`Prop`]: the resource properties the daemon may change live, with
//!   their definition key, systemd directive and D-Bus encoding.
//! - [`Desired`] → [`Target`]: a value a closure asked for, resolved against
//!   the machine into what systemd will report (for comparison) and the
//!   [`Setting`] that sets it (percentages through the `*Scale` properties).
//! - [`judge`]: hysteresis. A change is applied only when it differs from
//!   the live value by more than the property's threshold, and, when it
//!   shrinks the service, only after `min_dwell` since the last change of
//!   that property; growth is not delayed (starving a service is worse than
//!   over-provisioning it). [`RateLimit`] caps changes per minute per unit
//!   and across the daemon.
//! - [`health`]: a health check's results → healthy/unhealthy edges and
//!   when to probe next; the restart budget (a sliding window).
//! - [`kernel`]: PSI trigger lines (with the kernel's rules and the rounding
//!   an unprivileged daemon needs), pressure and `memory.events` readings
//!   and their deltas, coalescing of watched-file changes.
//!
//! **Boundary:** no I/O, no clock, no D-Bus types. Time is milliseconds
//! since the epoch, passed in; settings are plain values the daemon encodes.
#![deny(missing_docs)]

pub mod health;
pub mod kernel;
mod prop;
mod rate;
mod verdict;

pub use prop::{
    cpu_mask, cpus_of_mask, Desired, Machine, Prop, ResolveError, Setting, SettingValue, Target,
    INFINITY,
};
pub use rate::RateLimit;
pub use verdict::{judge, Live, PropHistory, Threshold, Verdict};

/// Milliseconds since the Unix epoch.
pub type Millis = u64;
