//! Evaluating sources into plain data: what one source became.
//!
//! This is the code that runs user definitions, so in the generator and
//! the CLI it runs inside an evaluator process (see `supervise`); the
//! results cross back as [`Outcome`]s. The daemon's evaluator processes
//! use [`load_text`] with a runtime loader.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sparrow_lang::{Diagnostic, Facts, Host, Loaded, Loader, ModuleSource, ModuleText, Severity};
use sparrow_unit::UnitName;

use crate::scan::{self, Owners, Refused, Source, SourceKind};
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

/// User modules from `DIR/lib/NAME.sparrow`, read once per evaluator.
struct DirModules {
    lib: PathBuf,
    owners: Owners,
    cache: RefCell<HashMap<String, Result<Option<ModuleText>, String>>>,
    /// Owner-rule warnings not yet reported ([`Owners::Warn`]).
    warnings: RefCell<Vec<Diagnostic>>,
}

impl ModuleSource for DirModules {
    fn module(&self, name: &str) -> Result<Option<ModuleText>, String> {
        if let Some(hit) = self.cache.borrow().get(name) {
            return hit.clone();
        }
        let path = self.lib.join(format!("{name}.sparrow"));
        let result = match scan::read_source(&path, self.owners) {
            Ok(t) => {
                if let Some(w) = t.warning {
                    self.warnings.borrow_mut().push(warning(&path, w));
                }
                Ok(Some(ModuleText { path, text: t.text }))
            }
            Err(e) if e.not_found => Ok(None),
            Err(e) => Err(format!("{}: {}", path.display(), e.reason)),
        };
        self.cache
            .borrow_mut()
            .insert(name.to_string(), result.clone());
        result
    }
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

/// Lets an `Arc` host serve a thread-local loader, which wants an `Rc`.
pub struct SharedHost(pub Arc<dyn Host + Send + Sync>);

impl Host for SharedHost {
    fn facts(&self) -> &sparrow_lang::Facts {
        self.0.facts()
    }
    fn env(&self, name: &str) -> Option<String> {
        self.0.env(name)
    }
    fn file_exists(&self, path: &str) -> bool {
        self.0.file_exists(path)
    }
}

/// Modules from `lib/` beside each definition, cached per directory: one
/// per loader, reused for every source it loads.
#[derive(Default)]
pub struct LibCache {
    libs: HashMap<PathBuf, Rc<DirModules>>,
}

impl LibCache {
    fn for_source(&mut self, path: &Path, owners: Owners) -> Rc<DirModules> {
        let dir = path.parent().unwrap_or(Path::new("/")).to_path_buf();
        self.libs
            .entry(dir.clone())
            .or_insert_with(|| {
                Rc::new(DirModules {
                    lib: dir.join("lib"),
                    owners,
                    cache: RefCell::default(),
                    warnings: RefCell::default(),
                })
            })
            .clone()
    }
}

/// Evaluates one source whose text was already read: the one way sources
/// are loaded, for the generator and for the daemon (whose loader has
/// runtime functions). `owners` applies to the `lib/` modules it imports.
pub fn load_text(
    loader: &Loader,
    libs: &mut LibCache,
    src: &Source,
    text: &str,
    owners: Owners,
) -> Result<Loaded, Refused> {
    let refuse = |reason: String| Refused {
        path: src.path.clone(),
        reason,
    };
    let lib = libs.for_source(&src.path, owners);
    let mut loaded = match src.kind {
        SourceKind::RakuShebang => return Err(refuse(
            "is a #!raku/#!sparrow6 unit: the Raku bridge is not part of this version, so it was not translated".into(),
        )),
        SourceKind::Shebang => {
            let base = src.path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            let name = UnitName::parse(base).map_err(|e| refuse(format!("the file name is not a unit name: {e}")))?;
            loader.load_unit_file(&src.path, text, &name, lib.clone())
        }
        SourceKind::Definition => loader.load(&src.path, text, lib.clone()),
    };
    loaded.diagnostics.append(&mut lib.warnings.borrow_mut());
    Ok(loaded)
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
        let (text, warn) = if src.kind == SourceKind::RakuShebang {
            (String::new(), None)
        } else {
            match scan::read_source(&src.path, self.owners) {
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
                install: u.install,
                early: src.kind == SourceKind::Shebang,
                source: src.path.clone(),
                line: u.line,
            })
            .collect();
        Outcome::Units(units, loaded.diagnostics)
    }
}
