//! Finding what to translate: `*.sparrow` definitions on the search path
//! (first basename wins, as in quadlet) and shebang units among systemd's
//! own unit files. Entries that cannot be definitions are reported, never
//! silently dropped; nothing here reads more than a shebang candidate's
//! first line (see `read` for how files are read).

use std::collections::HashSet;
use std::fs;
use std::io::Read;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::read::{not_regular, open_regular};

/// What a found file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SourceKind {
    /// A `NAME.sparrow` definition.
    Definition,
    /// A unit file whose first line is `#!sparrow`; the unit is its basename.
    Shebang,
    /// A unit file whose first line is `#!raku` or `#!sparrow6`.
    RakuShebang,
    /// A `NAME.raku` definition (Sparrow6's Raku spelling).
    Raku,
}

impl SourceKind {
    /// Whether it is written in Raku (translated by the Raku bridge).
    pub fn is_raku(self) -> bool {
        matches!(self, SourceKind::Raku | SourceKind::RakuShebang)
    }
}

/// A file to translate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// Where it is.
    pub path: PathBuf,
    /// What it is.
    pub kind: SourceKind,
    /// The directory listing said "regular file" (not a symlink): opening
    /// it needs no look at the path first. The open descriptor is checked
    /// all the same.
    #[serde(default)]
    pub listed_regular: bool,
    /// A Raku source's translation into the native language (set by the
    /// Raku bridge before evaluation; see `sparrow_raku`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub translation: Option<String>,
}

/// A file that was found but cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refused {
    /// The file.
    pub path: PathBuf,
    /// Why.
    pub reason: String,
}

/// Definitions in `dirs` (not recursive; `lib/` holds modules), sorted by
/// name; a basename found in an earlier directory hides later ones. Entries
/// named `*.sparrow` that cannot be definitions (directories, FIFOs, names
/// that are not UTF-8) are returned as refused.
pub fn definitions(dirs: &[PathBuf]) -> (Vec<Source>, Vec<Refused>) {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    let mut refused = Vec::new();
    for dir in dirs {
        let Ok(entries) = fs::read_dir(dir) else {
            continue;
        };
        let mut names: Vec<(String, fs::DirEntry, SourceKind)> = Vec::new();
        for e in entries.filter_map(Result::ok) {
            let raw = e.file_name();
            let Some(name) = raw.to_str() else {
                let lossy = raw.to_string_lossy();
                if lossy.ends_with(".sparrow") || lossy.ends_with(".raku") {
                    refused.push(Refused {
                        path: e.path(),
                        reason: "the file name is not valid UTF-8; rename the file".into(),
                    });
                }
                continue;
            };
            let kind = if name.ends_with(".sparrow") && name.len() > ".sparrow".len() {
                SourceKind::Definition
            } else if name.ends_with(".raku") && name.len() > ".raku".len() {
                SourceKind::Raku
            } else {
                continue;
            };
            if !name.starts_with('.') {
                names.push((name.to_string(), e, kind));
            }
        }
        names.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, entry, kind) in names {
            if seen.contains(&name) {
                continue;
            }
            let path = entry.path();
            // d_type answers for regular files without a stat.
            let regular = entry.file_type().is_ok_and(|t| t.is_file());
            if !regular {
                if let Some(why) = not_regular(&path) {
                    seen.insert(name);
                    refused.push(Refused { path, reason: why });
                    continue;
                }
            }
            seen.insert(name);
            out.push(Source {
                path,
                kind,
                listed_regular: regular,
                translation: None,
            });
        }
    }
    (out, refused)
}

