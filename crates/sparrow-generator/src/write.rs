//! Writing units and their `[Install]` symlinks, without ever following a
//! link or leaving the output directory (through `sparrow_source::atomic`).
//!
//! Every path is resolved relative to a descriptor of the output directory
//! (`openat`, `symlinkat`, `renameat`), one name component at a time:
//!
//! - a unit file is created with `O_CREAT|O_EXCL|O_NOFOLLOW`; when its name
//!   is taken (writing into a directory that already has units, or where
//!   something was planted) it is written under a fresh temporary name,
//!   also `O_EXCL|O_NOFOLLOW`, and renamed over the old entry, which
//!   replaces a planted symlink instead of following it;
//! - a `*.wants/` directory is opened with `O_DIRECTORY|O_NOFOLLOW`, so a
//!   symlink planted in its place is an error, not an escape;
//! - link and target names are unit names (no `/`), checked again here.
//!
//! Temporary names are short (`.#sparrow.PID.N`), so units up to systemd's
//! 255-byte name limit can be written.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use sparrow_source::atomic::Dir;

use sparrow_lang::Install;
use sparrow_unit::UnitName;

use crate::Generated;

/// A path that could not be written, and why.
#[derive(Debug, thiserror::Error)]
#[error("{}: {error}", path.display())]
pub struct WriteError {
    /// The path.
    pub path: PathBuf,
    /// The error.
    pub error: io::Error,
}

/// The symlinks a unit's `[Install]` section asks for, relative to the
/// output directory: `(directory or "", link name, link target)`.
/// Templates need an instance (`DefaultInstance=`); without one their
/// wants-links are skipped and a message is returned instead. Names that
/// are not unit names are refused here too (the language checks them
/// first; this is the last line before the file system).
pub fn install_links(
    unit: &UnitName,
    install: &Install,
) -> (Vec<(String, String, String)>, Vec<String>) {
    let mut links = Vec::new();
    let mut notes = Vec::new();
    let name = unit.as_str();
    let target = format!("../{name}");
    let link_name = if unit.is_template() {
        match &install.default_instance {
            Some(inst) => match unit.instance(inst) {
                Some(Ok(n)) => Some(n.to_string()),
                _ => {
                    notes.push(format!(
                        "{name}: DefaultInstance={inst} does not make a valid unit name"
                    ));
                    None
                }
            },
            None => None,
        }
    } else {
        Some(name.to_string())
    };
    let lists = [
        ("wants", &install.wanted_by),
        ("requires", &install.required_by),
        ("upholds", &install.upheld_by),
    ];
    for (suffix, targets) in lists {
        for t in targets {
            if UnitName::parse(t).is_err() {
                notes.push(format!("{name}: {t:?} is not a unit name; no link made"));
                continue;
            }
            match &link_name {
                Some(l) => links.push((format!("{t}.{suffix}"), l.clone(), target.clone())),
                None => notes.push(format!(
                    "{name} is a template: no {t}.{suffix} link without DefaultInstance= (install_section: #{{ DefaultInstance: \"x\" }})"
                )),
            }
        }
    }
    for alias in &install.alias {
        if UnitName::parse(alias).is_err() {
            notes.push(format!(
                "{name}: alias {alias:?} is not a unit name; no link made"
            ));
            continue;
        }
        links.push((String::new(), alias.clone(), name.to_string()));
    }
    (links, notes)
}

/// Writes units below an output directory (and shebang units below the
/// early one), keeping the directories it has opened.
pub struct Writer {
    normal: (PathBuf, Dir),
    early: (PathBuf, Dir),
    subdirs: HashMap<(bool, String), Dir>,
}

impl Writer {
    /// Opens the output directories (which must exist, as systemd makes them).
    pub fn open(normal: &Path, early: &Path) -> Result<Writer, WriteError> {
        let open = |p: &Path| {
            Dir::open(p).map_err(|error| WriteError {
                path: p.to_path_buf(),
                error,
            })
        };
        Ok(Writer {
            normal: (normal.to_path_buf(), open(normal)?),
            early: (early.to_path_buf(), open(early)?),
            subdirs: HashMap::new(),
        })
    }

