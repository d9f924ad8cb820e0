//! Writing units and their `[Install]` symlinks, atomically.
//!
//! Each file is written to a temporary name in the same directory and
//! renamed into place, so systemd never reads half a unit. Symlinks are
//! made the same way.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use sparrow_lang::UnitDecl;

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
pub fn install_links(unit: &UnitDecl) -> (Vec<(PathBuf, PathBuf)>, Vec<String>) {
    let mut links = Vec::new();
    let mut notes = Vec::new();
    let name = unit.name.as_str();
    let target = PathBuf::from("..").join(name);
    let link_name = if unit.name.is_template() {
        match &unit.install.default_instance {
            Some(inst) => match unit.name.instance(inst) {
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
        ("wants", &unit.install.wanted_by),
        ("requires", &unit.install.required_by),
        ("upholds", &unit.install.upheld_by),
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
    for alias in &unit.install.alias {
        links.push((PathBuf::from(alias), PathBuf::from(name)));
    }
    (links, notes)
}

/// Writes one unit and its symlinks below `dir`.
pub fn write_unit(dir: &Path, unit: &UnitDecl) -> Result<Vec<String>, WriteError> {
    let path = dir.join(unit.name.as_str());
    atomic_write(&path, unit.file.render().as_bytes())
        .map_err(|error| WriteError { path, error })?;
    let (links, notes) = install_links(unit);
    for (link, target) in links {
        let link = dir.join(link);
        if let Some(parent) = link.parent() {
            fs::create_dir_all(parent).map_err(|error| WriteError {
                path: parent.to_path_buf(),
                error,
            })?;
        }
        atomic_symlink(&target, &link).map_err(|error| WriteError { path: link, error })?;
    }
    Ok(notes)
}
