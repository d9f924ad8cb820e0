//! The vocabulary: every key a definition may use, as data.
//!
//! Longer than 600 lines because the table below is the whole vocabulary,
//! one row per key: it is the single source the parser, validation, the
//! renderer and docs/keys.md read, so it stays in one place.
//!
//! This table drives parsing (aliases, kebab-case), validation (value kinds),
//! rendering (section and directive), "did you mean" hints, and the reference
//! documentation (`docs/keys.md` is generated from it and checked by a test).
//! Adding a key means adding a row here and nothing else.

use sparrow_unit::UnitType;

/// The kinds of unit a definition declares (`service()`, `timer()`, ..).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnitKind {
    /// `service(..)`, `task_run(..)`
    Service,
    /// `timer(..)`
    Timer,
    /// `socket(..)`
    Socket,
    /// `path(..)`
    Path,
    /// `target(..)`
    Target,
    /// `mount(..)`: named after `where`
    Mount,
    /// `automount(..)`: named after `where`
    Automount,
}

impl UnitKind {
    /// Every kind, in the order the reference lists them.
    pub const ALL: [UnitKind; 7] = [
        UnitKind::Service,
        UnitKind::Timer,
        UnitKind::Socket,
        UnitKind::Path,
        UnitKind::Target,
        UnitKind::Mount,
        UnitKind::Automount,
    ];

    /// The unit type it declares.
    pub fn unit_type(self) -> UnitType {
        match self {
            UnitKind::Service => UnitType::Service,
            UnitKind::Timer => UnitType::Timer,
            UnitKind::Socket => UnitType::Socket,
            UnitKind::Path => UnitType::Path,
            UnitKind::Target => UnitType::Target,
            UnitKind::Mount => UnitType::Mount,
            UnitKind::Automount => UnitType::Automount,
        }
    }

    /// The kind that declares units of `ty`, if definitions can.
    pub fn of_type(ty: UnitType) -> Option<UnitKind> {
        UnitKind::ALL.into_iter().find(|k| k.unit_type() == ty)
    }

    /// Its own section (`[Socket]` for sockets); targets have none.
    pub fn main_section(self) -> Option<Section> {
        match self {
            UnitKind::Service => Some(Section::Service),
            UnitKind::Timer => Some(Section::Timer),
            UnitKind::Socket => Some(Section::Socket),
            UnitKind::Path => Some(Section::Path),
            UnitKind::Target => None,
            UnitKind::Mount => Some(Section::Mount),
            UnitKind::Automount => Some(Section::Automount),
        }
    }

    /// The word for messages: "services".
    pub fn plural(self) -> &'static str {
        match self {
            UnitKind::Service => "services",
            UnitKind::Timer => "timers",
            UnitKind::Socket => "sockets",
            UnitKind::Path => "path units",
            UnitKind::Target => "targets",
            UnitKind::Mount => "mounts",
            UnitKind::Automount => "automounts",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// The unit-file section a key is written to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Section {
    /// `[Unit]`
    Unit,
    /// `[Service]`
    Service,
    /// `[Timer]`
    Timer,
    /// `[Socket]`
    Socket,
    /// `[Path]`
    Path,
    /// `[Mount]`
    Mount,
    /// `[Automount]`
    Automount,
    /// The declaring kind's own section (`unit` is `[Timer]` in a timer
    /// and `[Path]` in a path unit).
    Main,
    /// `[Install]`
    Install,
}

impl Section {
    /// The section's name in a unit file (`Main` resolved with [`Section::of`]).
    pub fn name(self) -> &'static str {
        match self {
            Section::Unit => "Unit",
            Section::Service => "Service",
            Section::Timer => "Timer",
            Section::Socket => "Socket",
            Section::Path => "Path",
            Section::Mount => "Mount",
            Section::Automount => "Automount",
            Section::Main => "(own section)",
            Section::Install => "Install",
        }
    }

    /// The section this one is in a unit of `kind`.
    pub fn of(self, kind: UnitKind) -> Section {
        match self {
            Section::Main => kind.main_section().unwrap_or(Section::Unit),
            s => s,
        }
    }
}

/// Which kinds of unit accept a key: a set of [`UnitKind`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applies(u8);

impl Applies {
    /// Every kind.
    pub const ALL: Applies = Applies(0x7f);

    /// Whether a unit of `kind` accepts the key.
    pub fn contains(self, kind: UnitKind) -> bool {
        self.0 & kind.bit() != 0
    }

    /// The kinds, for the reference.
    pub fn kinds(self) -> impl Iterator<Item = UnitKind> {
        UnitKind::ALL.into_iter().filter(move |k| self.contains(*k))
    }
}

const fn only(kinds: &[UnitKind]) -> Applies {
    let mut bits = 0u8;
    let mut i = 0;
    while i < kinds.len() {
        bits |= 1 << (kinds[i] as u8);
        i += 1;
    }
    Applies(bits)
}

const ALL: Applies = Applies::ALL;
const SVC: Applies = only(&[UnitKind::Service]);
const TMR: Applies = only(&[UnitKind::Timer]);
const SOCK: Applies = only(&[UnitKind::Socket]);
const PATH: Applies = only(&[UnitKind::Path]);
const MNT: Applies = only(&[UnitKind::Mount]);
const AMNT: Applies = only(&[UnitKind::Automount]);
const MOUNTS: Applies = only(&[UnitKind::Mount, UnitKind::Automount]);
const PATH_AND_MOUNTS: Applies = only(&[UnitKind::Path, UnitKind::Mount, UnitKind::Automount]);
const TRIGGERS: Applies = only(&[UnitKind::Timer, UnitKind::Path]);
const NAMED: Applies = only(&[
    UnitKind::Service,
    UnitKind::Timer,
    UnitKind::Socket,
    UnitKind::Path,
    UnitKind::Target,
]);

