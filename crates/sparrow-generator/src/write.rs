//! Writing units and their `[Install]` symlinks, atomically.
//!
//! Each file is written to a temporary name in the same directory and
//! renamed into place, so systemd never reads half a unit. Symlinks are
//! made the same way.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use std::collections::HashSet;

use sparrow_lang::Install;
use sparrow_unit::UnitName;

use crate::Generated;

/// A path that could not be written, and why.
#[derive(Debug)]
pub struct WriteError {
    /// The path.
    pub path: PathBuf,
    /// The error.
    pub error: io::Error,
}

fn tmp_name(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".#{name}.{}", std::process::id()))
}

/// Writes `contents` to `path` via a temporary file and a rename.
pub fn atomic_write(path: &Path, contents: &[u8]) -> io::Result<()> {
    let tmp = tmp_name(path);
    fs::write(&tmp, contents)
        .and_then(|()| fs::rename(&tmp, path))
        .inspect_err(|_| {
            let _ = fs::remove_file(&tmp);
        })
}

/// Makes `link` point to `target`, replacing what was there.
pub fn atomic_symlink(target: &Path, link: &Path) -> io::Result<()> {
    let tmp = tmp_name(link);
    let _ = fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp)
        .and_then(|()| fs::rename(&tmp, link))
        .inspect_err(|_| {
            let _ = fs::remove_file(&tmp);
        })
}

/// The symlinks a unit's `[Install]` section asks for, relative to the
/// output directory: `(link path, link target)`. Templates need an instance
/// (`DefaultInstance=`); without one their wants-links are skipped and a
/// message is returned instead.
pub fn install_links(unit: &UnitName, install: &Install) -> (Vec<(PathBuf, PathBuf)>, Vec<String>) {
    let mut links = Vec::new();
    let mut notes = Vec::new();
    let name = unit.as_str();
    let target = PathBuf::from("..").join(name);
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
            match &link_name {
                Some(l) => links.push((PathBuf::from(format!("{t}.{suffix}")).join(l), target.clone())),
                None => notes.push(format!(
                    "{name} is a template: no {t}.{suffix} link without DefaultInstance= (install_section: #{{ DefaultInstance: \"x\" }})"
                )),
            }
        }
    }
    for alias in &install.alias {
        links.push((PathBuf::from(alias), PathBuf::from(name)));
    }
    (links, notes)
}

/// Writes units and their symlinks: shebang units below `early`, the rest
/// below `normal`. Returns notes (skipped template links) and errors; one
/// failed write does not stop the others.
pub fn write_units(
    units: &[Generated],
    normal: &Path,
    early: &Path,
    threads: usize,
) -> (Vec<String>, Vec<WriteError>) {
    let threads = threads.clamp(1, (units.len() / 64).max(1));
    let chunk = units.len().div_ceil(threads).max(1);
    let run = |units: &[Generated]| {
        let mut made_dirs = HashSet::new();
        let mut notes = Vec::new();
        let mut errors = Vec::new();
        for u in units {
            let dir = if u.early { early } else { normal };
            match write_unit(dir, u, &mut made_dirs) {
                Ok(n) => notes.extend(n),
                Err(e) => errors.push(e),
            }
        }
        (notes, errors)
    };
    if threads == 1 {
        return run(units);
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = units
            .chunks(chunk)
            .map(|c| s.spawn(move || run(c)))
            .collect();
        let mut all = (Vec::new(), Vec::new());
        for h in handles {
            let (n, e) = h.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
            all.0.extend(n);
            all.1.extend(e);
        }
        all
    })
}

/// Writes one unit and its symlinks below `dir`; `made_dirs` remembers the
/// `.wants/` directories already created.
pub fn write_unit(
    dir: &Path,
    unit: &Generated,
    made_dirs: &mut HashSet<PathBuf>,
) -> Result<Vec<String>, WriteError> {
    let path = dir.join(unit.name.as_str());
    atomic_write(&path, unit.text.as_bytes()).map_err(|error| WriteError { path, error })?;
    let (links, notes) = install_links(&unit.name, &unit.install);
    for (link, target) in links {
        let link = dir.join(link);
        if let Some(parent) = link.parent() {
            if !made_dirs.contains(parent) {
                fs::create_dir_all(parent).map_err(|error| WriteError {
                    path: parent.to_path_buf(),
                    error,
                })?;
                made_dirs.insert(parent.to_path_buf());
            }
        }
        atomic_symlink(&target, &link).map_err(|error| WriteError { path: link, error })?;
    }
    Ok(notes)
}
