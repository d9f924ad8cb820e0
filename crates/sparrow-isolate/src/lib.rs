//! The containment boundary: definitions are evaluated in a child process.
//!
//! Rhai's limits stop most runaway scripts, but not all: a native function
//! can recurse through deeply nested data until the stack overflows, or
//! allocate until `malloc` fails, and Rust aborts the whole process in
//! both cases (`catch_unwind` cannot help). So the code that runs user
//! definitions lives in a child process (the same binary, re-executed under
//! the name [`ARG0`]) with an address-space limit, and the parent talks to
//! it over pipes, one JSON message per line (a reply may bring raw bytes
//! ahead of its line: see [`Channel::send_with`]). When the child dies or stops
//! answering in time, the parent knows which request it was working on,
//! reports that one, and starts a new child for the rest.
//!
//! - Parent side: [`Worker`] (spawn, send, receive with a deadline, kill,
//!   and a [`Failure`] that says why the child is gone).
//! - Child side: [`Channel`] (receive requests, send replies) and [`role`]
//!   (is this process a child, and which one).
//!
//! This crate knows nothing about definitions: messages are any serde type.
#![deny(missing_docs)]

mod child;
mod worker;

pub use child::{role, Channel};
pub use worker::{Death, Failure, Limits, Worker};

/// `argv[0]` of a child: entry points check it (with [`role`]) before
/// anything else and serve requests instead of doing their usual job.
pub const ARG0: &str = "sparrow-evaluator";

/// The descriptor a child finds its progress file on.
pub const PROGRESS_FD: i32 = 3;

/// Starts a reply line that announces an attachment: `@LEN\n`, then LEN
/// raw bytes, then the reply's JSON line. A JSON text never starts with it.
pub(crate) const ATTACHMENT: char = '@';

/// The longest message either side accepts (a definition's units, or a
/// batch of definitions' texts).
pub const MAX_MESSAGE: usize = 64 << 20;

/// How long to wait for a child working under a soft time limit `soft`
/// (which its own code enforces where it can) before killing it: half as
/// long again, for the time spent where it cannot (inside one native call).
pub fn hard_limit(soft: std::time::Duration) -> std::time::Duration {
    soft * 3 / 2
}
