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

pub mod entry;
pub mod log;
pub mod paths;
pub mod scan;
pub mod write;

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

use sparrow_lang::{Diagnostic, Host, Install, Loaded, Loader, ModuleSource, ModuleText};
use sparrow_unit::UnitName;

use scan::{Refused, Source, SourceKind};

/// How to generate.
pub struct Options {
    /// Refuse sources and modules not owned by root or writable by others
    /// (the generator does this when it runs as root).
    pub check_owner: bool,
    /// Worker threads for evaluating and writing (1 = no threads).
    pub threads: usize,
}

impl Options {
    /// Threads worth using on this machine: its CPUs, at most 4.
    pub fn default_threads() -> usize {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(4)
    }
}

/// A unit ready to write: plain data, so it can cross threads.
#[derive(Debug, Clone)]
pub struct Generated {
    /// Its name.
    pub name: UnitName,
    /// The unit file's text.
    pub text: String,
    /// Symlinks to make.
    pub install: Install,
    /// Whether it overrides a file among systemd's own units (a shebang
    /// unit), so belongs in the generator's early directory.
    pub early: bool,
    /// The source it came from.
    pub source: PathBuf,
    /// Line of the declaration.
    pub line: usize,
}

/// What [`generate`] produced.
#[derive(Default)]
pub struct Report {
    /// Units from every usable source, in source order.
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

/// User modules from `DIR/lib/NAME.sparrow`, read once per thread.
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
        let result = match scan::read_source(&path, self.check_owner) {
            Ok(text) => Ok(Some(ModuleText { path, text })),
            Err(e) if e.not_found => Ok(None),
            Err(e) => Err(format!("{}: {}", path.display(), e.reason)),
        };
        self.cache
            .borrow_mut()
            .insert(name.to_string(), result.clone());
        result
    }
}

/// What one source became.
enum Outcome {
    Units(Vec<Generated>, Vec<Diagnostic>),
    Failed(Vec<Diagnostic>),
    Refused(Refused),
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
/// per loader (thread), reused for every source it loads.
#[derive(Default)]
pub struct LibCache {
    libs: HashMap<PathBuf, Rc<DirModules>>,
}

impl LibCache {
    fn for_source(&mut self, path: &Path, check_owner: bool) -> Rc<DirModules> {
        let dir = path.parent().unwrap_or(Path::new("/")).to_path_buf();
        self.libs
            .entry(dir.clone())
            .or_insert_with(|| {
                Rc::new(DirModules {
                    lib: dir.join("lib"),
                    check_owner,
                    cache: RefCell::default(),
                })
            })
            .clone()
    }
}

/// Evaluates one source whose text was already read: the one way sources
/// are loaded, for the generator and for the daemon (whose loader has
/// runtime functions).
pub fn load_text(
    loader: &Loader,
    libs: &mut LibCache,
    src: &Source,
    text: &str,
    check_owner: bool,
) -> Result<Loaded, Refused> {
    let refuse = |reason: String| Refused {
        path: src.path.clone(),
        reason,
    };
    let lib = libs.for_source(&src.path, check_owner);
    match src.kind {
        SourceKind::RakuShebang => Err(refuse(
            "is a #!raku/#!sparrow6 unit: the Raku bridge is not part of this version, so it was not translated".into(),
        )),
        SourceKind::Shebang => {
            let base = src.path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            let name = UnitName::parse(base).map_err(|e| refuse(format!("the file name is not a unit name: {e}")))?;
            Ok(loader.load_unit_file(&src.path, text, &name, lib))
        }
        SourceKind::Definition => Ok(loader.load(&src.path, text, lib)),
    }
}

/// Reads and evaluates one source (see [`load_text`]).
pub fn load_source(
    loader: &Loader,
    libs: &mut LibCache,
    src: &Source,
    check_owner: bool,
) -> Result<Loaded, Refused> {
    if src.kind == SourceKind::RakuShebang {
        return load_text(loader, libs, src, "", check_owner);
    }
    let text = scan::read_source(&src.path, check_owner).map_err(|e| Refused {
        path: src.path.clone(),
        reason: e.reason,
    })?;
    load_text(loader, libs, src, &text, check_owner)
}

/// Evaluates a run of sources with one loader (one Rhai engine).
fn evaluate(
    sources: &[Source],
    host: Arc<dyn Host + Send + Sync>,
    check_owner: bool,
) -> Vec<(PathBuf, Outcome)> {
    let loader = Loader::new(Rc::new(SharedHost(host)));
    let mut libs = LibCache::default();
    let mut out = Vec::with_capacity(sources.len());
    for src in sources {
        let loaded = match load_source(&loader, &mut libs, src, check_owner) {
            Ok(l) => l,
            Err(r) => {
                out.push((src.path.clone(), Outcome::Refused(r)));
                continue;
            }
        };
        let outcome = if loaded.has_errors() {
            Outcome::Failed(loaded.diagnostics)
        } else {
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
        };
        out.push((src.path.clone(), outcome));
    }
    out
}

/// Evaluates every source (on `opts.threads` threads, each with its own
/// engine) and merges the results in source order. A source that declares
/// a unit an earlier one already declared is skipped with an error naming
/// both.
pub fn generate(sources: &[Source], host: Arc<dyn Host + Send + Sync>, opts: &Options) -> Report {
    // Below a few dozen files a thread costs more than it saves.
    let threads = opts.threads.clamp(1, (sources.len() / 32).max(1));
    let chunk = sources.len().div_ceil(threads).max(1);
    let outcomes: Vec<(PathBuf, Outcome)> = if threads == 1 {
        evaluate(sources, host, opts.check_owner)
    } else {
        std::thread::scope(|s| {
            let handles: Vec<_> = sources
                .chunks(chunk)
                .map(|c| {
                    let host = host.clone();
                    s.spawn(move || evaluate(c, host, opts.check_owner))
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        })
    };

    let mut report = Report::default();
    let mut owners: HashMap<UnitName, PathBuf> = HashMap::new();
    for (path, outcome) in outcomes {
        match outcome {
            Outcome::Refused(r) => report.refused.push(r),
            Outcome::Failed(diags) => {
                report.diagnostics.extend(diags);
                report.skipped.push(path);
            }
            Outcome::Units(units, diags) => {
                report.diagnostics.extend(diags);
                if let Some((u, first)) = units
                    .iter()
                    .find_map(|u| owners.get(&u.name).map(|p| (u, p)))
                {
                    report.diagnostics.push(Diagnostic {
                        severity: sparrow_lang::Severity::Error,
                        file: path.clone(),
                        line: u.line,
                        col: 1,
                        len: 1,
                        message: format!("{} is already declared by {}", u.name, first.display()),
                        help: Some(
                            "each unit may come from one definition; the first one found wins"
                                .into(),
                        ),
                    });
                    report.skipped.push(path);
                    continue;
                }
                for u in units {
                    owners.insert(u.name.clone(), path.clone());
                    report.units.push(u);
                }
            }
        }
    }
    report
}
