//! The core's closed vocabulary: every [`Event`] it can be told, every
//! [`Action`] it can ask for. Plain data: no D-Bus types, no clocks, no
//! handles; the actuator turns actions into I/O and I/O into events.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use sparrow_host::runtime::UnitSnapshot;
use sparrow_policy::{Live, Prop, Target};

use crate::control::{Request, Response};
use crate::eval::{Evaluation, SourceText};
use crate::spec::Spec;
use crate::state::Persisted;
use crate::systemd::{UnitInfo, Via};

/// Milliseconds on the monotonic clock.
pub type Millis = u64;

/// The time, as the core sees it: passed in with every event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Now {
    /// Monotonic milliseconds (decisions: dwell, rate caps, schedules).
    pub mono: Millis,
    /// Wall-clock milliseconds since the epoch (only for what people read).
    pub wall: u64,
}

/// Who asked for an evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The unit's interval.
    Schedule,
    /// `systemd-sparrow eval` (a control request id).
    Request(u64),
    /// A kernel response (`pressure_response`, the adaptive strategy) or a
    /// pattern check; with the kernel's wake-up (monotonic µs) it answers,
    /// so that applying it can say how long the reaction took.
    Kernel(Option<u64>),
}

/// Everything that can happen to the core.
#[derive(Debug)]
pub enum Event {
    /// Time passed (the core said when to wake, in [`crate::core::Core::next_wake`]).
    Tick,
    /// The definitions were read (texts, and problems with files).
    Sources(Vec<SourceText>, Vec<String>),
    /// The evaluators loaded a generation of definitions.
    Loaded {
        /// Which.
        generation: u64,
        /// The units to manage.
        specs: Vec<Spec>,
        /// Problems (one line each).
        problems: Vec<String>,
    },
    /// One unit's closures were evaluated.
    Evaluated(Evaluation),
    /// An evaluator's resident Raku worker changed (started, failed).
    Raku(crate::control::RakuWorker),
    /// Every evaluator was busy: these were not started.
    Rejected(Vec<String>, Origin),
    /// Connected to systemd (how), or why not.
    Connected(Result<Via, String>),
    /// The connection to systemd ended.
    BusLost(String),
    /// systemd reported a unit's `ActiveState`.
    UnitChanged {
        /// The unit.
        unit: String,
        /// Its new state.
        active_state: String,
    },
    /// systemd is reloading (`true`) or has reloaded (`false`).
    Reloading(bool),
    /// What systemd says about a unit.
    Info {
        /// The unit.
        unit: String,
        /// Its state, or why it could not be read.
        result: Result<UnitInfo, String>,
    },
    /// Live property values, read for a decision waiting on them (`ticket`).
    Live {
        /// The unit.
        unit: String,
        /// The values, or why not.
        result: Result<BTreeMap<Prop, Live>, String>,
        /// The waiting decision.
        ticket: Option<u64>,
    },
    /// Properties were set (and read back).
    Applied {
        /// The unit.
        unit: String,
        /// What was changed.
        changes: Vec<Change>,
        /// The values read back, or why setting failed.
        result: Result<BTreeMap<Prop, Live>, String>,
    },
    /// A health probe ended.
    Probed {
        /// The unit.
        unit: String,
        /// The probe's sequence number (see [`Action::Probe`]).
        seq: u64,
        /// Passed or failed, with the latency.
        outcome: sparrow_policy::health::Outcome,
    },
    /// A probe could not be run: every evaluator was busy (try again
    /// soon), or the check closure took its evaluator process down
    /// (`crashed`: do not call it again until the definitions change).
    NotProbed {
        /// The unit.
        unit: String,
        /// The probe's sequence number.
        seq: u64,
        /// Why.
        why: String,
        /// The closure crashed its process (or had to be killed).
        crashed: bool,
    },
    /// A restart was asked of systemd (queued), or why not.
    Restarted {
        /// The unit.
        unit: String,
        /// Queued, or the error.
        result: Result<(), String>,
    },
    /// An `on_failure` closure ran.
    OnFailureDone {
        /// The unit.
        unit: String,
        /// Done, or its error.
        result: Result<(), String>,
        /// What it `log()`ged.
        logs: Vec<String>,
        /// The string it returned, if any (`"restart"`, `"alert"` and
        /// `"none"` are acted on).
        action: Option<String>,
    },
    /// Closures called `alert()`.
    Alerts(Vec<crate::alert::Alert>),
    /// A unit's kernel watches were set up: one result per watch, in the
    /// order of [`Arm`](crate::core::kernel::Arm)'s triggers, then `memory.events`.
    Armed {
        /// The unit.
        unit: String,
        /// The arming it answers.
        seq: u64,
        /// Per watch.
        results: Vec<crate::core::kernel::Armed>,
    },
    /// A kernel watch saw something.
    Signal {
        /// The unit.
        unit: String,
        /// The arming it belongs to.
        seq: u64,
        /// What.
        signal: crate::core::kernel::Signal,
        /// Pressure and memory figures read when it came.
        readings: crate::core::kernel::Readings,
    },
    /// A watched file of a unit's pattern monitor changed (moved, recreated).
    FilesChanged {
        /// The unit.
        unit: String,
        /// The watch it belongs to.
        seq: u64,
    },
    /// A `pattern_check` ran: how many properties it returned (they come as
    /// an [`Event::Evaluated`] of origin [`Origin::Kernel`]) and the
    /// environment it asked for; or why it failed.
    PatternDone {
        /// The unit.
        unit: String,
        /// What it returned, or the error.
        result: Result<crate::core::pattern::Outcome, String>,
        /// What it `log()`ged.
        logs: Vec<String>,
    },
    /// A unit's pattern environment was written (or removed), systemd
    /// reloaded and the unit restarted; or why not.
    EnvironmentSet {
        /// The unit.
        unit: String,
        /// Done, or the error.
        result: Result<(), String>,
    },
    /// A kernel response ran: how many properties it returned (they come
    /// as an [`Event::Evaluated`] of origin [`Origin::Kernel`]), or why it failed.
    Responded {
        /// The unit.
        unit: String,
        /// Properties returned, or the error.
        result: Result<usize, String>,
        /// What it `log()`ged.
        logs: Vec<String>,
    },
    /// A control request, to be answered with [`Action::Reply`] and its id.
    Control(u64, Request),
    /// `SIGHUP` or `systemd-sparrow reload`: read the definitions again.
    Reload,
    /// `SIGTERM`: stop.
    Terminate,
}

