//! What every command needs: sources and a host.

use sparrow_generator::{generate_report, Isolation, Options, Report};
use sparrow_host::RealHost;
use sparrow_lang::Host;
use sparrow_source::read::is_root;
use sparrow_source::{scan, Mode, Owners, Refused, Source};
use std::path::PathBuf;

/// The mode for a `--user` flag.
pub fn mode(user: bool) -> Mode {
    if user {
        Mode::User
    } else {
        Mode::System
    }
}

/// Sources named on the command line, or the search path's definitions and
/// shebang units when none are named.
pub fn sources(paths: &[PathBuf], mode: Mode) -> (Vec<Source>, Vec<Refused>) {
    if paths.is_empty() {
        sparrow_source::find(mode, &|k: &str| std::env::var(k).ok())
    } else {
        scan::from_paths(paths)
    }
}

/// Evaluates sources as the generator would, in evaluator processes, with
/// the facts override applied and the owner rule `owners`.
pub fn evaluate(paths: &[PathBuf], mode: Mode, owners: Owners) -> anyhow::Result<Report> {
    let (sources, refused) = sources(paths, mode);
    let (host, facts_error) = RealHost::from_env();
    if let Some(e) = facts_error {
        anyhow::bail!("facts override: {e}");
    }
    // The CLI keeps what it translated, so that the next boot's generator
    // starts no Raku for unchanged files.
    let raku = sparrow_raku::Options::for_writers(&|k: &str| std::env::var(k).ok());
    let opts = Options {
        owners,
        workers: Options::default_workers(),
        isolation: Isolation::this_binary(),
        raku,
    };
    let mut report = generate_report(&sources, host.facts(), &opts);
    report.refused.extend(refused);
    Ok(report)
}

/// The owner rule of the generator that would read these files: the system
/// generator runs as root and refuses files others could write; `check`
/// run by a user reports them as warnings (it cannot chown); a user
/// generator has no rule.
pub fn owners(mode: Mode, strict: bool) -> Owners {
    match mode {
        Mode::User => Owners::Any,
        Mode::System if strict || is_root() => Owners::Root,
        Mode::System => Owners::Warn,
    }
}

/// Prints refusals and skipped sources in one line each, to stderr.
pub fn print_refusals(report: &Report) {
    for r in &report.refused {
        eprintln!("{}: {}", r.path.display(), r.reason);
    }
}

/// One diagnostic as a JSON object (`--json`): file, line, col (1-based,
/// 0 when unknown), severity, message, hint.
pub fn diagnostic_json(d: &sparrow_lang::Diagnostic) -> serde_json::Value {
    serde_json::json!({
        "file": d.file,
        "line": d.line,
        "col": d.col,
        "severity": d.severity.to_string(),
        "message": d.message,
        "hint": d.help,
    })
}

/// A refused source as an error diagnostic without a position.
fn refusal_diagnostic(r: &Refused) -> sparrow_lang::Diagnostic {
    sparrow_lang::Diagnostic {
        severity: sparrow_lang::Severity::Error,
        file: r.path.clone(),
        line: 0,
        col: 0,
        len: 1,
        message: r.reason.clone(),
        help: None,
    }
}

/// Diagnostics on stderr as JSON Lines: one object per line, so a reader
/// can stream them while results go to stdout; refused sources are errors
/// without a position.
pub fn print_json_diagnostics<'a>(
    ds: impl IntoIterator<Item = &'a sparrow_lang::Diagnostic>,
    refused: &[Refused],
) {
    for d in ds {
        eprintln!("{}", diagnostic_json(d));
    }
    for r in refused {
        eprintln!("{}", diagnostic_json(&refusal_diagnostic(r)));
    }
}

/// A generated unit or drop-in as JSON (`render --json`, `check --json`).
pub fn unit_json(g: &sparrow_generator::Generated, with_text: bool) -> serde_json::Value {
    let mut v = serde_json::json!({
        "name": g.name.as_str(),
        "path": g.rel_path(),
        "dropin": g.dropin.is_some(),
        "early": g.early,
        "source": g.source,
        "line": g.line,
        "install": g.install,
    });
    if with_text {
        v["text"] = serde_json::Value::String(g.text.clone());
    }
    v
}