/// How a key's value is read and written.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// Free text; `%` is literal (escaped as `%%`). `raw(..)` keeps specifiers.
    Text,
    /// One token without whitespace (user and group names).
    Token,
    /// Space-separated tokens from a string or an array (`Documentation=`).
    Tokens,
    /// A string, or an array of strings written one line each.
    Lines,
    /// Unit names from a string or an array; each must carry a type suffix.
    Units,
    /// Unit names; the suffix is added when missing.
    UnitsOf(UnitType),
    /// One unit name.
    UnitName,
    /// One unit name; the suffix is added when missing.
    UnitNameOf(UnitType),
    /// One command: a string as written, or an argv array.
    Command,
    /// Several commands: a string, an array of strings (one command each) or
    /// of argv arrays.
    Commands,
    /// One of a fixed set of words.
    Enum(&'static [&'static str]),
    /// A systemd time span (`"30s"`, `"5min 20s"`, `"infinity"`); integers are seconds.
    Duration,
    /// One or several time spans, one line each.
    Durations,
    /// A resource-control value, read with [`crate::resource::resource`] both
    /// when the unit is rendered and when the daemon applies it live.
    Resource(ResourceKind),
    /// An integer in a range.
    Int(i64, i64),
    /// `true`/`false`, written `yes`/`no`.
    Bool,
    /// An absolute path; `-` in front means "ignore if missing" where allowed.
    Path {
        /// A leading `-` is allowed.
        dash: bool,
        /// `~` (the user's home) is allowed.
        tilde: bool,
    },
    /// Absolute paths, one line each; a leading `-` is allowed.
    Paths,
    /// Absolute paths without prefixes, one line each.
    AbsPaths,
    /// Absolute paths on one line; `-` (ignore if missing) and `+` allowed.
    PathList,
    /// Paths relative to a base directory (`StateDirectory=`), on one line.
    RelDirs,
    /// One of the words, or a word starting with one of the prefixes.
    Stdio(&'static [&'static str], &'static [&'static str]),
    /// `true`/`false` (yes/no) or one of the words.
    BoolOr(&'static [&'static str]),
    /// Names with a prefix (`CAP_`, `AF_`), `~` in front of the first to
    /// invert, or `none`; on one line.
    Named(&'static str),
    /// A file mode in octal, written as a string (`"0640"`).
    Mode,
    /// A resource limit: an integer, `"infinity"`, a size, or `"soft:hard"`.
    Limit,
    /// Conditions and assertions, one line each; `path` ones must be
    /// absolute after their `!`/`|` prefixes.
    Conditions {
        /// The value is a path.
        path: bool,
    },
    /// A socket address: a port number, `host:port`, `[v6]:port` or a path.
    Listen,
    /// Mount options: a string or an array, joined by commas.
    MountOptions,
    /// A map of environment variables.
    Env,
    /// A map of raw directives passed through to the key's section.
    Raw,
    /// A runtime key, validated by its schema and acted on by the daemon.
    Runtime(&'static crate::schema::Shape),
    /// The unit's name (for `service(map)` and service families).
    Name,
}

/// One row of the vocabulary.
#[derive(Debug)]
pub struct KeySpec {
    /// Canonical snake_case name.
    pub name: &'static str,
    /// Other accepted names.
    pub aliases: &'static [&'static str],
    /// Which units accept it.
    pub applies: Applies,
    /// Where it is written.
    pub section: Section,
    /// The systemd directive; empty for raw, runtime and name keys.
    pub directive: &'static str,
    /// How the value is read.
    pub kind: Kind,
    /// One line for the reference.
    pub doc: &'static str,
}

impl KeySpec {
    /// Whether this key is acted on at runtime by the daemon.
    pub fn is_runtime(&self) -> bool {
        matches!(self.kind, Kind::Runtime(_))
    }
}

const TYPES: &[&str] = &[
    "simple", "exec", "forking", "oneshot", "dbus", "notify", "idle",
];
const RESTARTS: &[&str] = &[
    "no",
    "on-success",
    "on-failure",
    "on-abnormal",
    "on-watchdog",
    "on-abort",
    "always",
];
const KILL_MODES: &[&str] = &["control-group", "mixed", "process", "none"];
const NOTIFY_ACCESS: &[&str] = &["none", "main", "exec", "all"];
const STDIN: &[&str] = &["null", "tty", "tty-force", "tty-fail", "data", "socket"];
const STDOUT: &[&str] = &[
    "inherit",
    "null",
    "tty",
    "journal",
    "kmsg",
    "journal+console",
    "kmsg+console",
    "socket",
];
const STDIO_PREFIXES: &[&str] = &["file:", "append:", "truncate:", "fd:"];

macro_rules! key {
    ($name:literal $(| $alias:literal)*, $applies:expr, $section:ident, $directive:literal, $kind:expr, $doc:literal) => {
        KeySpec {
            name: $name,
            aliases: &[$($alias),*],
            applies: $applies,
            section: Section::$section,
            directive: $directive,
            kind: $kind,
            doc: $doc,
        }
    };
}

pub use crate::names::{closest, normalize};
use crate::resource::ResourceKind;
use crate::{schema, shapes};
use Kind::*;

