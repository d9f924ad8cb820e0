//! The vocabulary: every key a definition may use, as data.
//!
//! This table drives parsing (aliases, kebab-case), validation (value kinds),
//! rendering (section and directive), "did you mean" hints, and the reference
//! documentation (`docs/keys.md` is generated from it and checked by a test).
//! Adding a key means adding a row here and nothing else.

use sparrow_unit::UnitType;

/// The unit-file section a key is written to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Section {
    /// `[Unit]`
    Unit,
    /// `[Service]`
    Service,
    /// `[Timer]`
    Timer,
    /// `[Install]`
    Install,
}

impl Section {
    /// The section's name in a unit file.
    pub fn name(self) -> &'static str {
        match self {
            Section::Unit => "Unit",
            Section::Service => "Service",
            Section::Timer => "Timer",
            Section::Install => "Install",
        }
    }
}

/// Which kinds of unit accept a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applies {
    /// Services only.
    Service,
    /// Timers only.
    Timer,
    /// Both.
    Both,
}

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

macro_rules! key {
    ($name:literal $(| $alias:literal)*, $applies:ident, $section:ident, $directive:literal, $kind:expr, $doc:literal) => {
        KeySpec {
            name: $name,
            aliases: &[$($alias),*],
            applies: Applies::$applies,
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
    key!("name", Both, Unit, "", Name, "Unit name when declared with `service(map)` or a family; `service(NAME, ..)` takes precedence"),
    key!("description", Both, Unit, "Description", Text, "Human-readable description"),
    key!("documentation", Both, Unit, "Documentation", Tokens, "Documentation URIs (`man:nginx(8)`, `https://..`)"),
    key!("requires", Both, Unit, "Requires", Units, "Hard dependencies"),
    key!("wants", Both, Unit, "Wants", Units, "Soft dependencies"),
    key!("binds_to", Both, Unit, "BindsTo", Units, "Stop when these stop"),
    key!("part_of", Both, Unit, "PartOf", Units, "Restart/stop with these"),
    key!("upholds", Both, Unit, "Upholds", Units, "Keep these running"),
    key!("conflicts", Both, Unit, "Conflicts", Units, "Never run together with these"),
    key!("after", Both, Unit, "After", Units, "Start after these"),
    key!("after_service", Both, Unit, "After", UnitsOf(UnitType::Service), "Start after these services (`.service` added)"),
    key!("after_target", Both, Unit, "After", UnitsOf(UnitType::Target), "Start after these targets (`.target` added)"),
    key!("before", Both, Unit, "Before", Units, "Start before these"),
    key!("unit_section", Both, Unit, "", Raw, "Raw `[Unit]` directives, passed through after validation"),
    key!("type", Service, Service, "Type", Enum(TYPES), "Service type"),
    key!("user", Service, Service, "User", Token, "Run as this user"),
    key!("group", Service, Service, "Group", Token, "Run as this group"),
    key!("working_directory" | "workdir", Service, Service, "WorkingDirectory", Path { dash: true, tilde: true }, "Working directory"),
    key!("env" | "environment", Service, Service, "Environment", Env, "Environment variables, one `Environment=` each"),
    key!("environment_file", Service, Service, "EnvironmentFile", Paths, "Environment files (`-` prefix: optional)"),
    key!("pid_file", Service, Service, "PIDFile", Path { dash: false, tilde: false }, "PID file of a forking service"),
    key!("exec_start_pre", Service, Service, "ExecStartPre", Commands, "Commands run before the main process"),
    key!("exec_start" | "start" | "command", Service, Service, "ExecStart", Command, "The main command: a string as written, or an argv array"),
    key!("exec_start_post", Service, Service, "ExecStartPost", Commands, "Commands run after the main process started"),
    key!("exec_reload" | "reload", Service, Service, "ExecReload", Commands, "Commands that reload the service"),
    key!("exec_stop" | "stop", Service, Service, "ExecStop", Commands, "Commands that stop the service"),
    key!("exec_stop_post", Service, Service, "ExecStopPost", Commands, "Commands run after the service stopped"),
    key!("restart", Service, Service, "Restart", Enum(RESTARTS), "When to restart"),
    key!("restart_sec", Service, Service, "RestartSec", Duration, "Delay before a restart"),
    key!("timeout_start_sec", Service, Service, "TimeoutStartSec", Duration, "Start timeout"),
    key!("timeout_stop_sec", Service, Service, "TimeoutStopSec", Duration, "Stop timeout"),
    key!("watchdog_sec", Service, Service, "WatchdogSec", Duration, "Watchdog interval (the service must ping)"),
    key!("notify_access", Service, Service, "NotifyAccess", Enum(NOTIFY_ACCESS), "Who may send sd_notify messages"),
    key!("kill_mode", Service, Service, "KillMode", Enum(KILL_MODES), "Which processes are killed on stop"),
    key!("oom_score_adjust" | "oom_score", Service, Service, "OOMScoreAdjust", Int(-1000, 1000), "OOM killer preference, -1000..1000"),
    key!("memory_min", Service, Service, "MemoryMin", Resource(ResourceKind::Size), "Memory protected from reclaim"),
    key!("memory_low", Service, Service, "MemoryLow", Resource(ResourceKind::Size), "Memory protected unless the host is short"),
    key!("memory_high", Service, Service, "MemoryHigh", Resource(ResourceKind::Size), "Throttle above this"),
    key!("memory_max", Service, Service, "MemoryMax", Resource(ResourceKind::Size), "Hard memory limit"),
    key!("memory_swap_max", Service, Service, "MemorySwapMax", Resource(ResourceKind::Size), "Swap limit"),
    key!("cpu_quota", Service, Service, "CPUQuota", Resource(ResourceKind::Quota), "CPU time limit (`\"150%\"` = 1.5 CPUs)"),
    key!("cpu_weight", Service, Service, "CPUWeight", Resource(ResourceKind::Weight { idle: true }), "CPU share, 1..10000 (`\"idle\"`)"),
    key!("io_weight", Service, Service, "IOWeight", Resource(ResourceKind::Weight { idle: false }), "IO share, 1..10000"),
    key!("tasks_max", Service, Service, "TasksMax", Resource(ResourceKind::Tasks), "Process/thread limit"),
    key!("allowed_cpus", Service, Service, "AllowedCPUs", Resource(ResourceKind::Cpus), "CPUs the service may use"),
    key!("service_section", Service, Service, "", Raw, "Raw `[Service]` directives (`LimitNOFILE: 65536`)"),
    key!("on_calendar", Timer, Timer, "OnCalendar", Lines, "Calendar events (`\"daily\"`, `\"Mon *-*-* 03:00\"`)"),
    key!("on_boot_sec", Timer, Timer, "OnBootSec", Durations, "Time after boot"),
    key!("on_startup_sec", Timer, Timer, "OnStartupSec", Durations, "Time after the manager started"),
    key!("on_unit_active_sec", Timer, Timer, "OnUnitActiveSec", Durations, "Time after the unit was last activated"),
    key!("on_unit_inactive_sec", Timer, Timer, "OnUnitInactiveSec", Durations, "Time after the unit was last deactivated"),
    key!("persistent", Timer, Timer, "Persistent", Bool, "Catch up on runs missed while off"),
    key!("accuracy_sec", Timer, Timer, "AccuracySec", Duration, "Allowed lateness"),
    key!("randomized_delay_sec", Timer, Timer, "RandomizedDelaySec", Duration, "Random delay added to each run"),
    key!("unit", Timer, Timer, "Unit", UnitName, "The unit to activate (default: the timer's name as .service)"),
    key!("timer_section", Timer, Timer, "", Raw, "Raw `[Timer]` directives"),
    key!("wanted_by", Both, Install, "WantedBy", Units, "Enable: a `.wants/` symlink is generated"),
    key!("required_by", Both, Install, "RequiredBy", Units, "Enable: a `.requires/` symlink is generated"),
    key!("upheld_by", Both, Install, "UpheldBy", Units, "Enable: a `.upholds/` symlink is generated (not written as `UpheldBy=`, which systemd 252 does not know)"),
    key!("alias", Both, Install, "Alias", Units, "Other names: alias symlinks are generated"),
    key!("install_section", Both, Install, "", Raw, "Raw `[Install]` directives (no symlinks are made for these)"),
    key!("orchestration", Service, Service, "", Runtime(&shapes::ORCHESTRATION), "`requires`: dependencies computed at generation time; `startup_sequence`: steps run before start"),
    key!("hooks", Service, Service, "", Runtime(&shapes::HOOKS), "Closures run around start and stop"),
    key!("monitor" | "monitoring", Service, Service, "", Runtime(&shapes::MONITOR), "Periodic re-evaluation of resources and patterns"),
    key!("health" | "health_check", Service, Service, "", Runtime(&shapes::HEALTH), "Health checks and what to do on failure"),
    key!("kernel_monitoring" | "pressure", Service, Service, "", Runtime(&shapes::KERNEL), "PSI and cgroup memory triggers"),
    key!("pressure_response", Service, Service, "", Runtime(&shapes::PRESSURE_RESPONSE), "Closure called on kernel pressure events"),
    key!("adaptive_resources", Service, Service, "", Runtime(&shapes::ADAPTIVE), "Strategy closure called on kernel signals"),
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

type Index = std::collections::HashMap<String, usize, std::hash::BuildHasherDefault<Fnv>>;

/// Every name and alias, snake and kebab case, to its position in [`KEYS`].
fn index() -> &'static Index {
    static INDEX: std::sync::OnceLock<Index> = std::sync::OnceLock::new();
    INDEX.get_or_init(|| {
        let mut m = Index::default();
        for (i, k) in KEYS.iter().enumerate() {
            for name in std::iter::once(k.name).chain(k.aliases.iter().copied()) {
                m.entry(name.to_string()).or_insert(i);
                m.entry(name.replace('_', "-")).or_insert(i);
            }
        }
        m
    })
}

/// The key spelled `raw` (any alias, snake or kebab case).
pub fn lookup(raw: &str) -> Option<&'static KeySpec> {
    match index().get(raw) {
        Some(i) => Some(&KEYS[*i]),
        // Mixed spellings (`after-service_x`) normalise first.
        None if raw.contains('-') => index().get(&normalize(raw)).map(|i| &KEYS[*i]),
        None => None,
    }
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
pub fn names_for(applies: Applies) -> impl Iterator<Item = &'static str> {
    KEYS.iter()
        .filter(move |k| k.applies == Applies::Both || k.applies == applies)
        .flat_map(|k| std::iter::once(k.name).chain(k.aliases.iter().copied()))
}

/// The reference table of every key, in Markdown (`docs/keys.md`).
pub fn reference_markdown() -> String {
    let mut out = String::from(
        "# Definition keys\n\nGenerated from `crates/sparrow-lang/src/keys.rs` by \
         `cargo test -p sparrow-lang` (set `UPDATE_DOCS=1` to rewrite). Keys may also be \
         written in quoted kebab-case (`\"after-service\"`).\n\n\
         | key | aliases | units | becomes | value |\n|---|---|---|---|---|\n",
    );
    for k in KEYS {
        let aliases = k
            .aliases
            .iter()
            .map(|a| format!("`{a}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let applies = match k.applies {
            Applies::Service => "service",
            Applies::Timer => "timer",
            Applies::Both => "service, timer",
        };
        let becomes = match k.kind {
            Kind::Runtime(_) => "runtime (systemd-sparrowd)".to_string(),
            Kind::Name => "the unit's name".to_string(),
            Kind::Raw => format!("`[{}]` pass-through", k.section.name()),
            _ => format!("`[{}]` `{}=`", k.section.name(), k.directive),
        };
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} |\n",
            k.name, aliases, applies, becomes, k.doc
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
    fn names_are_unique_and_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for k in KEYS {
            for n in std::iter::once(k.name).chain(k.aliases.iter().copied()) {
                assert!(seen.insert(n), "duplicate key name {n}");
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
    }

    #[test]
    fn suggestions_catch_typos_only() {
        let check = |w: &str, want: Option<&str>| {
            assert_eq!(closest(w, names_for(Applies::Service)), want, "{w}");
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
                if let Some(c) = closest(&s, names_for(Applies::Service)) {
                    let limit = (s.chars().count() / 3).max(2);
                    prop_assert!(edit_distance(&normalize(&s), c) <= limit);
                }
            }
        }
    }
}
