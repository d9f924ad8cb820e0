//! Rules about whole units and the names of mounts and drop-ins: what
//! systemd would otherwise only report when it loads the unit.

use rhai::Dynamic;
use sparrow_unit::{UnitFile, UnitName};

use super::{push, Install, Problem, UnitKind};
use crate::keys::{KeySpec, Kind, Section};
use crate::value::Issue;

/// Whole-unit rules systemd would otherwise only report when loading.
pub(super) fn check_unit(
    file: &UnitFile,
    kind: UnitKind,
    name: &UnitName,
    install: &Install,
    problems: &mut Vec<Problem>,
) {
    let has = |section: &str, key: &str| !file.get(section, key).is_empty();
    match kind {
        UnitKind::Service => {
            let ty = file
                .get("Service", "Type")
                .last()
                .copied()
                .unwrap_or("simple");
            if !has("Service", "ExecStart") {
                if ty != "oneshot" {
                    push(problems, None, Issue::new("the service has no exec_start").help("add exec_start: [\"/path/to/program\", \"arg\"] (only type: \"oneshot\" services may go without)"));
                } else if !has("Service", "ExecStop") {
                    push(
                        problems,
                        None,
                        Issue::new("the oneshot service has neither exec_start nor exec_stop"),
                    );
                }
            } else if file.get("Service", "ExecStart").len() > 1 && ty != "oneshot" {
                push(
                    problems,
                    None,
                    Issue::new("several ExecStart= lines are only allowed for type: \"oneshot\""),
                );
            }
        }
        UnitKind::Timer => {
            let triggers = [
                "OnCalendar",
                "OnBootSec",
                "OnStartupSec",
                "OnUnitActiveSec",
                "OnUnitInactiveSec",
                "OnActiveSec",
            ];
            if !triggers.iter().any(|k| has("Timer", k)) {
                push(
                    problems,
                    None,
                    Issue::new("the timer has no trigger")
                        .help("add on_calendar: \"daily\" or on_boot_sec / on_unit_active_sec"),
                );
            }
        }
        UnitKind::Socket => {
            let listens = [
                "ListenStream",
                "ListenDatagram",
                "ListenSequentialPacket",
                "ListenFIFO",
            ];
            if !listens.iter().any(|k| has("Socket", k)) && !has_raw_listen(file) {
                push(
                    problems,
                    None,
                    Issue::new("the socket listens on nothing").help(
                        "add listen_stream: \"127.0.0.1:8080\" (or listen_datagram, listen_fifo)",
                    ),
                );
            }
            let accept = file.get("Socket", "Accept").last() == Some(&"yes");
            if accept && has("Socket", "Service") {
                push(
                    problems,
                    Some("service"),
                    Issue::new("service cannot be set on a socket with accept: true").help(
                        format!(
                            "systemd starts one {}@.service instance per connection",
                            name.stem()
                        ),
                    ),
                );
            }
            if let Some(svc) = file.get("Socket", "Service").last() {
                if !svc.ends_with(".service") || svc.contains("@.") {
                    push(
                        problems,
                        Some("service"),
                        Issue::new(format!("{svc:?} must name a service (not a template)")),
                    );
                }
            }
        }
        UnitKind::Path => {
            let watches = [
                "PathExists",
                "PathExistsGlob",
                "PathChanged",
                "PathModified",
                "DirectoryNotEmpty",
            ];
            if !watches.iter().any(|k| has("Path", k)) {
                push(
                    problems,
                    None,
                    Issue::new("the path unit watches nothing")
                        .help("add path_exists: \"/run/trigger\" (or path_changed, path_modified, directory_not_empty)"),
                );
            }
        }
        UnitKind::Mount => {
            if !has("Mount", "What") {
                push(
                    problems,
                    None,
                    Issue::new("the mount has no what")
                        .help("add what: \"/dev/disk/by-label/data\" (or \"tmpfs\")"),
                );
            }
        }
        UnitKind::Target | UnitKind::Automount => {}
    }
    if matches!(kind, UnitKind::Mount | UnitKind::Automount) && !install.alias.is_empty() {
        push(
            problems,
            Some("alias"),
            Issue::new("mount and automount units cannot have aliases (systemd names them after their path)"),
        );
    }
    for alias in &install.alias {
        let same_type = UnitName::parse(alias).is_ok_and(|a| a.unit_type() == name.unit_type());
        if !same_type {
            push(
                problems,
                Some("alias"),
                Issue::new(format!(
                    "alias {alias:?} must be a .{} name like the unit",
                    name.unit_type().suffix()
                )),
            );
        }
    }
}