/// Every key, in the order directives are written within a section.
pub static KEYS: &[KeySpec] = &[
    key!("name", NAMED, Unit, "", Name, "Unit name when declared with `service(map)` or a family; `service(NAME, ..)` takes precedence"),
    key!("description", ALL, Unit, "Description", Text, "Human-readable description"),
    key!("documentation", ALL, Unit, "Documentation", Tokens, "Documentation URIs (`man:nginx(8)`, `https://..`)"),
    key!("requires", ALL, Unit, "Requires", Units, "Hard dependencies"),
    key!("wants", ALL, Unit, "Wants", Units, "Soft dependencies"),
    key!("binds_to", ALL, Unit, "BindsTo", Units, "Stop when these stop"),
    key!("part_of", ALL, Unit, "PartOf", Units, "Restart/stop with these"),
    key!("upholds", ALL, Unit, "Upholds", Units, "Keep these running"),
    key!("conflicts", ALL, Unit, "Conflicts", Units, "Never run together with these"),
    key!("after", ALL, Unit, "After", Units, "Start after these"),
    key!("after_service", ALL, Unit, "After", UnitsOf(UnitType::Service), "Start after these services (`.service` added)"),
    key!("after_target", ALL, Unit, "After", UnitsOf(UnitType::Target), "Start after these targets (`.target` added)"),
    key!("before", ALL, Unit, "Before", Units, "Start before these"),
    key!("start_limit_interval_sec", ALL, Unit, "StartLimitIntervalSec", Duration, "Window of the start rate limit"),
    key!("start_limit_burst", ALL, Unit, "StartLimitBurst", Int(0, 1_000_000), "Starts allowed within the window"),
    key!("condition_architecture", ALL, Unit, "ConditionArchitecture", Conditions { path: false }, "ConditionArchitecture=: skip the unit (not a failure) unless it holds (`!` negates, `|` makes it a trigger)"),
    key!("condition_firmware", ALL, Unit, "ConditionFirmware", Conditions { path: false }, "ConditionFirmware=: skip the unit (not a failure) unless it holds (`!` negates, `|` makes it a trigger)"),
    key!("condition_virtualization", ALL, Unit, "ConditionVirtualization", Conditions { path: false }, "ConditionVirtualization=: skip the unit (not a failure) unless it holds (`!` negates, `|` makes it a trigger)"),
    key!("condition_host", ALL, Unit, "ConditionHost", Conditions { path: false }, "ConditionHost=: skip the unit (not a failure) unless it holds (`!` negates, `|` makes it a trigger)"),
    key!("condition_kernel_command_line", ALL, Unit, "ConditionKernelCommandLine", Conditions { path: false }, "ConditionKernelCommandLine=: skip the unit (not a failure) unless it holds (`!` negates, `|` makes it a trigger)"),
    key!("condition_kernel_version", ALL, Unit, "ConditionKernelVersion", Conditions { path: false }, "ConditionKernelVersion=: skip the unit (not a failure) unless it holds (`!` negates, `|` makes it a trigger)"),
    key!("condition_credential", ALL, Unit, "ConditionCredential", Conditions { path: false }, "ConditionCredential=: skip the unit (not a failure) unless it holds (`!` negates, `|` makes it a trigger)"),
    key!("condition_environment", ALL, Unit, "ConditionEnvironment", Conditions { path: false }, "ConditionEnvironment=: skip the unit (not a failure) unless it holds (`!` negates, `|` makes it a trigger)"),
    key!("condition_security", ALL, Unit, "ConditionSecurity", Conditions { path: false }, "ConditionSecurity=: skip the unit (not a failure) unless it holds (`!` negates, `|` makes it a trigger)"),
    key!("condition_capability", ALL, Unit, "ConditionCapability", Conditions { path: false }, "ConditionCapability=: skip the unit (not a failure) unless it holds (`!` negates, `|` makes it a trigger)"),
    key!("condition_ac_power", ALL, Unit, "ConditionACPower", Conditions { path: false }, "ConditionACPower=: skip the unit (not a failure) unless it holds (`!` negates, `|` makes it a trigger)"),
    key!("condition_needs_update", ALL, Unit, "ConditionNeedsUpdate", Conditions { path: true }, "ConditionNeedsUpdate=: skip the unit (not a failure) unless it holds (`!` negates, `|` makes it a trigger)"),
    key!("condition_first_boot", ALL, Unit, "ConditionFirstBoot", Conditions { path: false }, "ConditionFirstBoot=: skip the unit (not a failure) unless it holds (`!` negates, `|` makes it a trigger)"),
    key!("condition_path_exists", ALL, Unit, "ConditionPathExists", Conditions { path: true }, "ConditionPathExists=: skip the unit (not a failure) unless it holds (`!` negates, `|` makes it a trigger)"),
    key!("condition_path_exists_glob", ALL, Unit, "ConditionPathExistsGlob", Conditions { path: true }, "ConditionPathExistsGlob=: skip the unit (not a failure) unless it holds (`!` negates, `|` makes it a trigger)"),
    key!("condition_path_is_directory", ALL, Unit, "ConditionPathIsDirectory", Conditions { path: true }, "ConditionPathIsDirectory=: skip the unit (not a failure) unless it holds (`!` negates, `|` makes it a trigger)"),
    key!("condition_path_is_symbolic_link", ALL, Unit, "ConditionPathIsSymbolicLink", Conditions { path: true }, "ConditionPathIsSymbolicLink=: skip the unit (not a failure) unless it holds (`!` negates, `|` makes it a trigger)"),
    key!("condition_path_is_mount_point", ALL, Unit, "ConditionPathIsMountPoint", Conditions { path: true }, "ConditionPathIsMountPoint=: skip the unit (not a failure) unless it holds (`!` negates, `|` makes it a trigger)"),
    key!("condition_path_is_read_write", ALL, Unit, "ConditionPathIsReadWrite", Conditions { path: true }, "ConditionPathIsReadWrite=: skip the unit (not a failure) unless it holds (`!` negates, `|` makes it a trigger)"),
    key!("condition_path_is_encrypted", ALL, Unit, "ConditionPathIsEncrypted", Conditions { path: true }, "ConditionPathIsEncrypted=: skip the unit (not a failure) unless it holds (`!` negates, `|` makes it a trigger)"),
    key!("condition_directory_not_empty", ALL, Unit, "ConditionDirectoryNotEmpty", Conditions { path: true }, "ConditionDirectoryNotEmpty=: skip the unit (not a failure) unless it holds (`!` negates, `|` makes it a trigger)"),
    key!("condition_file_not_empty", ALL, Unit, "ConditionFileNotEmpty", Conditions { path: true }, "ConditionFileNotEmpty=: skip the unit (not a failure) unless it holds (`!` negates, `|` makes it a trigger)"),
    key!("condition_file_is_executable", ALL, Unit, "ConditionFileIsExecutable", Conditions { path: true }, "ConditionFileIsExecutable=: skip the unit (not a failure) unless it holds (`!` negates, `|` makes it a trigger)"),
    key!("condition_user", ALL, Unit, "ConditionUser", Conditions { path: false }, "ConditionUser=: skip the unit (not a failure) unless it holds (`!` negates, `|` makes it a trigger)"),
    key!("condition_group", ALL, Unit, "ConditionGroup", Conditions { path: false }, "ConditionGroup=: skip the unit (not a failure) unless it holds (`!` negates, `|` makes it a trigger)"),
    key!("condition_control_group_controller", ALL, Unit, "ConditionControlGroupController", Conditions { path: false }, "ConditionControlGroupController=: skip the unit (not a failure) unless it holds (`!` negates, `|` makes it a trigger)"),
    key!("condition_memory", ALL, Unit, "ConditionMemory", Conditions { path: false }, "ConditionMemory=: skip the unit (not a failure) unless it holds (`!` negates, `|` makes it a trigger)"),
    key!("condition_cpus", ALL, Unit, "ConditionCPUs", Conditions { path: false }, "ConditionCPUs=: skip the unit (not a failure) unless it holds (`!` negates, `|` makes it a trigger)"),
    key!("condition_cpu_feature", ALL, Unit, "ConditionCPUFeature", Conditions { path: false }, "ConditionCPUFeature=: skip the unit (not a failure) unless it holds (`!` negates, `|` makes it a trigger)"),
    key!("condition_os_release", ALL, Unit, "ConditionOSRelease", Conditions { path: false }, "ConditionOSRelease=: skip the unit (not a failure) unless it holds (`!` negates, `|` makes it a trigger)"),
    key!("condition_memory_pressure", ALL, Unit, "ConditionMemoryPressure", Conditions { path: false }, "ConditionMemoryPressure=: skip the unit (not a failure) unless it holds (`!` negates, `|` makes it a trigger)"),
    key!("condition_cpu_pressure", ALL, Unit, "ConditionCPUPressure", Conditions { path: false }, "ConditionCPUPressure=: skip the unit (not a failure) unless it holds (`!` negates, `|` makes it a trigger)"),
    key!("condition_io_pressure", ALL, Unit, "ConditionIOPressure", Conditions { path: false }, "ConditionIOPressure=: skip the unit (not a failure) unless it holds (`!` negates, `|` makes it a trigger)"),
    key!("assert_architecture", ALL, Unit, "AssertArchitecture", Conditions { path: false }, "AssertArchitecture=: fail the start unless it holds (`!` negates, `|` makes it a trigger)"),
    key!("assert_virtualization", ALL, Unit, "AssertVirtualization", Conditions { path: false }, "AssertVirtualization=: fail the start unless it holds (`!` negates, `|` makes it a trigger)"),
    key!("assert_host", ALL, Unit, "AssertHost", Conditions { path: false }, "AssertHost=: fail the start unless it holds (`!` negates, `|` makes it a trigger)"),
    key!("assert_kernel_command_line", ALL, Unit, "AssertKernelCommandLine", Conditions { path: false }, "AssertKernelCommandLine=: fail the start unless it holds (`!` negates, `|` makes it a trigger)"),
    key!("assert_kernel_version", ALL, Unit, "AssertKernelVersion", Conditions { path: false }, "AssertKernelVersion=: fail the start unless it holds (`!` negates, `|` makes it a trigger)"),
    key!("assert_credential", ALL, Unit, "AssertCredential", Conditions { path: false }, "AssertCredential=: fail the start unless it holds (`!` negates, `|` makes it a trigger)"),
    key!("assert_environment", ALL, Unit, "AssertEnvironment", Conditions { path: false }, "AssertEnvironment=: fail the start unless it holds (`!` negates, `|` makes it a trigger)"),
    key!("assert_security", ALL, Unit, "AssertSecurity", Conditions { path: false }, "AssertSecurity=: fail the start unless it holds (`!` negates, `|` makes it a trigger)"),
    key!("assert_capability", ALL, Unit, "AssertCapability", Conditions { path: false }, "AssertCapability=: fail the start unless it holds (`!` negates, `|` makes it a trigger)"),
    key!("assert_ac_power", ALL, Unit, "AssertACPower", Conditions { path: false }, "AssertACPower=: fail the start unless it holds (`!` negates, `|` makes it a trigger)"),
    key!("assert_needs_update", ALL, Unit, "AssertNeedsUpdate", Conditions { path: true }, "AssertNeedsUpdate=: fail the start unless it holds (`!` negates, `|` makes it a trigger)"),
    key!("assert_first_boot", ALL, Unit, "AssertFirstBoot", Conditions { path: false }, "AssertFirstBoot=: fail the start unless it holds (`!` negates, `|` makes it a trigger)"),
    key!("assert_path_exists", ALL, Unit, "AssertPathExists", Conditions { path: true }, "AssertPathExists=: fail the start unless it holds (`!` negates, `|` makes it a trigger)"),
    key!("assert_path_exists_glob", ALL, Unit, "AssertPathExistsGlob", Conditions { path: true }, "AssertPathExistsGlob=: fail the start unless it holds (`!` negates, `|` makes it a trigger)"),
    key!("assert_path_is_directory", ALL, Unit, "AssertPathIsDirectory", Conditions { path: true }, "AssertPathIsDirectory=: fail the start unless it holds (`!` negates, `|` makes it a trigger)"),
    key!("assert_path_is_symbolic_link", ALL, Unit, "AssertPathIsSymbolicLink", Conditions { path: true }, "AssertPathIsSymbolicLink=: fail the start unless it holds (`!` negates, `|` makes it a trigger)"),
    key!("assert_path_is_mount_point", ALL, Unit, "AssertPathIsMountPoint", Conditions { path: true }, "AssertPathIsMountPoint=: fail the start unless it holds (`!` negates, `|` makes it a trigger)"),
    key!("assert_path_is_read_write", ALL, Unit, "AssertPathIsReadWrite", Conditions { path: true }, "AssertPathIsReadWrite=: fail the start unless it holds (`!` negates, `|` makes it a trigger)"),
    key!("assert_path_is_encrypted", ALL, Unit, "AssertPathIsEncrypted", Conditions { path: true }, "AssertPathIsEncrypted=: fail the start unless it holds (`!` negates, `|` makes it a trigger)"),
    key!("assert_directory_not_empty", ALL, Unit, "AssertDirectoryNotEmpty", Conditions { path: true }, "AssertDirectoryNotEmpty=: fail the start unless it holds (`!` negates, `|` makes it a trigger)"),
    key!("assert_file_not_empty", ALL, Unit, "AssertFileNotEmpty", Conditions { path: true }, "AssertFileNotEmpty=: fail the start unless it holds (`!` negates, `|` makes it a trigger)"),
    key!("assert_file_is_executable", ALL, Unit, "AssertFileIsExecutable", Conditions { path: true }, "AssertFileIsExecutable=: fail the start unless it holds (`!` negates, `|` makes it a trigger)"),
    key!("assert_user", ALL, Unit, "AssertUser", Conditions { path: false }, "AssertUser=: fail the start unless it holds (`!` negates, `|` makes it a trigger)"),
    key!("assert_group", ALL, Unit, "AssertGroup", Conditions { path: false }, "AssertGroup=: fail the start unless it holds (`!` negates, `|` makes it a trigger)"),
    key!("assert_control_group_controller", ALL, Unit, "AssertControlGroupController", Conditions { path: false }, "AssertControlGroupController=: fail the start unless it holds (`!` negates, `|` makes it a trigger)"),
    key!("assert_memory", ALL, Unit, "AssertMemory", Conditions { path: false }, "AssertMemory=: fail the start unless it holds (`!` negates, `|` makes it a trigger)"),
    key!("assert_cpus", ALL, Unit, "AssertCPUs", Conditions { path: false }, "AssertCPUs=: fail the start unless it holds (`!` negates, `|` makes it a trigger)"),
    key!("assert_cpu_feature", ALL, Unit, "AssertCPUFeature", Conditions { path: false }, "AssertCPUFeature=: fail the start unless it holds (`!` negates, `|` makes it a trigger)"),
    key!("assert_os_release", ALL, Unit, "AssertOSRelease", Conditions { path: false }, "AssertOSRelease=: fail the start unless it holds (`!` negates, `|` makes it a trigger)"),
    key!("assert_memory_pressure", ALL, Unit, "AssertMemoryPressure", Conditions { path: false }, "AssertMemoryPressure=: fail the start unless it holds (`!` negates, `|` makes it a trigger)"),
    key!("assert_cpu_pressure", ALL, Unit, "AssertCPUPressure", Conditions { path: false }, "AssertCPUPressure=: fail the start unless it holds (`!` negates, `|` makes it a trigger)"),
    key!("assert_io_pressure", ALL, Unit, "AssertIOPressure", Conditions { path: false }, "AssertIOPressure=: fail the start unless it holds (`!` negates, `|` makes it a trigger)"),
    key!("unit_section", ALL, Unit, "", Raw, "Raw `[Unit]` directives, passed through after validation"),
    key!("type", SVC, Service, "Type", Enum(TYPES), "Service type"),
    key!("remain_after_exit", SVC, Service, "RemainAfterExit", Bool, "Stay active after the main process exits (oneshot)"),
    key!("user", SVC, Service, "User", Token, "Run as this user"),
    key!("group", SVC, Service, "Group", Token, "Run as this group"),
    key!("dynamic_user", SVC, Service, "DynamicUser", Bool, "Run as a transient user allocated at start"),
    key!("supplementary_groups", SVC, Service, "SupplementaryGroups", Tokens, "Extra groups"),
    key!("working_directory" | "workdir", SVC, Service, "WorkingDirectory", Path { dash: true, tilde: true }, "Working directory"),
    key!("umask", SVC, Service, "UMask", Mode, "File mode creation mask (`\"0027\"`)"),
    key!("nice", SVC, Service, "Nice", Int(-20, 19), "Scheduling priority, -20..19"),
    key!("env" | "environment", SVC, Service, "Environment", Env, "Environment variables, one `Environment=` each"),
    key!("environment_file", SVC, Service, "EnvironmentFile", Paths, "Environment files (`-` prefix: optional)"),
    key!("pid_file", SVC, Service, "PIDFile", Path { dash: false, tilde: false }, "PID file of a forking service"),
    key!("standard_input", SVC, Service, "StandardInput", Stdio(STDIN, STDIO_PREFIXES), "Where stdin comes from"),
    key!("standard_output", SVC, Service, "StandardOutput", Stdio(STDOUT, STDIO_PREFIXES), "Where stdout goes"),
    key!("standard_error", SVC, Service, "StandardError", Stdio(STDOUT, STDIO_PREFIXES), "Where stderr goes"),
    key!("syslog_identifier", SVC, Service, "SyslogIdentifier", Token, "Journal identifier of the service's messages"),
    key!("runtime_directory", SVC, Service, "RuntimeDirectory", RelDirs, "Directories under /run created at start, removed at stop"),
    key!("state_directory", SVC, Service, "StateDirectory", RelDirs, "Directories under /var/lib owned by the service"),
    key!("cache_directory", SVC, Service, "CacheDirectory", RelDirs, "Directories under /var/cache owned by the service"),
    key!("logs_directory", SVC, Service, "LogsDirectory", RelDirs, "Directories under /var/log owned by the service"),
    key!("configuration_directory", SVC, Service, "ConfigurationDirectory", RelDirs, "Directories under /etc for the service"),
    key!("exec_condition", SVC, Service, "ExecCondition", Commands, "Commands that decide whether to start (exit 1-254: skip)"),
    key!("exec_start_pre", SVC, Service, "ExecStartPre", Commands, "Commands run before the main process"),
    key!("exec_start" | "start" | "command", SVC, Service, "ExecStart", Command, "The main command: a string as written, or an argv array"),
    key!("exec_start_post", SVC, Service, "ExecStartPost", Commands, "Commands run after the main process started"),
    key!("exec_reload" | "reload", SVC, Service, "ExecReload", Commands, "Commands that reload the service"),
    key!("exec_stop" | "stop", SVC, Service, "ExecStop", Commands, "Commands that stop the service"),
    key!("exec_stop_post", SVC, Service, "ExecStopPost", Commands, "Commands run after the service stopped"),
    key!("restart", SVC, Service, "Restart", Enum(RESTARTS), "When to restart"),
    key!("restart_sec", SVC, Service, "RestartSec", Duration, "Delay before a restart"),
    key!("success_exit_status", SVC, Service, "SuccessExitStatus", Tokens, "Exit codes and signals that also count as success"),
    key!("restart_prevent_exit_status", SVC, Service, "RestartPreventExitStatus", Tokens, "Exit codes and signals that prevent a restart"),
    key!("timeout_start_sec", SVC, Service, "TimeoutStartSec", Duration, "Start timeout"),
    key!("timeout_stop_sec", SVC, Service, "TimeoutStopSec", Duration, "Stop timeout"),
    key!("watchdog_sec", SVC, Service, "WatchdogSec", Duration, "Watchdog interval (the service must ping)"),
    key!("notify_access", SVC, Service, "NotifyAccess", Enum(NOTIFY_ACCESS), "Who may send sd_notify messages"),
    key!("kill_mode", SVC, Service, "KillMode", Enum(KILL_MODES), "Which processes are killed on stop"),
    key!("oom_score_adjust" | "oom_score", SVC, Service, "OOMScoreAdjust", Int(-1000, 1000), "OOM killer preference, -1000..1000"),
    key!("limit_nofile", SVC, Service, "LimitNOFILE", Limit, "Open files (`65536`, `\"1024:65536\"`, `\"infinity\"`)"),
    key!("limit_nproc", SVC, Service, "LimitNPROC", Limit, "Processes of the user"),
    key!("limit_core", SVC, Service, "LimitCORE", Limit, "Core dump size (`0`, `\"infinity\"`, `\"1G\"`)"),
    key!("limit_memlock", SVC, Service, "LimitMEMLOCK", Limit, "Locked memory (`\"64M\"`)"),
    key!("no_new_privileges", SVC, Service, "NoNewPrivileges", Bool, "The service and its children cannot gain privileges"),
    key!("protect_system", SVC, Service, "ProtectSystem", BoolOr(&["strict", "full"]), "Read-only /usr and /boot (`true`), also /etc (`\"full\"`), everything but API dirs (`\"strict\"`)"),
    key!("protect_home", SVC, Service, "ProtectHome", BoolOr(&["read-only", "tmpfs"]), "Hide /home, /root and /run/user (`true`, `\"read-only\"`, `\"tmpfs\"`)"),
    key!("private_tmp", SVC, Service, "PrivateTmp", Bool, "Own /tmp and /var/tmp"),
    key!("private_devices", SVC, Service, "PrivateDevices", Bool, "Own minimal /dev"),
    key!("private_network", SVC, Service, "PrivateNetwork", Bool, "Own network namespace with loopback only"),
    key!("protect_kernel_tunables", SVC, Service, "ProtectKernelTunables", Bool, "Read-only /proc/sys, /sys"),
    key!("protect_kernel_modules", SVC, Service, "ProtectKernelModules", Bool, "No module loading"),
    key!("protect_control_groups", SVC, Service, "ProtectControlGroups", Bool, "Read-only /sys/fs/cgroup"),
    key!("restrict_address_families", SVC, Service, "RestrictAddressFamilies", Named("AF_"), "Socket families allowed (`[\"AF_UNIX\", \"AF_INET\"]`, `\"~AF_PACKET\"`, `\"none\"`)"),
    key!("capability_bounding_set", SVC, Service, "CapabilityBoundingSet", Named("CAP_"), "Capabilities the service may ever have (`\"~CAP_SYS_ADMIN\"` removes)"),
    key!("ambient_capabilities", SVC, Service, "AmbientCapabilities", Named("CAP_"), "Capabilities given to a non-root service"),
    key!("read_write_paths", SVC, Service, "ReadWritePaths", PathList, "Paths writable despite protect_system"),
    key!("read_only_paths", SVC, Service, "ReadOnlyPaths", PathList, "Paths made read-only"),
    key!("system_call_filter", SVC, Service, "SystemCallFilter", Lines, "System call filters, one line each (`[\"@system-service\", \"~@privileged @resources\"]`: `~` denies)"),
    key!("memory_min", SVC, Service, "MemoryMin", Resource(ResourceKind::Size), "Memory protected from reclaim"),
    key!("memory_low", SVC, Service, "MemoryLow", Resource(ResourceKind::Size), "Memory protected unless the host is short"),
    key!("memory_high", SVC, Service, "MemoryHigh", Resource(ResourceKind::Size), "Throttle above this"),
    key!("memory_max", SVC, Service, "MemoryMax", Resource(ResourceKind::Size), "Hard memory limit"),
    key!("memory_swap_max", SVC, Service, "MemorySwapMax", Resource(ResourceKind::Size), "Swap limit"),
    key!("cpu_quota", SVC, Service, "CPUQuota", Resource(ResourceKind::Quota), "CPU time limit (`\"150%\"` = 1.5 CPUs)"),
    key!("cpu_weight", SVC, Service, "CPUWeight", Resource(ResourceKind::Weight { idle: true }), "CPU share, 1..10000 (`\"idle\"`)"),
    key!("io_weight", SVC, Service, "IOWeight", Resource(ResourceKind::Weight { idle: false }), "IO share, 1..10000"),
    key!("tasks_max", SVC, Service, "TasksMax", Resource(ResourceKind::Tasks), "Process/thread limit"),
    key!("allowed_cpus", SVC, Service, "AllowedCPUs", Resource(ResourceKind::Cpus), "CPUs the service may use"),
    key!("service_section", SVC, Service, "", Raw, "Raw `[Service]` directives (`LimitNOFILE: 65536`)"),
    key!("on_calendar", TMR, Timer, "OnCalendar", Lines, "Calendar events (`\"daily\"`, `\"Mon *-*-* 03:00\"`)"),
    key!("on_boot_sec", TMR, Timer, "OnBootSec", Durations, "Time after boot"),
    key!("on_startup_sec", TMR, Timer, "OnStartupSec", Durations, "Time after the manager started"),
    key!("on_unit_active_sec", TMR, Timer, "OnUnitActiveSec", Durations, "Time after the unit was last activated"),
    key!("on_unit_inactive_sec", TMR, Timer, "OnUnitInactiveSec", Durations, "Time after the unit was last deactivated"),
    key!("persistent", TMR, Timer, "Persistent", Bool, "Catch up on runs missed while off"),
    key!("accuracy_sec", TMR, Timer, "AccuracySec", Duration, "Allowed lateness"),
    key!("randomized_delay_sec", TMR, Timer, "RandomizedDelaySec", Duration, "Random delay added to each run"),
    key!("unit", TRIGGERS, Main, "Unit", UnitName, "The unit to activate (default: the same name as .service)"),
    key!("timer_section", TMR, Timer, "", Raw, "Raw `[Timer]` directives"),
    key!("listen_stream", SOCK, Socket, "ListenStream", Listen, "Stream sockets: a port, `\"127.0.0.1:7777\"`, `\"[::]:80\"` or a path"),
    key!("listen_datagram", SOCK, Socket, "ListenDatagram", Listen, "Datagram sockets"),
    key!("listen_sequential_packet", SOCK, Socket, "ListenSequentialPacket", Listen, "Sequential-packet sockets (AF_UNIX paths)"),
    key!("listen_fifo", SOCK, Socket, "ListenFIFO", AbsPaths, "FIFOs"),
    key!("accept", SOCK, Socket, "Accept", Bool, "One service instance per connection (the service must be a template, `NAME@.service`)"),
    key!("service", SOCK, Socket, "Service", UnitNameOf(UnitType::Service), "The service to activate (default: the socket's name as .service)"),
    key!("socket_user", SOCK, Socket, "SocketUser", Token, "Owner of AF_UNIX sockets and FIFOs"),
    key!("socket_group", SOCK, Socket, "SocketGroup", Token, "Group of AF_UNIX sockets and FIFOs"),
    key!("socket_mode", SOCK, Socket, "SocketMode", Mode, "Mode of AF_UNIX sockets and FIFOs (`\"0660\"`)"),
    key!("socket_section", SOCK, Socket, "", Raw, "Raw `[Socket]` directives"),
    key!("path_exists", PATH, Path, "PathExists", AbsPaths, "Activate while this path exists"),
    key!("path_exists_glob", PATH, Path, "PathExistsGlob", AbsPaths, "Activate while a path matching this glob exists"),
    key!("path_changed", PATH, Path, "PathChanged", AbsPaths, "Activate when this file is closed after writing, or moved/deleted"),
    key!("path_modified", PATH, Path, "PathModified", AbsPaths, "Activate on every write to this file"),
    key!("directory_not_empty", PATH, Path, "DirectoryNotEmpty", AbsPaths, "Activate while this directory has entries"),
    key!("make_directory", PATH, Path, "MakeDirectory", Bool, "Create the watched directories first"),
    key!("directory_mode", PATH_AND_MOUNTS, Main, "DirectoryMode", Mode, "Mode of directories created (`\"0755\"`)"),
    key!("path_section", PATH, Path, "", Raw, "Raw `[Path]` directives"),
    key!("what", MNT, Mount, "What", Text, "What to mount: a device, `\"tmpfs\"`, `\"server:/export\"`"),
    key!("where", MOUNTS, Main, "Where", Path { dash: false, tilde: false }, "Absolute mount point; names the unit (`/mnt/a b` → `mnt-a\\x20b.mount`)"),
    key!("type", MNT, Mount, "Type", Token, "File system type"),
    key!("options", MNT, Mount, "Options", MountOptions, "Mount options: `\"noatime,size=64M\"` or an array"),
    key!("sloppy_options", MNT, Mount, "SloppyOptions", Bool, "Ignore unknown options"),
    key!("lazy_unmount", MNT, Mount, "LazyUnmount", Bool, "Detach now, clean up when no longer busy"),
    key!("force_unmount", MNT, Mount, "ForceUnmount", Bool, "Force unmounting (NFS)"),
    key!("timeout_sec", MNT, Mount, "TimeoutSec", Duration, "Time allowed for the mount command"),
    key!("mount_section", MNT, Mount, "", Raw, "Raw `[Mount]` directives"),
    key!("timeout_idle_sec", AMNT, Automount, "TimeoutIdleSec", Duration, "Unmount after this long unused"),
    key!("automount_section", AMNT, Automount, "", Raw, "Raw `[Automount]` directives"),
    key!("wanted_by", ALL, Install, "WantedBy", Units, "Enable: a `.wants/` symlink is generated"),
    key!("required_by", ALL, Install, "RequiredBy", Units, "Enable: a `.requires/` symlink is generated"),
    key!("upheld_by", ALL, Install, "UpheldBy", Units, "Enable: a `.upholds/` symlink is generated (not written as `UpheldBy=`, which systemd 252 does not know)"),
    key!("alias", ALL, Install, "Alias", Units, "Other names: alias symlinks are generated"),
    key!("install_section", ALL, Install, "", Raw, "Raw `[Install]` directives (no symlinks are made for these)"),
    key!("orchestration", SVC, Service, "", Runtime(&shapes::ORCHESTRATION), "`requires`: dependencies computed at generation time; `startup_sequence`: steps run before start"),
    key!("hooks", SVC, Service, "", Runtime(&shapes::HOOKS), "Closures run around start and stop"),
    key!("monitor" | "monitoring", SVC, Service, "", Runtime(&shapes::MONITOR), "Periodic re-evaluation of resources and patterns"),
    key!("health" | "health_check", SVC, Service, "", Runtime(&shapes::HEALTH), "Health checks and what to do on failure"),
    key!("kernel_monitoring" | "pressure", SVC, Service, "", Runtime(&shapes::KERNEL), "PSI and cgroup memory triggers"),
    key!("pressure_response", SVC, Service, "", Runtime(&shapes::PRESSURE_RESPONSE), "Closure called on kernel pressure events"),
    key!("adaptive_resources", SVC, Service, "", Runtime(&shapes::ADAPTIVE), "Strategy closure called on kernel signals"),
];

