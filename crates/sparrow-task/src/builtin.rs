//! Built-in plugins: run in-process (no fork), with the same interface as
//! a plugin directory: parameters in, an [`Outcome`] (status, state map,
//! output) out. An installed plugin of the same name shadows a built-in
//! (see [`crate::search`]).

use std::time::Instant;

use serde_json::Value;

use crate::Outcome;

/// A plugin implemented in this crate.
pub struct Builtin {
    /// The plugin name (`http-check`).
    pub name: &'static str,
    /// One line for `task list`.
    pub description: &'static str,
    /// Reads local state only: allowed at generation time.
    pub read_only: bool,
    /// Runs it.
    pub run: fn(&Call) -> Outcome,
}

/// One call of a built-in.
pub struct Call<'a> {
    /// The caller's description (`task_run(desc, ..)`).
    pub desc: &'a str,
    /// The caller's parameters, a map.
    pub params: &'a Value,
    /// The call must end by then.
    pub deadline: Option<Instant>,
}

/// Every built-in plugin.
pub fn all() -> &'static [Builtin] {
    &[]
}

/// The built-in called `name`.
pub fn find(name: &str) -> Option<&'static Builtin> {
    all().iter().find(|b| b.name == name)
}
