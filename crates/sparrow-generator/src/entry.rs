//! The generator's entry point, shared by `systemd-sparrow-generator` and the
//! CLI (which runs it when invoked under a generator's name).
//!
//! Exit status: 0 when every definition was used, 1 when something was
//! skipped (and logged), 2 on bad arguments.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use sparrow_host::RealHost;

use sparrow_lang::{Diagnostic, Host, Severity};

use crate::log::{Level, Logger};
use crate::{generate, write, Generated, Isolation, Options, Sink};
use sparrow_source::Refused;
use sparrow_source::{paths::Mode, Owners};

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
                "internal error (panic); units after the failing one were not written by this run",
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
    let (sources, refused) = sparrow_source::find(mode, &env);
    for r in &refused {
        logger.log(Level::Error, &format!("{}: {}", r.path.display(), r.reason));
    }
    ok &= refused.is_empty();
    let opts = Options {
        owners: Owners::for_generator(),
        workers: Options::default_workers(),
        isolation: Isolation::this_binary(),
        // The generator reads the translation cache and never writes it.
        raku: sparrow_raku::Options::for_generator(&env),
    };
    let mut writer = match write::Writer::open(&normal, &early) {
        Ok(w) => w,
        Err(e) => {
            logger.log(
                Level::Error,
                &format!("cannot open {}: {}", e.path.display(), e.error),
            );
            return 1;
        }
    };
    // Units are written as they arrive, so memory does not grow with their number.
    let mut sink = WriteSink {
        logger,
        writer: &mut writer,
        ok: true,
    };
    generate(&sources, host.facts(), &opts, &mut sink);
    ok &= sink.ok;
    u8::from(!ok)
}

/// Writes each unit as it comes and logs everything else.
struct WriteSink<'a> {
    logger: &'a Logger,
    writer: &'a mut write::Writer,
    ok: bool,
}

impl Sink for WriteSink<'_> {
    fn unit(&mut self, unit: Generated) {
        match self.writer.write(&unit) {
            Ok(notes) => {
                for n in notes {
                    self.logger.log(Level::Warning, &n);
                }
            }
            Err(e) => {
                self.logger.log(
                    Level::Error,
                    &format!("cannot write {}: {}", e.path.display(), e.error),
                );
                self.ok = false;
            }
        }
    }
    fn diagnostic(&mut self, d: Diagnostic) {
        let level = match d.severity {
            Severity::Error => Level::Error,
            Severity::Warning => Level::Warning,
            Severity::Note => return,
        };
        self.logger.log(level, &d.to_string());
    }
    fn skipped(&mut self, source: &Path) {
        self.logger.log(
            Level::Error,
            &format!("{}: skipped, no units written from it", source.display()),
        );
        self.ok = false;
    }
    fn refused(&mut self, r: Refused) {
        self.logger
            .log(Level::Error, &format!("{}: {}", r.path.display(), r.reason));
        self.ok = false;
    }
}

/// Serves as an evaluator process when started as one (see
/// `sparrow_isolate::role`); `None` when this process is not one.
pub fn serve_role(argv: &[OsString]) -> Option<u8> {
    let role = sparrow_isolate::role(argv)?;
    Some(if role == crate::worker::ROLE {
        crate::worker::serve()
    } else {
        eprintln!("sparrow-evaluator: unknown role {role:?}");
        2
    })
}