/// FNV-1a: key names are short and trusted, so a simple hash beats
/// SipHash here (lookups run for every key of every declaration).
#[derive(Default)]
struct Fnv(u64);

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for b in bytes {
            h = (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
        self.0 = h;
    }
}

type Index = std::collections::HashMap<String, Vec<usize>, std::hash::BuildHasherDefault<Fnv>>;

/// Every name and alias, snake and kebab case, to its rows in [`KEYS`]
/// (a name has several rows when unit kinds read it differently: `type`).
fn index() -> &'static Index {
    static INDEX: std::sync::OnceLock<Index> = std::sync::OnceLock::new();
    INDEX.get_or_init(|| {
        let mut m = Index::default();
        for (i, k) in KEYS.iter().enumerate() {
            for name in std::iter::once(k.name).chain(k.aliases.iter().copied()) {
                for spelling in [name.to_string(), name.replace('_', "-")] {
                    let rows = m.entry(spelling).or_default();
                    if !rows.contains(&i) {
                        rows.push(i);
                    }
                }
            }
        }
        m
    })
}

fn rows(raw: &str) -> &'static [usize] {
    match index().get(raw) {
        Some(rows) => rows,
        // Mixed spellings (`after-service_x`) normalise first.
        None if raw.contains('-') => index().get(&normalize(raw)).map_or(&[], |r| r),
        None => &[],
    }
}

