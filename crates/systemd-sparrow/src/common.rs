//! What every command needs: sources and a host.

use std::path::PathBuf;
use std::sync::Arc;

use sparrow_generator::paths::{self, Mode};
use sparrow_generator::scan::{self, Refused, Source};
use sparrow_generator::{generate, Options, Report};
use sparrow_host::RealHost;

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
        let env = |k: &str| std::env::var(k).ok();
        let mut s = scan::definitions(&paths::search_path(mode, &env));
        s.extend(scan::shebang_units(&paths::unit_root(mode, &env)));
        (s, Vec::new())
    } else {
        scan::from_paths(paths)
    }
}

/// Evaluates sources as the generator would (owner checks aside: the user
/// named these files), with the facts override applied.
pub fn evaluate(paths: &[PathBuf], mode: Mode) -> anyhow::Result<Report> {
    let (sources, refused) = sources(paths, mode);
    let (host, facts_error) = RealHost::from_env();
    if let Some(e) = facts_error {
        anyhow::bail!("facts override: {e}");
    }
    let opts = Options {
        check_owner: false,
        threads: Options::default_threads(),
    };
    let mut report = generate(&sources, Arc::new(host), &opts);
    report.refused.extend(refused);
    Ok(report)
}

/// Prints refusals and skipped sources in one line each, to stderr.
pub fn print_refusals(report: &Report) {
    for r in &report.refused {
        eprintln!("{}: {}", r.path.display(), r.reason);
    }
}
