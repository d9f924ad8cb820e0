//! Evaluating sources into plain data: what one source became.
//!
//! This is the code that runs user definitions, so in the generator and
//! the CLI it runs inside an evaluator process (see `supervise`); the
//! results cross back as [`Outcome`]s.

use std::path::Path;
use std::rc::Rc;

use serde::{Deserialize, Serialize};
use sparrow_lang::{Diagnostic, Facts, Loader, Severity};
use sparrow_source::{load_text, read_listed, LibCache, Owners, Refused, Source, SourceKind};

use crate::Generated;

/// What one source became.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Outcome {
    /// Units to write, with notes and warnings.
    Units(Vec<Generated>, Vec<Diagnostic>),
    /// Errors: nothing from this source is written.
    Failed(Vec<Diagnostic>),
    /// The source was not evaluated (unreadable, unsafe, unsupported).
    Refused(Refused),
}

/// Evaluates sources one by one with one loader (one Rhai engine).
pub struct Evaluator {
    loader: Loader,
    libs: LibCache,
    owners: Owners,
}

impl Evaluator {
    /// An evaluator for generation time on a host with `facts`.
    pub fn new(facts: Facts, owners: Owners) -> Evaluator {
        let host = sparrow_host::RealHost::from_facts(facts);
        Evaluator {
            loader: Loader::new(Rc::new(host)),
            libs: LibCache::default(),
            owners,
        }
    }

    /// Reads and evaluates one source.
    pub fn source(&mut self, src: &Source) -> Outcome {
        // A Raku source was read and translated by the bridge already.
        let (text, warn) = if src.kind.is_raku() {
            (String::new(), None)
        } else {
            match read_listed(&src.path, self.owners, src.listed_regular) {
                Ok(t) => (t.text, t.warning),
                Err(e) => {
                    return Outcome::Refused(Refused {
                        path: src.path.clone(),
                        reason: e.reason,
                    })
                }
            }
        };
        let mut loaded = match load_text(&self.loader, &mut self.libs, src, &text, self.owners) {
            Ok(l) => l,
            Err(r) => return Outcome::Refused(r),
        };
        if let Some(w) = warn {
            loaded.diagnostics.insert(0, warning(&src.path, w));
        }
        if loaded.has_errors() {
            return Outcome::Failed(loaded.diagnostics);
        }
        let units = loaded
            .units
            .into_iter()
            .map(|u| Generated {
                text: u.file.render(),
                name: u.name,
                install: placed_in(src, u.install),
                early: matches!(src.kind, SourceKind::Shebang | SourceKind::RakuShebang),
                source: src.path.clone(),
                line: u.line,
                dropin: u.dropin,
            })
            .collect();
        Outcome::Units(units, loaded.diagnostics)
    }
}

/// A shebang unit's place says what wants it: systemd ignores regular
/// files in `TARGET.wants/` (only symlinks there are dependencies), so a
/// unit written straight into one gets the symlink beside its translation,
/// as if it said `wanted_by: TARGET` (likewise `.requires/`, `.upholds/`).
fn placed_in(src: &Source, mut install: sparrow_lang::Install) -> sparrow_lang::Install {
    if !matches!(src.kind, SourceKind::Shebang | SourceKind::RakuShebang) {
        return install;
    }
    let Some(dir) = src
        .path
        .parent()
        .and_then(|d| d.file_name())
        .and_then(|d| d.to_str())
    else {
        return install;
    };
    let list = if let Some(t) = dir.strip_suffix(".wants") {
        Some((t, &mut install.wanted_by))
    } else if let Some(t) = dir.strip_suffix(".requires") {
        Some((t, &mut install.required_by))
    } else {
        dir.strip_suffix(".upholds")
            .map(|t| (t, &mut install.upheld_by))
    };
    if let Some((target, list)) = list {
        if !target.is_empty() && !list.iter().any(|t| t == target) {
            list.push(target.to_string());
        }
    }
    install
}

fn warning(path: &Path, message: String) -> Diagnostic {
    Diagnostic {
        severity: Severity::Warning,
        file: path.to_path_buf(),
        line: 0,
        col: 0,
        len: 1,
        message,
        help: None,
    }
}
