//! `systemd-sparrow`: render, check and compare definitions.

mod cli;
mod cmd;
mod common;
mod pretty;
mod udiff;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cmd::run(args) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("systemd-sparrow: {e:#}");
            ExitCode::from(2)
        }
    }
}