/// The key spelled `raw` (any alias, snake or kebab case), for any unit
/// kind: the first row when kinds read it differently.
pub fn lookup(raw: &str) -> Option<&'static KeySpec> {
    rows(raw).first().map(|i| &KEYS[*i])
}

/// The key spelled `raw` as units of `kind` read it.
pub fn lookup_in(raw: &str, kind: UnitKind) -> Option<&'static KeySpec> {
    rows(raw)
        .iter()
        .map(|i| &KEYS[*i])
        .find(|k| k.applies.contains(kind))
}

/// Position of a key in the table, which is the order directives are written.
pub fn order(spec: &KeySpec) -> usize {
    // Every &KeySpec the crate hands out points into KEYS.
    let base = KEYS.as_ptr() as usize;
    let at = spec as *const KeySpec as usize;
    let size = std::mem::size_of::<KeySpec>();
    if at >= base && at < base + std::mem::size_of_val(KEYS) {
        (at - base) / size
    } else {
        usize::MAX
    }
}

/// The key names and aliases that apply to a unit kind, for suggestions.
pub fn names_for(kind: UnitKind) -> impl Iterator<Item = &'static str> {
    KEYS.iter()
        .filter(move |k| k.applies.contains(kind))
        .flat_map(|k| std::iter::once(k.name).chain(k.aliases.iter().copied()))
}

