//! The systemd unit-file model.
//!
//! This crate knows how a unit file is spelled and nothing about where units
//! come from: no definition language, no file system, no D-Bus.
//!
//! - [`UnitName`] validates names the way systemd does (`foo.service`,
//!   `foo@.service`, `foo@bar.timer`).
//! - [`UnitFile`] / [`Section`] build a unit from typed [`Value`]s; every value
//!   is validated and escaped when it is pushed, so a rendered unit can never
//!   gain a line, a key or a section that was not pushed (newlines and control
//!   characters are errors, `%` and `$` are escaped where the value is literal).
//! - [`parse`] reads unit syntax with systemd's rules. The renderer is tested
//!   against it; the generator's tests and `diff` read units with it.
//!
//! We write our own renderer because no maintained crate renders systemd
//! syntax with its escaping rules (specifiers, `$` expansion, C-style quoting
//! in command lines), and getting those rules exactly right is the point.
#![deny(missing_docs)]

mod error;
mod escape;
mod name;
pub mod parse;
mod render;

pub use error::{NameError, ValueError};
pub use escape::{escape_path, PathError};
pub use name::{UnitName, UnitType};
pub use render::{Section, UnitFile, Value, Word};
