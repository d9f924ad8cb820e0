//! `systemd-sparrow`: render, check and compare definitions.

mod cli;
mod cmd;
mod common;
mod examples;
mod pretty;
mod udiff;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Installed under a generator's name, this binary is the generator.
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if argv
        .first()
        .is_some_and(|a| sparrow_generator::entry::is_generator_name(std::path::Path::new(a)))
    {
        return ExitCode::from(sparrow_generator::entry::main(argv));
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
