//! The generator's entry point, shared by `systemd-sparrow-generator` and the
//! CLI (which runs it when invoked under a generator's name).
//!
//! Exit status: 0 when every definition was used, 1 when something was
//! skipped (and logged), 2 on bad arguments.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sparrow_host::RealHost;

use crate::log::{Level, Logger};
use crate::paths::{self, Mode};
use crate::{generate, scan, write, Options};

/// Whether a program name is one the generator is installed under.
pub fn is_generator_name(argv0: &Path) -> bool {
    argv0
        .file_name()
        .is_some_and(|n| n == "systemd-sparrow-generator" || n == "systemd-sparrow-user-generator")
}

/// Runs the generator with `args` (argv[0] first); never panics.
pub fn main(args: Vec<OsString>) -> u8 {
    let logger = Logger::from_env();
    match std::panic::catch_unwind(|| run(&logger, args)) {
        Ok(code) => code,
        Err(_) => {
            logger.log(
                Level::Error,
                "internal error (panic); no units were written by this run",
            );
            1
        }
    }
}

fn run(logger: &Logger, args: Vec<OsString>) -> u8 {
    let mut args = args.into_iter();
    let argv0 = args.next().map(PathBuf::from).unwrap_or_default();
    let mut mode = if argv0
        .file_name()
        .is_some_and(|n| n == "systemd-sparrow-user-generator")
    {
        Mode::User
    } else {
        Mode::System
    };
    let mut dirs = Vec::new();
    for a in args {
        if a == "--user" {
            mode = Mode::User;
        } else {
            dirs.push(PathBuf::from(a));
        }
    }
    if dirs.is_empty() || dirs.len() > 3 {
        logger.log(
            Level::Error,
            "usage: systemd-sparrow-generator normal-dir [early-dir late-dir]",
        );
        return 2;
    }
    let normal = dirs[0].clone();
    let early = dirs.get(1).cloned().unwrap_or_else(|| normal.clone());

    let env = |k: &str| std::env::var(k).ok();
    let mut ok = true;
    let (host, facts_error) = RealHost::from_env();
    if let Some(e) = facts_error {
        logger.log(
            Level::Error,
            &format!("facts override: {e}; using this machine's facts"),
        );
        ok = false;
    }
    let mut sources = scan::definitions(&paths::search_path(mode, &env));
    sources.extend(scan::shebang_units(&paths::unit_root(mode, &env)));
    let opts = Options {
        check_owner: scan::is_root(),
        threads: Options::default_threads(),
    };
    let report = generate(&sources, Arc::new(host), &opts);

    for d in report
        .diagnostics
        .iter()
        .filter(|d| d.severity >= sparrow_lang::Severity::Warning)
    {
        let level = if d.is_error() {
            Level::Error
        } else {
            Level::Warning
        };
        logger.log(level, &d.to_string());
    }
    for p in &report.skipped {
        logger.log(
            Level::Error,
            &format!("{}: skipped, no units written from it", p.display()),
        );
    }
    for r in &report.refused {
        logger.log(Level::Error, &format!("{}: {}", r.path.display(), r.reason));
    }
    ok &= report.all_ok();

    let (notes, errors) = write::write_units(&report.units, &normal, &early, opts.threads);
    for n in notes {
        logger.log(Level::Warning, &n);
    }
    for e in &errors {
        logger.log(
            Level::Error,
            &format!("cannot write {}: {}", e.path.display(), e.error),
        );
    }
    ok &= errors.is_empty();
    u8::from(!ok)
}
