//! The systemd generator for systemd-sparrow definitions.
//!
//! [`generate`] turns found sources into validated units, in memory;
//! [`write::write_unit`] puts them on disk. The binary
//! (`systemd-sparrow-generator`) and the CLI's `render` and `diff` are thin
//! layers over these two, so all of them see the same units.
//!
//! Contract (systemd.generator(7)): no network, no D-Bus, no waiting; a
//! broken definition is logged with file:line:col and skipped while every
//! other unit is still written.
#![deny(missing_docs)]

pub mod log;
pub mod paths;
pub mod scan;
pub mod write;

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use sparrow_lang::{Diagnostic, Host, Loader, ModuleSource, ModuleText, UnitDecl};
use sparrow_unit::UnitName;

use scan::{Refused, Source, SourceKind};

/// How to generate.
pub struct Options {
    /// Refuse sources and modules not owned by root or writable by others
    /// (the generator does this when it runs as root).
    pub check_owner: bool,
}

/// A unit ready to write.
pub struct Generated {
    /// The unit.
    pub unit: UnitDecl,
    /// Whether it overrides a file among systemd's own units (a shebang
    /// unit), so belongs in the generator's early directory.
    pub early: bool,
}

/// What [`generate`] produced.
#[derive(Default)]
pub struct Report {
    /// Units from every usable source.
    pub units: Vec<Generated>,
    /// Diagnostics from every source, errors included.
    pub diagnostics: Vec<Diagnostic>,
    /// Sources that were skipped because of errors.
    pub skipped: Vec<PathBuf>,
    /// Sources refused before evaluation (unreadable, unsafe, unsupported).
    pub refused: Vec<Refused>,
}

impl Report {
    /// Whether everything found was used.
    pub fn all_ok(&self) -> bool {
        self.skipped.is_empty() && self.refused.is_empty()
    }
}

/// User modules from `DIR/lib/NAME.sparrow`, read once per process.
struct DirModules {
    lib: PathBuf,
    check_owner: bool,
    cache: RefCell<HashMap<String, Result<Option<ModuleText>, String>>>,
}

impl ModuleSource for DirModules {
    fn module(&self, name: &str) -> Result<Option<ModuleText>, String> {
        if let Some(hit) = self.cache.borrow().get(name) {
            return hit.clone();
        }
        let path = self.lib.join(format!("{name}.sparrow"));
        let result = match std::fs::read_to_string(&path) {
            Ok(text) => match self
                .check_owner
                .then(|| scan::check_owner(&path))
                .transpose()
            {
                Ok(_) => Ok(Some(ModuleText { path, text })),
                Err(e) => Err(format!("{}: {e}", path.display())),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("{}: {e}", path.display())),
        };
        self.cache
            .borrow_mut()
            .insert(name.to_string(), result.clone());
        result
    }
}

/// Evaluates every source. Later sources that declare a unit an earlier
/// one already declared are skipped with an error naming both.
pub fn generate(sources: &[Source], host: Rc<dyn Host>, opts: &Options) -> Report {
    let loader = Loader::new(host);
    let mut report = Report::default();
    let mut libs: HashMap<PathBuf, Rc<DirModules>> = HashMap::new();
    let mut owners: HashMap<UnitName, PathBuf> = HashMap::new();
    for src in sources {
        let refuse = |report: &mut Report, reason: String| {
            report.refused.push(Refused {
                path: src.path.clone(),
                reason,
            });
        };
        if src.kind == SourceKind::RakuShebang {
            refuse(&mut report, "is a #!raku/#!sparrow6 unit: the Raku bridge is not part of this version, so it was not translated".into());
            continue;
        }
        if opts.check_owner {
            if let Err(reason) = scan::check_owner(&src.path) {
                refuse(&mut report, reason);
                continue;
            }
        }
        let text = match std::fs::read_to_string(&src.path) {
            Ok(t) => t,
            Err(e) => {
                refuse(&mut report, format!("cannot read: {e}"));
                continue;
            }
        };
        let dir = src.path.parent().unwrap_or(Path::new("/")).to_path_buf();
        let lib = libs
            .entry(dir.clone())
            .or_insert_with(|| {
                Rc::new(DirModules {
                    lib: dir.join("lib"),
                    check_owner: opts.check_owner,
                    cache: RefCell::default(),
                })
            })
            .clone();
        let loaded = match src.kind {
            SourceKind::Shebang => {
                let base = src
                    .path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or_default();
                match UnitName::parse(base) {
                    Ok(name) => loader.load_unit_file(&src.path, &text, &name, lib),
                    Err(e) => {
                        refuse(
                            &mut report,
                            format!("the file name is not a unit name: {e}"),
                        );
                        continue;
                    }
                }
            }
            _ => loader.load(&src.path, &text, lib),
        };
        let failed = loaded.has_errors();
        report.diagnostics.extend(loaded.diagnostics);
        if failed {
            report.skipped.push(src.path.clone());
            continue;
        }
        let clash = loaded
            .units
            .iter()
            .find_map(|u| owners.get(&u.name).map(|p| (u, p)));
        if let Some((u, first)) = clash {
            report.diagnostics.push(Diagnostic {
                severity: sparrow_lang::Severity::Error,
                file: src.path.clone(),
                line: u.line,
                col: 1,
                len: 1,
                message: format!("{} is already declared by {}", u.name, first.display()),
                help: Some(
                    "each unit may come from one definition; the first one found wins".into(),
                ),
            });
            report.skipped.push(src.path.clone());
            continue;
        }
        for unit in loaded.units {
            owners.insert(unit.name.clone(), src.path.clone());
            report.units.push(Generated {
                unit,
                early: src.kind == SourceKind::Shebang,
            });
        }
    }
    report
}