    /// Writes one unit and its symlinks; returns notes (skipped links).
    pub fn write(&mut self, unit: &Generated) -> Result<Vec<String>, WriteError> {
        let (base, dir) = if unit.early {
            (&self.early.0, &self.early.1)
        } else {
            (&self.normal.0, &self.normal.1)
        };
        let name = unit.name.as_str();
        if let Some(file) = &unit.dropin {
            // A drop-in: NAME.d/FILE, and no [Install] links.
            let key = (unit.early, format!("{name}.d"));
            let fail = |error| WriteError {
                path: base.join(&key.1).join(file),
                error,
            };
            if !self.subdirs.contains_key(&key) {
                let d = dir.subdir(&key.1).map_err(fail)?;
                self.subdirs.insert(key.clone(), d);
            }
            self.subdirs[&key]
                .write_file(file, unit.text.as_bytes())
                .map_err(fail)?;
            return Ok(Vec::new());
        }
        dir.write_file(name, unit.text.as_bytes())
            .map_err(|error| WriteError {
                path: base.join(name),
                error,
            })?;
        let (links, notes) = install_links(&unit.name, &unit.install);
        for (sub, link, target) in links {
            let path = base.join(&sub).join(&link);
            let fail = |error| WriteError {
                path: path.clone(),
                error,
            };
            if sub.is_empty() {
                dir.symlink(&target, &link).map_err(fail)?;
                continue;
            }
            let key = (unit.early, sub);
            if !self.subdirs.contains_key(&key) {
                let d = dir.subdir(&key.1).map_err(|error| WriteError {
                    path: base.join(&key.1),
                    error,
                })?;
                self.subdirs.insert(key.clone(), d);
            }
            self.subdirs[&key].symlink(&target, &link).map_err(fail)?;
        }
        Ok(notes)
    }
}

/// Writes units and their symlinks: shebang units below `early`, the rest
/// below `normal`. Returns notes (skipped template links) and errors; one
/// failed write does not stop the others.
pub fn write_units(
    units: &[Generated],
    normal: &Path,
    early: &Path,
) -> (Vec<String>, Vec<WriteError>) {
    let mut writer = match Writer::open(normal, early) {
        Ok(w) => w,
        Err(e) => return (Vec::new(), vec![e]),
    };
    let mut notes = Vec::new();
    let mut errors = Vec::new();
    for u in units {
        match writer.write(u) {
            Ok(n) => notes.extend(n),
            Err(e) => errors.push(e),
        }
    }
    (notes, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(name: &str, wanted_by: &[&str]) -> Generated {
        Generated {
            name: UnitName::parse(name).unwrap(),
            text: "[Service]\nExecStart=/bin/true\n".into(),
            install: Install {
                wanted_by: wanted_by.iter().map(|s| s.to_string()).collect(),
                ..Install::default()
            },
            early: false,
            source: PathBuf::from("/x.sparrow"),
            line: 1,
            dropin: None,
        }
    }

    #[test]
    fn planted_symlinks_are_replaced_or_refused_never_followed() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("out");
        let victim = d.path().join("victim");
        std::fs::create_dir_all(&out).unwrap();
        std::fs::create_dir_all(&victim).unwrap();
        std::fs::write(victim.join("keep"), "untouched").unwrap();
        // A symlink where the unit goes, and one where its .wants/ goes.
        std::os::unix::fs::symlink(victim.join("keep"), out.join("a.service")).unwrap();
        std::os::unix::fs::symlink(&victim, out.join("multi-user.target.wants")).unwrap();
        let (_, errors) = write_units(&[unit("a.service", &["multi-user.target"])], &out, &out);
        assert_eq!(
            std::fs::read_to_string(victim.join("keep")).unwrap(),
            "untouched"
        );
        assert_eq!(std::fs::read_dir(&victim).unwrap().count(), 1);
        // The unit replaced the planted link; the .wants/ link was refused.
        assert!(std::fs::symlink_metadata(out.join("a.service"))
            .unwrap()
            .is_file());
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].error.to_string().contains("not followed"));
    }

    #[test]
    fn long_names_and_existing_files_are_written() {
        let d = tempfile::tempdir().unwrap();
        let name = format!("{}.service", "x".repeat(255 - ".service".len()));
        let u = unit(&name, &[]);
        for _ in 0..2 {
            let (_, errors) = write_units(std::slice::from_ref(&u), d.path(), d.path());
            assert!(errors.is_empty(), "{errors:?}");
        }
        let names: Vec<String> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec![name]);
    }

    #[test]
    fn install_names_with_slashes_make_no_links() {
        let u = unit("a.service", &["../../etc/evil.target"]);
        let (links, notes) = install_links(&u.name, &u.install);
        assert!(links.is_empty());
        assert!(notes[0].contains("not a unit name"));
    }
}
