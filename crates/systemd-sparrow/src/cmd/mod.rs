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
        } => render::run(&paths, output.as_deref(), user),
        Command::Check {
            paths,
            verify,
            root,
            user,
        } => check::run(&paths, verify, root.as_deref(), user),
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