/// The reference table of every key, in Markdown (`docs/keys.md`).
pub fn reference_markdown() -> String {
    let mut out = String::from(
        "# Definition keys\n\nGenerated from `crates/sparrow-lang/src/keys.rs` by \
         `cargo test -p sparrow-lang` (set `UPDATE_DOCS=1` to rewrite). Keys may also be \
         written in quoted kebab-case (`\"after-service\"`).\n\n\
         The *units* column says which unit kinds accept a key (`all`: service, timer, socket, \
         path, target, mount, automount, and drop-ins for them).\n\n\
         | key | aliases | units | becomes | value |\n|---|---|---|---|---|\n",
    );
    for k in KEYS {
        let aliases = k
            .aliases
            .iter()
            .map(|a| format!("`{a}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let applies = if k.applies == Applies::ALL {
            "all".to_string()
        } else {
            k.applies
                .kinds()
                .map(|u| u.unit_type().suffix())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let becomes = match k.kind {
            Kind::Runtime(_) => "runtime (systemd-sparrowd)".to_string(),
            Kind::Name => "the unit's name".to_string(),
            Kind::Raw => format!("`[{}]` pass-through", k.section.name()),
            _ => {
                let sections: Vec<&str> = match k.section {
                    Section::Main => {
                        let mut v: Vec<&str> =
                            k.applies.kinds().map(|u| k.section.of(u).name()).collect();
                        v.dedup();
                        v
                    }
                    s => vec![s.name()],
                };
                let sections: Vec<String> = sections.iter().map(|s| format!("`[{s}]`")).collect();
                format!("{} `{}=`", sections.join("/"), k.directive)
            }
        };
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} |\n",
            k.name,
            aliases,
            applies,
            becomes,
            k.doc.replace('|', "\\|")
        ));
    }
    out.push_str("\n## Runtime keys\n\n");
    for k in KEYS.iter().filter(|k| k.is_runtime()) {
        if let Kind::Runtime(shape) = k.kind {
            out.push_str(&format!("### `{}`\n\n", k.name));
            schema::describe(shape, 0, &mut out);
            out.push('\n');
        }
    }
    out
}

