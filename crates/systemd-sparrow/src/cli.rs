//! The command line, declared with clap.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Programmable systemd services: definitions in, native units out.
#[derive(Parser, Debug)]
#[command(name = "systemd-sparrow", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Render definitions to unit files (stdout, or --output DIR).
    Render {
        /// Definition files or directories; default: the search path.
        paths: Vec<PathBuf>,
        /// Write units and their [Install] symlinks here instead of printing.
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Use the user search path.
        #[arg(long)]
        user: bool,
    },
    /// Check definitions and explain every problem; exit 1 on errors.
    Check {
        /// Definition files or directories; default: the search path.
        paths: Vec<PathBuf>,
        /// Also run `systemd-analyze verify` over the rendered units.
        #[arg(long)]
        verify: bool,
        /// With --verify: verify as if installed under this root
        /// (units go to ROOT/etc/systemd/system, programs are looked up in ROOT).
        #[arg(long, requires = "verify")]
        root: Option<PathBuf>,
        /// Use the user search path.
        #[arg(long)]
        user: bool,
    },
    /// Boot a throwaway systemd with the bundled examples and report what
    /// became of them (root only; takes a few seconds).
    Demo,
    /// What systemd-sparrowd is doing: per unit, the last evaluation, what
    /// it applied and when, the next evaluation, errors.
    Status {
        /// One unit (default: all managed units).
        unit: Option<String>,
        /// Print the daemon's JSON answer.
        #[arg(long)]
        json: bool,
    },
    /// Evaluate a unit's resources now and show what would change, without applying.
    Eval {
        /// The unit.
        unit: String,
        /// What to evaluate (only `resources` for now).
        #[arg(default_value = "resources", value_parser = ["resources"])]
        what: String,
        /// Print the daemon's JSON answer.
        #[arg(long)]
        json: bool,
    },
    /// Ask systemd-sparrowd to re-read the definitions.
    Reload,
    /// Show what a daemon-reload would change in the generated units.
    Diff {
        /// Definition files or directories; default: the search path.
        paths: Vec<PathBuf>,
        /// The generator's output directory (default /run/systemd/generator).
        #[arg(long)]
        generator_dir: Option<PathBuf>,
        /// The generator's early directory (default: GENERATOR_DIR.early).
        #[arg(long)]
        early_dir: Option<PathBuf>,
        /// Use the user search path and generator directory.
        #[arg(long)]
        user: bool,
    },
}