/// `[Socket]` directives given through `socket_section` count as listening.
fn has_raw_listen(file: &UnitFile) -> bool {
    file.sections()
        .iter()
        .filter(|s| s.name() == "Socket")
        .flat_map(|s| s.entries())
        .any(|(k, _)| k.starts_with("Listen"))
}

/// Why a key cannot be set in a drop-in, if it cannot.
pub(super) fn dropin_refuses(spec: &KeySpec) -> Option<Issue> {
    if spec.is_runtime() {
        return Some(
            Issue::new(format!(
                "{:?} cannot be used in a drop-in: systemd-sparrowd acts only on units declared by definitions",
                spec.name
            ))
            .help("declare the whole unit with service(..) to give it runtime behaviour"),
        );
    }
    if spec.section == Section::Install {
        return Some(
            Issue::new(format!(
                "{:?} has no effect in a drop-in: [Install] of a packaged unit is read by systemctl enable from the unit's own file",
                spec.name
            ))
            .help("run systemctl enable UNIT, or add wants: [UNIT] to a target you declare"),
        );
    }
    if matches!(spec.kind, Kind::Name) || spec.name == "where" {
        return Some(Issue::new(format!(
            "{:?} cannot be changed by a drop-in: it names the unit",
            spec.name
        )));
    }
    None
}

/// A mount's name comes from its mount point, as systemd requires.
pub(super) fn mount_name(
    kind: UnitKind,
    entries: &[(&'static KeySpec, &str, &Dynamic)],
    problems: &mut Vec<Problem>,
) -> Option<String> {
    if !matches!(kind, UnitKind::Mount | UnitKind::Automount) {
        return None;
    }
    let Some((_, raw_key, v)) = entries.iter().find(|(s, _, _)| s.name == "where") else {
        push(
            problems,
            None,
            Issue::new(format!("the {} has no where", kind.unit_type().suffix()))
                .help("add where: \"/mnt/data\" (the unit is named after it)"),
        );
        return None;
    };
    let text = match crate::value::text(v) {
        Ok(t) => t.text,
        Err(issue) => {
            push(problems, Some(raw_key), issue);
            return None;
        }
    };
    match sparrow_unit::escape_path(&text) {
        Ok(stem) => Some(format!("{stem}.{}", kind.unit_type().suffix())),
        // The key's own check says "not an absolute path".
        Err(sparrow_unit::PathError::NotAbsolute) => None,
        Err(e) => {
            push(
                problems,
                Some(raw_key),
                Issue::new(format!("{text:?} cannot be a mount point: {e}")),
            );
            None
        }
    }
}

/// `50-sparrow-NAME.conf`, NAME given or the definition file's stem.
pub(super) fn dropin_file_name(
    given: Option<&str>,
    source_path: &str,
    problems: &mut Vec<Problem>,
) -> Option<String> {
    let stem = match given {
        Some(g) => g.to_string(),
        None => {
            let file = source_path.rsplit('/').next().unwrap_or(source_path);
            file.split_once('.')
                .map_or(file, |(stem, _)| stem)
                .to_string()
        }
    };
    let ok = !stem.is_empty()
        && stem.len() <= 200
        && stem
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.@:".contains(c))
        && !stem.starts_with('.');
    if !ok {
        push(
            problems,
            None,
            Issue::new(format!("{stem:?} cannot name a drop-in file"))
                .help("use letters, digits and -_.@: only, e.g. dropin(\"nginx.service\", \"limits\", #{..})"),
        );
        return None;
    }
    Some(format!("{}{stem}.conf", super::DROPIN_PREFIX))
}
