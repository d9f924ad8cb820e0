//! The runtime drop-in a pattern monitor's environment lives in:
//! `/run/systemd/system/UNIT.d/50-sparrow-pattern.conf`, `Environment=`
//! lines on top of the unit's own (drop-ins come after the unit file, and a
//! later assignment of a variable wins). Under `/run`, so a reboot forgets
//! it; written with the unit-file renderer, so a value cannot add a line or
//! a directive (`%` and `$` are escaped, control characters refused).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sparrow_unit::{UnitFile, UnitName, Value, Word};

/// Where runtime units and drop-ins live.
pub const RUNTIME_DIR: &str = "/run/systemd/system";
/// The drop-in's file name.
pub const FILE: &str = "50-sparrow-pattern.conf";

/// The drop-in's path for `unit` under `dir`.
pub fn path(dir: &Path, unit: &str) -> Result<PathBuf, String> {
    // A unit name is one path component without `/`: nothing outside `dir`.
    let name = UnitName::parse(unit).map_err(|e| format!("{unit:?}: {e}"))?;
    Ok(dir.join(format!("{name}.d")).join(FILE))
}

/// The drop-in's text.
pub fn render(unit: &str, env: &BTreeMap<String, String>) -> Result<String, String> {
    let mut file = UnitFile::new();
    file.comment(&format!(
        "Written by systemd-sparrowd: the environment {unit}'s monitor.pattern_check returned. \
         Removed when it returns none."
    ));
    let sect = file.section("Service").map_err(|e| e.to_string())?;
    for (k, v) in env {
        sect.push(
            "Environment",
            &Value::Env(k.clone(), Word::Literal(v.clone())),
        )
        .map_err(|e| format!("environment {k:?}: {e}"))?;
    }
    Ok(file.render())
}

/// Writes `env` as `unit`'s drop-in under `dir`, or removes the drop-in
/// (`None`).
pub fn write_environment(
    dir: &Path,
    unit: &str,
    env: Option<&BTreeMap<String, String>>,
) -> Result<(), String> {
    let file = path(dir, unit)?;
    match env {
        Some(env) => {
            let text = render(unit, env)?;
            sparrow_source::atomic::write_file(&file, text.as_bytes())
                .map_err(|e| format!("{}: {e}", file.display()))
        }
        None => {
            match std::fs::remove_file(&file) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(format!("{}: {e}", file.display()));
                }
                _ => {}
            }
            // The directory, if nothing else is in it.
            if let Some(d) = file.parent() {
                let _ = std::fs::remove_dir(d);
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_is_written_escaped_and_removed_again() {
        let dir = tempfile::tempdir().unwrap();
        let env: BTreeMap<String, String> = [
            ("MODE".to_string(), "safe $HOME 50%".to_string()),
            ("LEVEL".to_string(), "2".to_string()),
        ]
        .into();
        write_environment(dir.path(), "web.service", Some(&env)).unwrap();
        let f = dir.path().join("web.service.d").join(FILE);
        let text = std::fs::read_to_string(&f).unwrap();
        let parsed = sparrow_unit::parse::parse(&text).unwrap();
        assert_eq!(
            parsed.get("Service", "Environment"),
            // `%` is a specifier (escaped); Environment= does not expand `$`.
            ["\"LEVEL=2\"", "\"MODE=safe $HOME 50%%\""],
            "{text}"
        );
        // Replaced in place.
        let one: BTreeMap<String, String> = [("MODE".to_string(), "x".to_string())].into();
        write_environment(dir.path(), "web.service", Some(&one)).unwrap();
        assert!(std::fs::read_to_string(&f).unwrap().contains("\"MODE=x\""));
        write_environment(dir.path(), "web.service", None).unwrap();
        assert!(!f.exists() && !dir.path().join("web.service.d").exists());
        // Nothing there: still fine.
        write_environment(dir.path(), "web.service", None).unwrap();
        // A newline cannot add a line; a name cannot leave the directory.
        let bad: BTreeMap<String, String> =
            [("A".to_string(), "1\nExecStart=/bin/evil".to_string())].into();
        assert!(write_environment(dir.path(), "web.service", Some(&bad)).is_err());
        assert!(write_environment(dir.path(), "../x.service", Some(&one)).is_err());
        let bad_name: BTreeMap<String, String> = [("A B".to_string(), "1".to_string())].into();
        assert!(write_environment(dir.path(), "web.service", Some(&bad_name)).is_err());
    }
}
