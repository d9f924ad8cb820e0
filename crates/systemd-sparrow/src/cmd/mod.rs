//! One file per command; `run` dispatches and returns the exit status.

mod check;
mod control;
mod demo;
mod diff;
mod hook;
mod render;
mod task;

use crate::cli::{Cli, Command, HookCommand, TaskCommand};

/// Runs a command: `Ok(status)` for outcomes, `Err` for failures to run.
pub fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Render {
            paths,
            output,
            user,
            json,
        } => render::run(&paths, output.as_deref(), user, json),
        Command::Check {
            paths,
            verify,
            root,
            user,
            json,
        } => check::run(&paths, verify, root.as_deref(), user, json),
        Command::Demo => demo::run(),
        Command::Status { unit, json } => control::status(unit, json),
        Command::Eval { unit, json, .. } => control::eval(unit, json),
        Command::Reload => control::reload(),
        Command::Reset { unit } => control::reset(unit),
        Command::Diff {
            paths,
            generator_dir,
            early_dir,
            user,
        } => diff::run(&paths, generator_dir, early_dir, user),
        Command::Hook {
            command:
                HookCommand::Run {
                    unit,
                    stage,
                    source,
                    timeout,
                },
        } => Ok(hook::run(&unit, stage, source, timeout)),
        Command::Completions { shell } => {
            let mut cmd = <crate::cli::Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "systemd-sparrow", &mut std::io::stdout());
            Ok(0)
        }
        Command::Man { output } => man(&output),
        Command::Task { command } => Ok(match command {
            TaskCommand::Run {
                plugin,
                params,
                json,
                timeout,
                desc,
            } => task::run(&plugin, &params, json, timeout, desc),
            TaskCommand::List { json } => task::list(json),
        }),
    }
}

/// `man --output DIR`: the command's page and one per subcommand
/// (`systemd-sparrow-check.1`, ...), as clap_mangen renders them.
fn man(dir: &std::path::Path) -> anyhow::Result<u8> {
    use anyhow::Context;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let cmd = <crate::cli::Cli as clap::CommandFactory>::command();
    let mut pages = vec![("systemd-sparrow".to_string(), cmd.clone())];
    for sub in cmd.get_subcommands() {
        let name = format!("systemd-sparrow-{}", sub.get_name());
        pages.push((name.clone(), sub.clone().name(name)));
    }
    for (name, page) in pages {
        let path = dir.join(format!("{name}.1"));
        let mut out = Vec::new();
        clap_mangen::Man::new(page)
            .render(&mut out)
            .with_context(|| format!("rendering {name}"))?;
        std::fs::write(&path, out).with_context(|| format!("writing {}", path.display()))?;
    }
    eprintln!("wrote man pages to {}", dir.display());
    Ok(0)
}
