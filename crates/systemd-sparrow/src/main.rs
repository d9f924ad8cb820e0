//! `systemd-sparrow`: render, check and compare definitions; talk to the
//! daemon. Installed under another name it is that program: the generator
//! (`systemd-sparrow-generator`, `systemd-sparrow-user-generator`) or the
//! daemon (`systemd-sparrowd`).

mod cli;
mod cmd;
mod common;
mod deps;
mod examples;
mod pretty;
mod udiff;

use std::path::Path;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // Re-executed as an evaluator process (see sparrow_isolate): serve, nothing else.
    if let Some(role) = sparrow_isolate::role(&argv) {
        return ExitCode::from(match role.as_str() {
            sparrow_daemon::worker::ROLE => sparrow_daemon::worker::serve(),
            sparrow_hook::ROLE => sparrow_hook::serve(),
            _ => sparrow_generator::entry::serve_role(&argv).unwrap_or(2),
        });
    }
    let name = argv
        .first()
        .map(Path::new)
        .and_then(Path::file_name)
        .unwrap_or_default();
    if sparrow_generator::entry::is_generator_name(Path::new(name)) {
        return ExitCode::from(sparrow_generator::entry::main(argv));
    }
    if name == "systemd-sparrowd" {
        return sparrow_daemon::main();
    }
    let args = cli::Cli::parse();
    match cmd::run(args) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("systemd-sparrow: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// As in the generator's binary (which this one also is, under its name):
/// no transparent huge pages for mimalloc's arenas (zeroing 2 MiB on first
/// touch costs short-lived processes more than it saves), set before the
/// first allocation and inherited by evaluator processes. Best effort.
extern "C" fn no_huge_pages() {
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
}

#[used]
#[link_section = ".init_array"]
static NO_HUGE_PAGES: extern "C" fn() = no_huge_pages;

// mimalloc: the generator measured 15% less time than glibc's malloc; the
// daemon's health probes, a thousand a second, spent a fifth of their CPU
// in glibc's malloc (perf, benches/health.rs).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
