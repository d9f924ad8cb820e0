//! Finding what to translate: `*.sparrow` definitions on the search path
//! (first basename wins, as in quadlet) and shebang units among systemd's
//! own unit files.

use std::collections::HashSet;
use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// What a found file is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceKind {
    /// A `NAME.sparrow` definition.
    Definition,
    /// A unit file whose first line is `#!sparrow`; the unit is its basename.
    Shebang,
    /// A unit file whose first line is `#!raku` or `#!sparrow6`.
    RakuShebang,
}

/// A file to translate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Where it is.
    pub path: PathBuf,
    /// What it is.
    pub kind: SourceKind,
}

/// A file that was found but cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The file.
    pub path: PathBuf,
    /// Why.
    pub reason: String,
}

/// Definitions in `dirs` (not recursive; `lib/` holds modules), sorted by
/// name; a basename found in an earlier directory hides later ones.
pub fn definitions(dirs: &[PathBuf]) -> Vec<Source> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for dir in dirs {
        let Ok(entries) = fs::read_dir(dir) else {
            continue;
        };
        let mut names: Vec<(String, PathBuf)> = entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let is_def = name.ends_with(".sparrow")
                    && !name.starts_with('.')
                    && name.len() > ".sparrow".len();
                is_def.then(|| (name, e.path()))
            })
            .collect();
        names.sort();
        for (name, path) in names {
            if path.is_file() && seen.insert(name) {
                out.push(Source {
                    path,
                    kind: SourceKind::Definition,
                });
            }
        }
    }
    out
}

/// Sources named on a command line: files are taken as they are (a unit file
/// whose first line is `#!sparrow` is a shebang unit), directories are
/// searched like the search path; a missing path is refused.
pub fn from_paths(paths: &[PathBuf]) -> (Vec<Source>, Vec<Refused>) {
    let mut out = Vec::new();
    let mut refused = Vec::new();
    for p in paths {
        // SourcePath= must be absolute; keep symlinks as the user named them.
        let p = &std::path::absolute(p).unwrap_or_else(|_| p.clone());
        if p.is_dir() {
            out.extend(definitions(std::slice::from_ref(p)));
        } else if p.is_file() {
            let kind = match first_line(p).as_deref().map(str::trim_end) {
                Some("#!sparrow") if !p.to_string_lossy().ends_with(".sparrow") => {
                    SourceKind::Shebang
                }
                Some("#!raku" | "#!sparrow6") => SourceKind::RakuShebang,
                _ => SourceKind::Definition,
            };
            out.push(Source {
                path: p.clone(),
                kind,
            });
        } else {
            refused.push(Refused {
                path: p.clone(),
                reason: "no such file or directory".into(),
            });
        }
    }
    (out, refused)
}

/// How deep shebang units are looked for below the unit root
/// (`/etc/systemd/system/x.target.wants/y.service` is depth 2).
const MAX_DEPTH: usize = 4;

/// Shebang units below `root`, one per basename (the first in sorted order).
pub fn shebang_units(root: &Path) -> Vec<Source> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    walk(root, 0, &mut |path| {
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            return;
        };
        if seen.contains(name) {
            return;
        }
        let kind = match first_line(path).as_deref() {
            Some(l) if l.trim_end() == "#!sparrow" => SourceKind::Shebang,
            Some(l)
                if matches!(l.trim_end(), "#!raku" | "#!sparrow6")
                    || l.starts_with("#!/usr/bin/env raku") =>
            {
                SourceKind::RakuShebang
            }
            _ => return,
        };
        seen.insert(name.to_string());
        out.push(Source {
            path: path.to_path_buf(),
            kind,
        });
    });
    out
}

fn walk(dir: &Path, depth: usize, f: &mut dyn FnMut(&Path)) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    paths.sort();
    for p in paths {
        let Ok(meta) = fs::symlink_metadata(&p) else {
            continue;
        };
        if meta.is_dir() {
            // Symlinked directories are not followed: no loops, no escapes.
            if depth < MAX_DEPTH {
                walk(&p, depth + 1, f);
            }
        } else if p.is_file() {
            f(&p);
        }
    }
}

/// The first line of a file, reading at most 64 bytes.
fn first_line(path: &Path) -> Option<String> {
    let mut buf = [0u8; 64];
    let mut file = fs::File::open(path).ok()?;
    let n = file.read(&mut buf).ok()?;
    let text = std::str::from_utf8(&buf[..n]).ok().or_else(|| {
        // A multi-byte character may be cut at 64 bytes; the first line is what matters.
        std::str::from_utf8(&buf[..n.min(buf.iter().position(|b| *b == b'\n').unwrap_or(n))]).ok()
    })?;
    Some(text.lines().next().unwrap_or("").to_string())
}

