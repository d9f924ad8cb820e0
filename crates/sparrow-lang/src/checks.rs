//! Checks on what a definition declared, after it ran: notes for runtime
//! keys not acted on yet, and the rules of shebang unit files.

use std::path::PathBuf;

use sparrow_unit::UnitName;

use crate::diag::{Diagnostic, Severity};
use crate::keys;
use crate::lower::{RawDecl, UnitDecl};

/// Keys of `unit` this version checks but does not act on, with a note for
/// each (canonical key, message). Acted on: `monitor` (its `resources`
/// closure and hysteresis settings), `hooks` (the hook runner),
/// `orchestration` (`requires` at generation time, `startup_sequence` by
/// the hook runner), `health` and dynamic resource properties; the rest
/// waits for later parts of runtime mode.
pub(crate) fn not_acted_on(unit: &UnitDecl) -> Vec<(String, String)> {
    let rt = &unit.runtime;
    let mut out: Vec<(String, String)> = Vec::new();
    let high = rt.kernel.as_ref().and_then(|k| k.memory_high_threshold);
    if high.is_some() && unit.file.get("Service", "MemoryMax").is_empty() {
        out.push((
            "kernel_monitoring".into(),
            "`cgroup_memory.high_threshold` is a share of `memory_max`, which this unit does not set: no `MemoryHigh=` is written and no memory-high event can come".into(),
        ));
    }
    if unit.name.is_template() {
        // Hooks and sequences run per instance (`%n`); the daemon does not
        // track instances yet.
        for (key, present) in [
            ("health", rt.health.is_some()),
            (
                "monitor",
                rt.monitor.resources.is_some() || rt.monitor.pattern_check.is_some(),
            ),
            ("kernel_monitoring", rt.kernel.is_some()),
        ] {
            if present {
                out.push((
                    key.to_string(),
                    format!("`{key}` of a template is checked but not acted on yet: systemd-sparrowd does not manage template instances"),
                ));
            }
        }
    }
    for key in &unit.dynamic_keys {
        let live = keys::lookup(key).is_some_and(keys::is_resource);
        if !live {
            out.push((
                key.to_string(),
                format!("`{key}` is a dynamic property that is evaluated once, by the generator; only resource keys are re-evaluated while the service runs"),
            ));
        }
    }
    out
}

/// Checks the declarations of a shebang unit file named `name`, filling in
/// the name where the script left it out.
pub(crate) fn unit_file_problem(
    decls: &mut [RawDecl],
    name: &UnitName,
    source: &str,
) -> Option<Diagnostic> {
    let problem = |line: usize, col: usize, message: String| {
        Diagnostic {
        severity: Severity::Error,
        file: PathBuf::from(source),
        line,
        col,
        len: 1,
        message,
        help: Some(format!("a shebang unit declares exactly one unit, {name}; service(#{{ .. }}) takes the file's name")),
    }
    };
    let [d] = decls else {
        return Some(problem(
            1,
            1,
            format!("{} declares {} units", name, decls.len()),
        ));
    };
    let kind_ok = d.dropin.is_none() && d.kind.unit_type() == name.unit_type();
    let (line, col) = (
        d.place.pos.line().unwrap_or(1),
        d.place.pos.position().unwrap_or(1),
    );
    if !kind_ok {
        return Some(problem(
            line,
            col,
            format!(
                "the file {name} must declare a .{} unit",
                name.unit_type().suffix()
            ),
        ));
    }
    let given = d
        .name
        .clone()
        .or_else(|| d.map.get("name").and_then(|n| n.clone().into_string().ok()));
    match given {
        None => d.name = Some(name.to_string()),
        Some(g) => {
            let same = UnitName::of_type(&g, name.unit_type()).is_ok_and(|n| &n == name);
            if !same {
                return Some(problem(
                    line,
                    col,
                    format!("the file is named {name} but declares {g:?}"),
                ));
            }
        }
    }
    None
}
