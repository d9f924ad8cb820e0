//! The systemd generator for systemd-sparrow definitions.
//!
//! [`generate`] turns found sources into validated units and hands them,
//! in source order, to a [`Sink`]; [`write::Writer`] puts them on disk.
//! The binary (`systemd-sparrow-generator`) and the CLI's `render`,
//! `check` and `diff` are thin layers over these, so all of them see the
//! same units.
//!
//! Contract (systemd.generator(7)): no network, no D-Bus, no waiting; a
//! broken definition is logged with file:line:col and skipped while every
//! other unit is still written, even one whose evaluation crashes: user
//! code runs in evaluator processes ([`Isolation::Processes`]).
#![deny(missing_docs)]

pub mod entry;
pub mod eval;
pub mod log;
mod raku;
mod supervise;
pub mod worker;
pub mod write;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sparrow_lang::{Diagnostic, Facts, Install};
use sparrow_unit::UnitName;

pub use eval::Outcome;
pub use supervise::HARD_LIMIT;

use sparrow_source::{Owners, Refused, Source};

/// Where definitions are evaluated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Isolation {
    /// In evaluator processes started from this executable (which must
    /// call [`worker::serve`] when `sparrow_isolate::role` says so): a
    /// definition that crashes or overruns takes only its process down.
    Processes(PathBuf),
    /// In this thread. For tests of the pure parts only: a crash here is
    /// a crash of the caller.
    InProcess,
}

impl Isolation {
    /// Evaluator processes from the running binary.
    pub fn this_binary() -> Isolation {
        // /proc/self/exe names the running file even after an upgrade replaced its path.
        Isolation::Processes(PathBuf::from("/proc/self/exe"))
    }
}

/// How to generate.
#[derive(Debug, Clone)]
pub struct Options {
    /// Who may own definitions and modules.
    pub owners: Owners,
    /// Evaluator processes to run at once.
    pub workers: usize,
    /// Where definitions are evaluated.
    pub isolation: Isolation,
    /// How Raku sources are translated.
    pub raku: sparrow_raku::Options,
}

impl Options {
    /// Evaluators worth running on this machine: its CPUs, at most 4.
    pub fn default_workers() -> usize {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(4)
    }
}

/// A unit ready to write: plain data, so it can cross threads and processes.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
    /// For a drop-in, its file name in `NAME.d/` (`50-sparrow-x.conf`).
    #[serde(default)]
    pub dropin: Option<String>,
}

impl Generated {
    /// Where it is written, relative to the output directory:
    /// `NAME`, or `NAME.d/FILE` for a drop-in.
    pub fn rel_path(&self) -> String {
        match &self.dropin {
            Some(d) => format!("{}.d/{d}", self.name),
            None => self.name.to_string(),
        }
    }
}

/// Where [`generate`] puts what it finds, in source order.
pub trait Sink {
    /// A unit to write.
    fn unit(&mut self, unit: Generated);
    /// A diagnostic (errors, warnings and notes).
    fn diagnostic(&mut self, d: Diagnostic);
    /// A source that was evaluated but has errors: nothing from it is used.
    fn skipped(&mut self, source: &Path);
    /// A source that was not evaluated.
    fn refused(&mut self, r: Refused);
}

/// Everything [`generate`] produced, collected (for the CLI).
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

impl Sink for Report {
    fn unit(&mut self, unit: Generated) {
        self.units.push(unit);
    }
    fn diagnostic(&mut self, d: Diagnostic) {
        self.diagnostics.push(d);
    }
    fn skipped(&mut self, source: &Path) {
        self.skipped.push(source.to_path_buf());
    }
    fn refused(&mut self, r: Refused) {
        self.refused.push(r);
    }
}

/// Evaluates every source and passes the results to `sink` in source
/// order. A source that declares a unit an earlier one already declared is
/// skipped with an error naming both.
pub fn generate(sources: &[Source], facts: &Facts, opts: &Options, sink: &mut dyn Sink) {
    let mut owners: Writers = HashMap::new();
    // Raku sources first, all through one Raku process; those that cannot
    // be evaluated are reported before the rest.
    let (translated, mut pre) = raku::prepare(sources, facts, opts);
    let mut todo: Vec<Source> = Vec::with_capacity(sources.len());
    let mut index: Vec<usize> = Vec::with_capacity(sources.len());
    for (i, src) in translated.into_iter().enumerate() {
        match pre[i].take() {
            Some(outcome) => merge(&sources[i].path, outcome, &mut owners, sink),
            None => {
                todo.push(src);
                index.push(i);
            }
        }
    }
    let mut on = |j: usize, mut outcome: Outcome| {
        let src = &sources[index[j]];
        if src.kind.is_raku() {
            raku::line_only(&mut outcome, &src.path);
        }
        merge(&src.path, outcome, &mut owners, sink)
    };
    match &opts.isolation {
        Isolation::InProcess => {
            let mut ev = eval::Evaluator::new(facts.clone(), opts.owners);
            for (j, src) in todo.iter().enumerate() {
                on(j, ev.source(src));
            }
        }
        Isolation::Processes(exe) => {
            let init = worker::Request::Init {
                facts: facts.clone(),
                owners: opts.owners,
            };
            supervise::run(&todo, &init, exe, opts.workers, &mut on);
        }
    }
}

/// Collects everything [`generate`] produces.
pub fn generate_report(sources: &[Source], facts: &Facts, opts: &Options) -> Report {
    let mut report = Report::default();
    generate(sources, facts, opts, &mut report);
    report
}

/// Which source wrote each unit (or drop-in: one unit may have a drop-in
/// from each definition, beside the unit itself).
type Writers = HashMap<(UnitName, Option<String>), PathBuf>;

fn owner_key(u: &Generated) -> (UnitName, Option<String>) {
    (u.name.clone(), u.dropin.clone())
}

fn merge(path: &Path, outcome: Outcome, owners: &mut Writers, sink: &mut dyn Sink) {
    match outcome {
        Outcome::Refused(r) => sink.refused(r),
        Outcome::Failed(diags) => {
            for d in diags {
                sink.diagnostic(d);
            }
            sink.skipped(path);
        }
        Outcome::Units(units, diags) => {
            for d in diags {
                sink.diagnostic(d);
            }
            if let Some((u, first)) = units
                .iter()
                .find_map(|u| owners.get(&owner_key(u)).map(|p| (u, p)))
            {
                sink.diagnostic(Diagnostic {
                    severity: sparrow_lang::Severity::Error,
                    file: path.to_path_buf(),
                    line: u.line,
                    col: 1,
                    len: 1,
                    message: format!(
                        "{} is already declared by {}",
                        u.rel_path(),
                        first.display()
                    ),
                    help: Some(
                        "each unit may come from one definition; the first one found wins".into(),
                    ),
                });
                sink.skipped(path);
                return;
            }
            for u in units {
                owners.insert(owner_key(&u), path.to_path_buf());
                sink.unit(u);
            }
        }
    }
}