/// One property being changed.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// What to set.
    pub target: Target,
    /// What it was.
    pub old: Live,
    /// Why (for the journal).
    pub reason: String,
}

/// Log levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Something failed.
    Error,
    /// Something is wrong.
    Warn,
    /// Something happened.
    Info,
}

/// A journal entry: a message, about a unit or not, with structured fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// How bad.
    pub level: Level,
    /// The unit it is about (the `UNIT=` field).
    pub unit: Option<String>,
    /// The message.
    pub message: String,
    /// More fields (`PROPERTY`, `OLD`, `NEW`, `REASON`).
    pub fields: Vec<(&'static str, String)>,
}

/// What to tell systemd about the daemon itself (`sd_notify`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// `READY=1` with a status line.
    Ready(String),
    /// `STATUS=`.
    Status(String),
    /// `WATCHDOG=1`.
    Watchdog,
    /// `STOPPING=1`.
    Stopping,
}

/// Everything the core can ask for.
#[derive(Debug)]
pub enum Action {
    /// Connect to systemd (→ [`Event::Connected`], then signals as events).
    Connect,
    /// Read the definitions (→ [`Event::Sources`]).
    ReadSources,
    /// Load definitions into the evaluators (→ [`Event::Loaded`]).
    Load(Arc<Vec<SourceText>>, u64),
    /// Evaluate units (→ [`Event::Evaluated`] each, or [`Event::Rejected`]).
    Evaluate(Vec<String>, Origin),
    /// Tell the evaluators what is known of units.
    ShareUnits(Arc<HashMap<String, UnitSnapshot>>),
    /// Only these units' signals matter.
    Watch(Vec<String>),
    /// Read a unit's state (→ [`Event::Info`]).
    ReadInfo(String),
    /// Read live values (→ [`Event::Live`]).
    ReadLive {
        /// The unit.
        unit: String,
        /// Which.
        props: Vec<Prop>,
        /// The decision waiting for them.
        ticket: Option<u64>,
    },
    /// Set properties at runtime and read them back (→ [`Event::Applied`]).
    Apply {
        /// The unit.
        unit: String,
        /// What to change.
        changes: Vec<Change>,
        /// The kernel wake-up (monotonic µs) this reacts to, if any: the
        /// reaction's time is logged once applied (`REACTION_US=`).
        woke_us: Option<u64>,
    },
    /// Run a health probe (→ [`Event::Probed`] with the same `seq`).
    Probe {
        /// The unit.
        unit: String,
        /// Which run of the unit it belongs to.
        seq: u64,
        /// What to probe.
        probe: Arc<crate::spec::ProbeSpec>,
        /// Fail it after this long.
        timeout_ms: u64,
    },
    /// `RestartUnit(unit, "replace")` (→ [`Event::Restarted`]).
    Restart(String),
    /// Call the unit's `on_failure` closure with `event` (→ [`Event::OnFailureDone`]).
    OnFailure {
        /// The unit.
        unit: String,
        /// What the closure receives.
        event: serde_json::Value,
    },
    /// Watch a unit's pressure and memory events (→ [`Event::Armed`], then
    /// [`Event::Signal`]s), replacing what was watched for it.
    Arm(Box<crate::core::kernel::Arm>),
    /// Stop watching a unit.
    Disarm(String),
    /// Call a unit's kernel responses with `event` (→ [`Event::Responded`]).
    Respond {
        /// The unit.
        unit: String,
        /// What `pressure_response` receives (and the strategy, as `signals`).
        event: serde_json::Value,
        /// When the kernel woke the daemon for it (monotonic µs).
        woke_us: Option<u64>,
    },
    /// Watch these files for a unit's pattern monitor (→ [`Event::FilesChanged`]);
    /// none: stop watching.
    WatchFiles {
        /// The unit.
        unit: String,
        /// This watch's number; its events carry it.
        seq: u64,
        /// Absolute paths.
        files: Vec<String>,
    },
    /// Call a unit's `pattern_check` (→ [`Event::PatternDone`]).
    CallPattern(String),
    /// Restart a unit with this environment on top of its own, written as a
    /// runtime drop-in (`None`: remove it, back to the unit's own), after a
    /// daemon-reload (→ [`Event::EnvironmentSet`]).
    SetEnvironment {
        /// The unit.
        unit: String,
        /// The variables.
        environment: Option<BTreeMap<String, String>>,
    },
    /// Raise an alert: the journal, and the configured webhook and command.
    Alert(Box<crate::alert::Alert>),
    /// Write to the journal.
    Log(LogRecord),
    /// Keep this state across restarts.
    Save(Box<Persisted>),
    /// Tell systemd.
    Notify(Notice),
    /// Answer control request `.0`.
    Reply(u64, Box<Response>),
    /// Stop the event loop.
    Exit,
}

impl Action {
    /// An answer to control request `id`.
    pub fn reply(id: u64, response: Response) -> Action {
        Action::Reply(id, Box::new(response))
    }

    /// A log action.
    pub fn log(level: Level, unit: Option<&str>, message: impl Into<String>) -> Action {
        Action::Log(LogRecord {
            level,
            unit: unit.map(str::to_string),
            message: message.into(),
            fields: Vec::new(),
        })
    }
}