/// Sources named on a command line: files are taken as they are (a unit file
/// whose first line is `#!sparrow` is a shebang unit), directories are
/// searched like the search path; a missing or unusable path is refused.
pub fn from_paths(paths: &[PathBuf]) -> (Vec<Source>, Vec<Refused>) {
    let mut out = Vec::new();
    let mut refused = Vec::new();
    for p in paths {
        // SourcePath= must be absolute; keep symlinks as the user named them.
        let p = &std::path::absolute(p).unwrap_or_else(|_| p.clone());
        if p.is_dir() {
            let (s, r) = definitions(std::slice::from_ref(p));
            out.extend(s);
            refused.extend(r);
            continue;
        }
        if !p.exists() {
            refused.push(Refused {
                path: p.clone(),
                reason: "no such file or directory".into(),
            });
            continue;
        }
        let kind = match first_line(p) {
            Err(reason) => {
                refused.push(Refused {
                    path: p.clone(),
                    reason,
                });
                continue;
            }
            // A definition file's name wins over its first line: a
            // `NAME.raku` may start with `#!/usr/bin/env raku`.
            Ok(_) if p.to_string_lossy().ends_with(".raku") => SourceKind::Raku,
            Ok(line) => match shebang(&line) {
                Some(SourceKind::Shebang) if p.to_string_lossy().ends_with(".sparrow") => {
                    SourceKind::Definition
                }
                Some(k) => k,
                None => SourceKind::Definition,
            },
        };
        out.push(Source {
            path: p.clone(),
            kind,
            listed_regular: false,
            translation: None,
        });
    }
    (out, refused)
}

/// What a first line makes a unit file: a shebang unit of ours, or nothing.
fn shebang(line: &str) -> Option<SourceKind> {
    let l = line.trim_end();
    if l == "#!sparrow" {
        Some(SourceKind::Shebang)
    } else if matches!(l, "#!raku" | "#!sparrow6") || l.starts_with("#!/usr/bin/env raku") {
        Some(SourceKind::RakuShebang)
    } else {
        None
    }
}

/// How deep shebang units are looked for below the unit root
/// (`/etc/systemd/system/x.target.wants/y.service` is depth 2).
const MAX_DEPTH: usize = 4;

/// Shebang units below `root`, one per basename (the first in sorted
/// order). Files that are not regular are not opened: masks (symlinks to
/// `/dev/null`) are skipped quietly, anything else odd (a FIFO, a socket, a
/// symlink to a kernel pseudo-file) is refused with a reason.
pub fn shebang_units(root: &Path) -> (Vec<Source>, Vec<Refused>) {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    let mut refused = Vec::new();
    walk(root, 0, &mut |path, ft| {
        if ft.is_char_device() && fs::canonicalize(path).is_ok_and(|p| p == Path::new("/dev/null"))
        {
            return; // a masked unit
        }
        if !ft.is_file() {
            if !ft.is_dir() {
                refused.push(Refused {
                    path: path.to_path_buf(),
                    reason: not_regular(path).unwrap_or_else(|| "not a regular file".into()),
                });
            }
            return;
        }
        let line = match first_line(path) {
            Ok(l) => l,
            Err(reason) => {
                refused.push(Refused {
                    path: path.to_path_buf(),
                    reason,
                });
                return;
            }
        };
        let Some(kind) = shebang(&line) else { return };
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            refused.push(Refused {
                path: path.to_path_buf(),
                reason: "the file name is not valid UTF-8; rename the file".into(),
            });
            return;
        };
        if seen.insert(name.to_string()) {
            out.push(Source {
                path: path.to_path_buf(),
                kind,
                listed_regular: false,
                translation: None,
            });
        }
    });
    (out, refused)
}

/// Calls `f` with each entry below `dir` and its type (symlinks followed,
/// except that symlinked directories are not entered: no loops, no escapes).
fn walk(dir: &Path, depth: usize, f: &mut dyn FnMut(&Path, fs::FileType)) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<fs::DirEntry> = entries.filter_map(Result::ok).collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let Ok(ft) = e.file_type() else { continue };
        let p = e.path();
        if ft.is_dir() {
            if depth < MAX_DEPTH {
                walk(&p, depth + 1, f);
            }
        } else if ft.is_symlink() {
            match fs::metadata(&p) {
                Ok(m) if m.is_dir() => {}
                Ok(m) => f(&p, m.file_type()),
                Err(_) => {} // dangling: systemd ignores it too
            }
        } else {
            f(&p, ft);
        }
    }
}

