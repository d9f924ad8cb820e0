//! `check`'s look at dependencies: a unit named in `After=`, `Requires=`,
//! `Wants=` (and the like) that nothing on this host provides is most
//! likely a typo or the wrong suffix (`network-online.service` for
//! `network-online.target`). systemd only ignores such a dependency, so
//! `check` warns, with the closest name it knows.

use std::collections::BTreeSet;
use std::path::PathBuf;

use sparrow_generator::Generated;
use sparrow_lang::{Diagnostic, Severity};

/// The directives whose values name units this one depends on or orders
/// itself against.
const DIRECTIVES: &[&str] = &[
    "After",
    "Before",
    "Requires",
    "Wants",
    "BindsTo",
    "PartOf",
    "Requisite",
    "Upholds",
];

/// Units systemd has without a file.
const BUILT_IN: &[&str] = &["-.slice", "system.slice", "init.scope"];

/// Where systemd finds unit files: `SYSTEMD_UNIT_PATH` (what systemd
/// itself reads), else the system directories.
pub fn unit_dirs(env: &dyn Fn(&str) -> Option<String>) -> Vec<PathBuf> {
    match env("SYSTEMD_UNIT_PATH") {
        Some(p) if !p.is_empty() => p
            .split(':')
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .collect(),
        _ => [
            "/etc/systemd/system",
            "/run/systemd/system",
            "/usr/local/lib/systemd/system",
            "/usr/lib/systemd/system",
            "/lib/systemd/system",
        ]
        .iter()
        .map(PathBuf::from)
        .collect(),
    }
}

/// The unit names in `dirs` (files and symlinks: aliases count), or
/// `None` when none of the directories exists (not a systemd host).
pub fn known_units(dirs: &[PathBuf]) -> Option<BTreeSet<String>> {
    let mut names = BTreeSet::new();
    let mut any = false;
    for d in dirs {
        let Ok(entries) = std::fs::read_dir(d) else {
            continue;
        };
        any = true;
        names.extend(
            entries
                .filter_map(Result::ok)
                .filter_map(|e| e.file_name().into_string().ok()),
        );
    }
    any.then_some(names)
}

/// Warnings for the dependencies of `units` that neither `known` nor the
/// units themselves provide. Only kinds that come from unit files are
/// looked at (mounts, devices, swaps, slices and scopes are often made by
/// other generators or by systemd itself).
pub fn unknown(units: &[Generated], known: &BTreeSet<String>) -> Vec<Diagnostic> {
    let mut have: BTreeSet<&str> = known.iter().map(String::as_str).collect();
    have.extend(
        units
            .iter()
            .filter(|u| u.dropin.is_none())
            .map(|u| u.name.as_str()),
    );
    have.extend(BUILT_IN);
    let mut out = Vec::new();
    // A warning about `u` for a missing `name`, with the close one.
    let missing = |u: &Generated, name: &str, message: String| Diagnostic {
        severity: Severity::Warning,
        file: u.source.clone(),
        line: u.line,
        col: 1,
        len: 1,
        message,
        help: suggestion(name, &have).map(|s| format!("did you mean {s}?")),
    };
    for u in units {
        if u.dropin.is_some() && !provided(u.name.as_str(), &have) {
            out.push(missing(
                u,
                u.name.as_str(),
                format!(
                    "drop-in {}: no unit file on this host provides {} (the drop-in does nothing until one does)",
                    u.rel_path(),
                    u.name
                ),
            ));
        }
        let Ok(parsed) = sparrow_unit::parse::parse(&u.text) else {
            continue;
        };
        for directive in DIRECTIVES {
            for name in parsed
                .get("Unit", directive)
                .iter()
                .flat_map(|v| v.split_whitespace())
            {
                if provided(name, &have) || !checked_kind(name) {
                    continue;
                }
                let effect = if matches!(*directive, "Requires" | "BindsTo" | "Requisite") {
                    "starting the unit will fail"
                } else {
                    "systemd ignores it"
                };
                out.push(missing(
                    u,
                    name,
                    format!(
                        "{}: {directive}={name}, but no unit file on this host provides {name} ({effect})",
                        u.name
                    ),
                ));
            }
        }
    }
    out
}

fn checked_kind(name: &str) -> bool {
    [".service", ".target", ".socket", ".timer", ".path"]
        .iter()
        .any(|s| name.ends_with(s))
}

/// Whether `name` is there, an instance through its template included.
fn provided(name: &str, have: &BTreeSet<&str>) -> bool {
    if have.contains(name) {
        return true;
    }
    match (name.split_once('@'), name.rsplit_once('.')) {
        (Some((prefix, _)), Some((_, suffix))) => {
            have.contains(format!("{prefix}@.{suffix}").as_str())
        }
        _ => false,
    }
}

/// The same name with another suffix, else the closest by edit distance.
fn suggestion(name: &str, have: &BTreeSet<&str>) -> Option<String> {
    let (stem, _) = name.rsplit_once('.')?;
    if let Some(other) = have
        .iter()
        .find(|h| h.rsplit_once('.').is_some_and(|(s, _)| s == stem))
    {
        return Some(other.to_string());
    }
    let limit = (name.chars().count() / 4).max(2);
    have.iter()
        .map(|h| (sparrow_lang::edit_distance(name, h), h))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, h)| h.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(names: &[&'static str]) -> BTreeSet<&'static str> {
        names.iter().copied().collect()
    }

    #[test]
    fn suggestions_prefer_the_same_name_with_another_suffix() {
        let have = set(&[
            "network-online.target",
            "network.target",
            "postgresql.service",
        ]);
        assert_eq!(
            suggestion("network-online.service", &have).as_deref(),
            Some("network-online.target")
        );
        assert_eq!(
            suggestion("postgresl.service", &have).as_deref(),
            Some("postgresql.service")
        );
        assert_eq!(suggestion("zzz.service", &have), None);
    }

    #[test]
    fn instances_are_provided_by_their_template() {
        let have = set(&["getty@.service"]);
        assert!(provided("getty@tty1.service", &have));
        assert!(!provided("other@tty1.service", &have));
        assert!(!checked_kind("tmp.mount"));
    }
}