/// Whether a key is a resource-control property the daemon can change live.
pub fn is_resource(k: &KeySpec) -> bool {
    matches!(k.kind, Kind::Resource(_))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::edit_distance;

    #[test]
    fn names_are_unique_per_kind_and_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for k in KEYS {
            for n in std::iter::once(k.name).chain(k.aliases.iter().copied()) {
                for kind in k.applies.kinds() {
                    assert!(seen.insert((n, kind)), "{n} is given twice for {kind:?}");
                }
                assert!(n.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{n}");
            }
            let needs_directive = !matches!(k.kind, Kind::Raw | Kind::Runtime(_) | Kind::Name);
            assert_eq!(needs_directive, !k.directive.is_empty(), "{}", k.name);
        }
    }

    #[test]
    fn lookup_accepts_aliases_and_kebab_case() {
        assert_eq!(lookup("after-service").unwrap().name, "after_service");
        assert_eq!(lookup("workdir").unwrap().name, "working_directory");
        assert_eq!(lookup("command").unwrap().directive, "ExecStart");
        assert_eq!(lookup("health-check").unwrap().name, "health");
        assert!(lookup("memroy_max").is_none());
        // One name, read per kind.
        assert_eq!(
            lookup_in("type", UnitKind::Service).unwrap().directive,
            "Type"
        );
        assert!(matches!(
            lookup_in("type", UnitKind::Service).unwrap().kind,
            Kind::Enum(_)
        ));
        assert!(matches!(
            lookup_in("type", UnitKind::Mount).unwrap().kind,
            Kind::Token
        ));
        assert!(lookup_in("type", UnitKind::Timer).is_none());
        assert_eq!(
            lookup_in("unit", UnitKind::Path)
                .unwrap()
                .section
                .of(UnitKind::Path),
            Section::Path
        );
        assert_eq!(
            lookup_in("unit", UnitKind::Timer)
                .unwrap()
                .section
                .of(UnitKind::Timer),
            Section::Timer
        );
        assert!(lookup_in("listen_stream", UnitKind::Service).is_none());
        assert!(lookup_in("condition_path_exists", UnitKind::Target).is_some());
    }

    #[test]
    fn suggestions_catch_typos_only() {
        let check = |w: &str, want: Option<&str>| {
            assert_eq!(closest(w, names_for(UnitKind::Service)), want, "{w}");
        };
        check("memroy_max", Some("memory_max"));
        check("exec-strat", Some("exec_start"));
        check("descripton", Some("description"));
        check("wantedby", Some("wanted_by"));
        check("zzzzzzzzzzzz", None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    mod props {
        use super::super::*;
        use crate::names::edit_distance;
        use proptest::prelude::*;

        fn all_spellings() -> Vec<&'static str> {
            KEYS.iter()
                .flat_map(|k| std::iter::once(k.name).chain(k.aliases.iter().copied()))
                .collect()
        }

        proptest! {
            #[test]
            fn kebab_and_snake_spellings_agree(i in 0..200usize) {
                let names = all_spellings();
                let name = names[i % names.len()];
                let kebab = name.replace('_', "-");
                let a = lookup(name).map(|k| k.name);
                let b = lookup(&kebab).map(|k| k.name);
                prop_assert!(a.is_some());
                prop_assert_eq!(a, b);
            }

            #[test]
            fn lookup_accepts_exactly_the_known_spellings(s in "[a-z_-]{0,20}") {
                let known = all_spellings().contains(&normalize(&s).as_str());
                prop_assert_eq!(lookup(&s).is_some(), known);
            }

            #[test]
            fn normalize_is_idempotent(s in any::<String>()) {
                prop_assert_eq!(normalize(&normalize(&s)), normalize(&s));
            }

            #[test]
            fn suggestions_are_near_misses(s in "[a-z_-]{1,16}") {
                if let Some(c) = closest(&s, names_for(UnitKind::Service)) {
                    let limit = (s.chars().count() / 3).max(2);
                    prop_assert!(edit_distance(&normalize(&s), c) <= limit);
                }
            }
        }
    }
}