/// The first line of a file, reading at most 64 bytes, or why it cannot be read.
fn first_line(path: &Path) -> Result<String, String> {
    let mut buf = [0u8; 64];
    let mut file = open_regular(path).map_err(|e| e.reason)?;
    let n = file
        .read(&mut buf)
        .map_err(|e| format!("cannot read: {e}"))?;
    let end = buf[..n].iter().position(|b| *b == b'\n').unwrap_or(n);
    // A multi-byte character may be cut at 64 bytes; the first line is what matters.
    Ok(String::from_utf8_lossy(&buf[..end]).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read::{read_source, Owners};

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
        let (found, refused) = definitions(&[
            a.path().to_path_buf(),
            b.path().to_path_buf(),
            PathBuf::from("/nonexistent"),
        ]);
        let paths: Vec<_> = found.iter().map(|s| s.path.clone()).collect();
        assert_eq!(
            paths,
            vec![a.path().join("web.sparrow"), b.path().join("db.sparrow")]
        );
        assert!(refused.is_empty());
    }

    #[test]
    fn what_cannot_be_a_definition_is_reported() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        fs::create_dir(p.join("dir.sparrow")).unwrap();
        let fifo = std::ffi::CString::new(p.join("fifo.sparrow").to_str().unwrap()).unwrap();
        // SAFETY: mkfifo with a valid C string.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        std::os::unix::fs::symlink("/proc/self/status", p.join("proc.sparrow")).unwrap();
        std::os::unix::fs::symlink("/nonexistent", p.join("dangling.sparrow")).unwrap();
        use std::os::unix::ffi::OsStrExt;
        fs::write(p.join(std::ffi::OsStr::from_bytes(b"bad\xff.sparrow")), "").unwrap();
        fs::write(p.join("good.sparrow"), "").unwrap();
        let (found, refused) = definitions(&[p.to_path_buf()]);
        // The pseudo-file passes the directory listing; reading refuses it.
        let names: Vec<String> = found
            .iter()
            .map(|s| s.path.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["good.sparrow", "proc.sparrow"]);
        let why = |n: &str| {
            refused
                .iter()
                .find(|r| r.path.to_string_lossy().ends_with(n))
                .map(|r| r.reason.clone())
                .unwrap_or_else(|| panic!("{n} not refused: {refused:?}"))
        };
        assert!(why("dir.sparrow").contains("is a directory"));
        assert!(why("fifo.sparrow").contains("is a FIFO"));
        assert!(why("dangling.sparrow").contains("cannot read"));
        assert!(why("\u{fffd}.sparrow").contains("not valid UTF-8"));
        let e = read_source(&p.join("proc.sparrow"), Owners::Any).unwrap_err();
        assert!(
            e.reason.contains("kernel interface file on procfs"),
            "{}",
            e.reason
        );
        let e = read_source(&p.join("fifo.sparrow"), Owners::Any).unwrap_err();
        assert!(e.reason.contains("is a FIFO"), "{}", e.reason);
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
        std::os::unix::fs::symlink("/dev/null", r.join("masked.service")).unwrap();
        let fifo = std::ffi::CString::new(r.join("odd.service").to_str().unwrap()).unwrap();
        // SAFETY: mkfifo with a valid C string.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
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
        let (found, refused) = shebang_units(r);
        let got: Vec<(String, SourceKind)> = found
            .iter()
            .map(|s| {
                (
                    s.path.strip_prefix(r).unwrap().display().to_string(),
                    s.kind,
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
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert!(refused[0].path.ends_with("odd.service"));
        assert!(refused[0].reason.contains("FIFO"));
    }
}
