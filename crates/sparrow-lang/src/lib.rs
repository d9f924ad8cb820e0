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

mod closure;
mod diag;
mod engine;
mod host;
pub mod keys;
pub mod library;
mod lower;
pub mod schema;
pub mod value;

pub use closure::Closure;
pub use diag::{Diagnostic, ScriptError, Severity};
pub use engine::{
    function_names, Loaded, Loader, ModuleSource, ModuleText, NoModules, MAX_OPERATIONS,
    SYSTEMD_PLUGINS, WALL_CLOCK,
};
pub use host::{Facts, FixedHost, Host, Psi, PsiLine, RuntimeHost};
pub use lower::{Install, UnitDecl, UnitKind, HEADER};