/// Why a source could not be read.
#[derive(Debug)]
pub struct ReadError {
    /// The file does not exist.
    pub not_found: bool,
    /// What happened, for people.
    pub reason: String,
}

/// Reads a definition or module; with `check_owner`, refuses files that
/// someone other than root could have written (they run code as root). The
/// owner is checked on the open file, so it is the file that is read.
pub fn read_source(path: &Path, check_owner: bool) -> Result<String, ReadError> {
    use std::io::Read as _;
    let fail = |e: std::io::Error| ReadError {
        not_found: e.kind() == std::io::ErrorKind::NotFound,
        reason: format!("cannot read: {e}"),
    };
    let mut file = fs::File::open(path).map_err(fail)?;
    if check_owner {
        let meta = file.metadata().map_err(fail)?;
        owner_problem(&meta, path).map_err(|reason| ReadError {
            not_found: false,
            reason,
        })?;
    }
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(fail)?;
    Ok(text)
}

fn owner_problem(meta: &fs::Metadata, path: &Path) -> Result<(), String> {
    if meta.uid() != 0 {
        return Err(format!(
            "refused: owned by uid {}, not root (definitions run as root; chown root {})",
            meta.uid(),
            path.display()
        ));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(format!(
            "refused: writable by group or others (mode {:o}; chmod go-w {})",
            meta.mode() & 0o7777,
            path.display()
        ));
    }
    Ok(())
}

/// [`read_source`]'s owner rule for a path.
pub fn check_owner(path: &Path) -> Result<(), String> {
    let meta = fs::metadata(path).map_err(|e| format!("cannot stat: {e}"))?;
    owner_problem(&meta, path)
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn first_basename_wins() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        fs::write(a.path().join("web.sparrow"), "a").unwrap();
        fs::write(b.path().join("web.sparrow"), "b").unwrap();
        fs::write(b.path().join("db.sparrow"), "b").unwrap();
        fs::write(b.path().join("notes.txt"), "x").unwrap();
        fs::create_dir(b.path().join("lib")).unwrap();
        fs::write(b.path().join("lib/mod.sparrow"), "x").unwrap();
        let found = definitions(&[
            a.path().to_path_buf(),
            b.path().to_path_buf(),
            PathBuf::from("/nonexistent"),
        ]);
        let paths: Vec<_> = found.iter().map(|s| s.path.clone()).collect();
        assert_eq!(
            paths,
            vec![a.path().join("web.sparrow"), b.path().join("db.sparrow")]
        );
    }

    #[test]
    fn shebang_units_are_found_by_first_line() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        fs::write(
            r.join("beans.service"),
            "#!sparrow\nservice(\"beans\", #{});\n",
        )
        .unwrap();
        fs::write(r.join("plain.service"), "[Unit]\n").unwrap();
        fs::write(r.join("old.service"), "#!raku\n").unwrap();
        fs::create_dir(r.join("multi-user.target.wants")).unwrap();
        std::os::unix::fs::symlink(
            "../beans.service",
            r.join("multi-user.target.wants/beans.service"),
        )
        .unwrap();
        fs::write(
            r.join("multi-user.target.wants/deep.service"),
            "#!sparrow\n",
        )
        .unwrap();
        let found = shebang_units(r);
        let got: Vec<(String, SourceKind)> = found
            .iter()
            .map(|s| {
                (
                    s.path.strip_prefix(r).unwrap().display().to_string(),
                    s.kind.clone(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("beans.service".into(), SourceKind::Shebang),
                (
                    "multi-user.target.wants/deep.service".into(),
                    SourceKind::Shebang
                ),
                ("old.service".into(), SourceKind::RakuShebang),
            ]
        );
    }

    #[test]
    fn unsafe_permissions_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("x.sparrow");
        fs::write(&f, "").unwrap();
        fs::set_permissions(&f, fs::Permissions::from_mode(0o644)).unwrap();
        if is_root() {
            assert_eq!(check_owner(&f), Ok(()));
        }
        fs::set_permissions(&f, fs::Permissions::from_mode(0o666)).unwrap();
        assert!(check_owner(&f)
            .unwrap_err()
            .contains("writable by group or others"));
        fs::set_permissions(&f, fs::Permissions::from_mode(0o664)).unwrap();
        assert!(check_owner(&f).is_err());
    }
}
