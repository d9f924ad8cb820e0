//! The systemd-sparrow definition language.
//!
//! A definition is a Rhai script that declares units (`service(..)`,
//! `timer(..)`, `task_run(..)`). This crate evaluates it in a sandbox with the
//! host's facts, checks every key against the vocabulary in [`keys`], and
//! lowers each declaration to a [`sparrow_unit::UnitFile`] plus what the
//! generator and the daemon need ([`UnitDecl`]).
//!
//! **Boundary:** no I/O. Facts and environment come through [`Host`], module
//! sources through [`ModuleSource`]; writing files is the generator's job.
#![deny(missing_docs)]

mod checks;
mod closure;
mod declare;
mod diag;
mod engine;
mod families;
mod host;
mod json;
pub mod keys;
pub mod library;
mod limits;
mod lower;
mod modules;
mod names;
pub use names::edit_distance;
mod natives;
pub mod resource;
pub mod runtime;
pub mod schema;
pub mod sequence_text;
mod shapes;
mod state;
mod statics;
pub mod value;

pub use closure::Closure;
pub use diag::{Diagnostic, ScriptError, Severity};
pub use engine::{CallError, Loaded, Loader};
pub use host::{
    hook_runner, plain_path, Facts, FixedHost, Host, ModuleSource, ModuleText, NoModules, Psi,
    PsiLine, RakuNative, RuntimeHost, TaskFailure, HOOK_RUNNERS, HOOK_RUNNER_ENV,
};
/// JSON to and from script values (task parameters, hook contexts).
pub use json::{from_json, to_json};
pub use limits::{function_names, MAX_OPERATIONS, SYSTEMD_PLUGINS, WALL_CLOCK};
pub use lower::{Install, UnitDecl, UnitKind, DROPIN_FROM, DROPIN_PREFIX, HEADER};
