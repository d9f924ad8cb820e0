//! What the runner and its evaluator process say to each other: one JSON
//! line each way per request.

use serde::{Deserialize, Serialize};
use sparrow_lang::Facts;
use sparrow_source::{Owners, Source};

use crate::Stage;

/// From the runner.
// One `Load` per hook run: its size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Request {
    /// Load the definition and find `unit`'s `stage`; answered with [`Loaded`].
    Load {
        /// The host's facts, gathered by the runner.
        facts: Facts,
        /// Who may own `lib/` modules.
        owners: Owners,
        /// The definition.
        source: Source,
        /// Its text.
        text: String,
        /// The unit (an instance is found through its template).
        unit: String,
        /// Which stage.
        stage: Stage,
    },
    /// Call the hook (`step: None`) or the sequence's closure step; answered
    /// with [`Called`].
    Call {
        /// Which step of the sequence.
        step: Option<usize>,
        /// The closure's argument.
        context: serde_json::Value,
        /// Its wall-clock limit.
        limit_ms: u64,
    },
}

/// What the stage consists of.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Plan {
    /// One closure.
    Hook,
    /// The startup sequence's steps.
    Steps(Vec<PlannedStep>),
}

/// One step, as the runner runs it.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum PlannedStep {
    /// A task plugin.
    Task {
        /// Its description.
        desc: String,
        /// The plugin.
        plugin: String,
        /// Its parameters.
        params: serde_json::Value,
    },
    /// A command.
    Command(Vec<String>),
    /// A closure, run in the evaluator.
    Closure {
        /// Where it is written (file:line:col).
        place: String,
    },
}

impl PlannedStep {
    /// How the step is named in messages: a task's description, a
    /// command's program, a closure's place.
    pub(crate) fn describe(&self) -> String {
        match self {
            PlannedStep::Task { desc, .. } => desc.clone(),
            PlannedStep::Command(argv) => argv.join(" ").chars().take(80).collect(),
            PlannedStep::Closure { place } => format!("closure at {place}"),
        }
    }
}

/// The answer to [`Request::Load`].
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Loaded {
    /// The stage, or why it cannot run.
    pub result: Result<Plan, String>,
}

/// The answer to [`Request::Call`].
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Called {
    /// Done, or why it failed (file:line:col: message).
    pub result: Result<(), String>,
    /// `log()` and `alert()` lines.
    pub logs: Vec<String>,
}
