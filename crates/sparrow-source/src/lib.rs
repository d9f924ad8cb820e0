//! The one source loader, shared by the generator, the CLI, the daemon and
//! the hook runner: where definitions are found ([`find`], [`paths`],
//! [`scan`]), how they are read ([`read`]: regular files only, the owner
//! rule), how `import` finds `lib/` modules ([`modules`]), how each kind of
//! source is loaded ([`load`]), and how files are written ([`atomic`]).
//! Nothing else in the project lists a directory of definitions or writes a
//! file another way.
//!
//! It runs no user code itself: [`load::load_text`] hands a text to a
//! `sparrow_lang::Loader`, which callers run inside an evaluator process.
#![deny(missing_docs)]

pub mod atomic;
pub mod load;
pub mod modules;
pub mod paths;
pub mod read;
pub mod scan;

pub use load::{load_text, SharedHost};
pub use modules::LibCache;
pub use paths::Mode;
pub use read::{read_listed, read_source, Owners, ReadError, MAX_SOURCE};
pub use scan::{Refused, Source, SourceKind};

/// Every source on the search path of `mode` (definitions first, then
/// shebang units among systemd's unit files), and what was found but
/// cannot be used. `env` reads the environment (`SYSTEMD_SPARROW_PATH`,
/// `SYSTEMD_SPARROW_UNIT_ROOT`, `XDG_*`).
pub fn find(mode: Mode, env: &dyn Fn(&str) -> Option<String>) -> (Vec<Source>, Vec<Refused>) {
    let (mut sources, mut refused) = scan::definitions(&paths::search_path(mode, env));
    let (units, odd) = scan::shebang_units(&paths::unit_root(mode, env));
    sources.extend(units);
    refused.extend(odd);
    (sources, refused)
}
