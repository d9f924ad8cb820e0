//! Module resolution for `import "name"`: `lib/NAME.sparrow` beside the
//! definition, read with the same rules and owner rule as definitions, once
//! per loader; the built-in library is the language's own fallback.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use sparrow_lang::{Diagnostic, ModuleSource, ModuleText, Severity};

use crate::read::{read_source, Owners};

/// User modules from `DIR/lib/NAME.sparrow`, read once per evaluator.
pub(crate) struct DirModules {
    lib: PathBuf,
    owners: Owners,
    cache: RefCell<HashMap<String, Result<Option<ModuleText>, String>>>,
    /// Owner-rule warnings not yet reported ([`Owners::Warn`]).
    pub(crate) warnings: RefCell<Vec<Diagnostic>>,
}

impl ModuleSource for DirModules {
    fn module(&self, name: &str) -> Result<Option<ModuleText>, String> {
        if let Some(hit) = self.cache.borrow().get(name) {
            return hit.clone();
        }
        let path = self.lib.join(format!("{name}.sparrow"));
        let result = match read_source(&path, self.owners) {
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

pub(crate) fn warning(path: &Path, message: String) -> Diagnostic {
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

/// Modules from `lib/` beside each definition, cached per directory: one
/// per loader, reused for every source it loads.
#[derive(Default)]
pub struct LibCache {
    libs: HashMap<PathBuf, Rc<DirModules>>,
}

impl LibCache {
    pub(crate) fn for_source(&mut self, path: &Path, owners: Owners) -> Rc<DirModules> {
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
