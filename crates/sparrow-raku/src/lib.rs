//! The Raku bridge: definitions written in Sparrow6's Raku spelling
//! (`*.raku` in the search path, `#!raku` / `#!sparrow6` shebang units)
//! become native definitions.
//!
//! One `raku` process per run translates every file ([`translate`]): it
//! runs `raku/bridge.raku`, the project's `Sparrow6::DSL` shim, which
//! evaluates each file with `task-run`, `os()`, `.GB`, the helper subs and
//! `%*ENV` in scope and answers its declarations as JSON (subs by
//! reference, regexes by source). [`rhai_text`] turns them into the
//! native language's text, line for line where the Raku file declared
//! them, so that the same checks, the same renderer and diagnostics with
//! the Raku file's line numbers follow. Translations are cached by content
//! ([`cache`]): a run over unchanged files starts no Raku at all.
//!
//! Containment is the evaluator's: the Raku process runs under
//! `sparrow_isolate` (address-space limit, `no_new_privs`, death with its
//! parent), each file has a time limit, and a file that kills, hangs or
//! breaks the process is reported alone while a new process takes the rest.
#![deny(missing_docs)]

pub mod bridge;
pub mod cache;
pub mod resident;
pub mod rhai_text;

pub use bridge::{find_raku, translate, Input, Options, Stats, Translation};

/// The shim and request loop, run as `raku -e` (no file to install, no
/// module precompilation on a read-only `/usr`).
pub const BRIDGE: &str = include_str!("../raku/bridge.raku");
