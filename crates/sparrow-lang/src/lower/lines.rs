//! Lines the runtime keys add to a service: the hook runner's `Exec*=`
//! lines, and what `kernel_monitoring.cgroup_memory` renders.

use super::*;

/// The stages `systemd-sparrow hook run UNIT STAGE` runs, the directive
/// that calls each, and whether its failure is ignored (`-`): a failing
/// `pre_stop` or `post_stop` must not keep a unit from stopping. `pre_start`
/// runs before the startup sequence: it is the gate, the sequence the work.
const HOOK_STAGES: &[(&str, &str, &str, bool)] = &[
    ("hooks", "pre_start", "ExecStartPre", false),
    ("orchestration", "startup_sequence", "ExecStartPre", false),
    ("hooks", "post_start", "ExecStartPost", false),
    ("hooks", "pre_stop", "ExecStop", true),
    ("hooks", "post_stop", "ExecStopPost", true),
];

/// One generated command line per hook stage the unit has, calling the
/// hook runner by absolute path with `%n` (the full unit name, so that a
/// template's instances run with their own name). `pre_stop` goes ahead of
/// the unit's own `ExecStop=` lines; the others after the unit's own.
pub(super) fn hook_lines(
    runtime: &BTreeMap<String, RtValue>,
    file: &mut UnitFile,
    hook_runner: &dyn Fn() -> String,
    problems: &mut Vec<Problem>,
) {
    let present = |key: &str, stage: &str| match runtime.get(key).and_then(|v| v.get(stage)) {
        Some(RtValue::List(steps)) => !steps.is_empty(),
        Some(_) => true,
        None => false,
    };
    let wanted: Vec<_> = HOOK_STAGES
        .iter()
        .filter(|(key, stage, _, _)| present(key, stage))
        .collect();
    if wanted.is_empty() {
        return;
    }
    let runner = hook_runner();
    if !crate::host::plain_path(&runner) {
        push(
            problems,
            None,
            Issue::new(format!(
                "the hook runner path {runner:?} must be absolute and need no quoting"
            ))
            .help("set SYSTEMD_SPARROW_HOOK_RUNNER to a plain absolute path"),
        );
        return;
    }
    let sect = file.section("Service").expect("valid section");
    for (_, stage, directive, ignore) in wanted {
        let line = Value::Verbatim(format!(
            // `--`: a unit name may start with `-`.
            "{}{runner} hook run -- %n {stage}",
            if *ignore { "-" } else { "" }
        ));
        let pushed = if *directive == "ExecStop" {
            sect.push_first(directive, &line)
        } else {
            sect.push(directive, &line)
        };
        if let Err(e) = pushed {
            push(problems, None, Issue::new(format!("{directive}: {e}")));
        }
    }
}

/// What `kernel_monitoring.cgroup_memory` renders: `oom_score` as
/// `OOMScoreAdjust=`, and `high_threshold` as `MemoryHigh=` at that share of
/// `MemoryMax=` (the kernel then counts `high` events in `memory.events`,
/// which the daemon watches), unless the unit sets `MemoryHigh=` itself.
pub(super) fn kernel_lines(
    runtime: &BTreeMap<String, RtValue>,
    file: &mut UnitFile,
    problems: &mut Vec<Problem>,
) {
    let Some(memory) = runtime
        .get("kernel_monitoring")
        .and_then(|k| k.get("cgroup_memory"))
    else {
        return;
    };
    let set = |file: &mut UnitFile, problems: &mut Vec<Problem>, key: &str, value: String| {
        let sect = file.section("Service").expect("valid section");
        // Numbers and percentages we formatted: nothing to escape (a
        // literal `%` must not become `%%`, which these keys do not unescape).
        if let Err(e) = sect.push(key, &Value::Verbatim(value)) {
            push(
                problems,
                Some("kernel_monitoring"),
                Issue::new(e.to_string()),
            );
        }
    };
    if let Some(RtValue::Int(score)) = memory.get("oom_score") {
        match file.get("Service", "OOMScoreAdjust").last() {
            Some(own) if *own != score.to_string() => push(
                problems,
                Some("kernel_monitoring"),
                Issue::new(format!(
                    "`cgroup_memory.oom_score` ({score}) and `oom_score_adjust` ({own}) disagree"
                ))
                .help("keep one of them"),
            ),
            Some(_) => {}
            None => set(file, problems, "OOMScoreAdjust", score.to_string()),
        }
    }
    let Some(RtValue::Percent(share)) = memory.get("high_threshold") else {
        return;
    };
    if !file.get("Service", "MemoryHigh").is_empty() {
        return;
    }
    let Some(max) = file
        .get("Service", "MemoryMax")
        .last()
        .map(|m| m.to_string())
    else {
        return; // checks.rs notes that there is nothing to take a share of
    };
    let high = if let Some(p) = max.strip_suffix('%') {
        p.parse::<f64>().ok().map(|p| {
            let v = p * share / 100.0;
            // systemd takes at most two decimals of a percentage.
            if v.fract() == 0.0 {
                format!("{v:.0}%")
            } else {
                format!("{v:.2}%")
            }
        })
    } else {
        crate::value::parse_size(&max)
            .ok()
            .map(|b| ((b as f64 * share / 100.0) as u64).to_string())
    };
    if let Some(high) = high {
        set(file, problems, "MemoryHigh", high);
    }
}
