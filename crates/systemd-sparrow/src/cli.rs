//! The command line, declared with clap.

use std::path::PathBuf;
use std::time::Duration;

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
        /// Units as JSON on stdout; diagnostics as JSON Lines on stderr.
        #[arg(long)]
        json: bool,
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
        /// The summary as JSON on stdout; diagnostics (and verify's
        /// findings) as JSON Lines on stderr: file, line, col, severity,
        /// message, hint.
        #[arg(long)]
        json: bool,
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
    /// Forget a unit's spent restart budget: its health check may restart
    /// it again.
    Reset {
        /// The unit.
        unit: String,
    },
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
    /// Run a unit's lifecycle hooks (what the generated ExecStartPre=,
    /// ExecStartPost=, ExecStop= and ExecStopPost= lines call).
    Hook {
        #[command(subcommand)]
        command: HookCommand,
    },
    /// Run Sparrow6-format tasks and plugins, list the plugins.
    #[command(after_help = PLUGIN_PATH_HELP)]
    Task {
        #[command(subcommand)]
        command: TaskCommand,
    },
    /// Print shell completions (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Write man pages (systemd-sparrow.1 and one per subcommand) to DIR.
    Man {
        /// Where to write them.
        #[arg(long, short, value_name = "DIR")]
        output: PathBuf,
    },
}

/// Where `task` looks plugins up (shown in its help).
const PLUGIN_PATH_HELP: &str = "\
Plugins are looked up by name in /etc/systemd/sparrow/plugins, then
/usr/lib/systemd/sparrow/plugins, then /var/lib/systemd-sparrow/plugins
(the first directory holding NAME/ wins), then among the built-ins.
SPARROW_PLUGIN_PATH, a colon-separated list of directories, replaces
those directories.";

#[derive(Subcommand, Debug)]
pub enum HookCommand {
    /// Run STAGE of UNIT: its definition is found through the generated
    /// unit's SourcePath=; exit 1 with the reason on stderr when it fails.
    Run {
        /// The unit (an instance is found through its template).
        unit: String,
        /// pre_start, startup_sequence, post_start, pre_stop or post_stop.
        #[arg(value_parser = stage)]
        stage: sparrow_hook::Stage,
        /// The definition to use instead of the generated unit's SourcePath=.
        #[arg(long, value_name = "FILE")]
        source: Option<PathBuf>,
        /// Stop the stage after this long (default 90s, systemd's default
        /// TimeoutStartSec=).
        #[arg(long, value_name = "DUR", value_parser = positive_duration)]
        timeout: Option<Duration>,
    },
}

fn stage(text: &str) -> Result<sparrow_hook::Stage, String> {
    sparrow_hook::Stage::parse(text).ok_or_else(|| {
        format!(
            "unknown stage {text:?}; one of: {}",
            sparrow_hook::Stage::ALL.map(|(n, _)| n).join(", ")
        )
    })
}

#[derive(Subcommand, Debug)]
pub enum TaskCommand {
    /// Run a task directory (a path starting with / or .) or a plugin by name.
    #[command(after_help = PLUGIN_PATH_HELP)]
    Run {
        /// ./DIR or /DIR: that task directory; NAME: an installed or built-in plugin.
        #[arg(value_name = "PATH|NAME")]
        plugin: String,
        /// Parameters, merged over the task's config.yaml. KEY may be dotted
        /// (main.port=8080); VALUE is JSON when it parses as JSON (8080, true,
        /// [1,2], {"a":1}, "quoted"), else the text as it is.
        #[arg(value_name = "KEY=VALUE")]
        params: Vec<String>,
        /// Print nothing while it runs, then one JSON object: status,
        /// exit_code, state, stdout, stderr, check_errors, transcript.
        #[arg(long)]
        json: bool,
        /// Kill the run after this long (30s, 500ms, 2m) and exit 124.
        #[arg(long, value_name = "DUR", value_parser = positive_duration)]
        timeout: Option<Duration>,
        /// The name shown in the run's headers (default: PATH|NAME).
        #[arg(long, value_name = "TEXT")]
        desc: Option<String>,
    },
    /// List the built-in and installed plugins (shadowed ones marked).
    #[command(after_help = PLUGIN_PATH_HELP)]
    List {
        /// Print a JSON array.
        #[arg(long)]
        json: bool,
    },
}

/// `--timeout`: a duration above zero (zero would stop the task at once).
fn positive_duration(text: &str) -> Result<Duration, String> {
    match sparrow_task::parse_duration(text)? {
        d if d.is_zero() => Err("the timeout must be more than 0".into()),
        d => Ok(d),
    }
}
