//! Finding what to translate: `*.sparrow` definitions on the search path
//! (first basename wins, as in quadlet) and shebang units among systemd's
//! own unit files; and reading them defensively.
//!
//! Everything found here runs as root at boot, so a file is read only when
//! it is a regular file on a real file system: never a FIFO (which would
//! block), a device, a directory, or a kernel pseudo-file such as
//! `/proc/kmsg` (whose reads block and consume the kernel log). Files are
//! opened non-blocking, checked on the open descriptor, and read up to
//! [`MAX_SOURCE`]. Anything else found where a definition should be is
//! reported, never silently dropped.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// What a found file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SourceKind {
    /// A `NAME.sparrow` definition.
    Definition,
    /// A unit file whose first line is `#!sparrow`; the unit is its basename.
    Shebang,
    /// A unit file whose first line is `#!raku` or `#!sparrow6`.
    RakuShebang,
}

/// A file to translate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// Where it is.
    pub path: PathBuf,
    /// What it is.
    pub kind: SourceKind,
}

/// A file that was found but cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refused {
    /// The file.
    pub path: PathBuf,
    /// Why.
    pub reason: String,
}

/// Who may own the files that are run (they run as root).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Owners {
    /// Anyone: a user generator, or rendering files the caller named.
    Any,
    /// Root only, and not writable by group or others: files that break
    /// the rule are refused (the system generator, as root).
    Root,
    /// As [`Owners::Root`], but a file that breaks the rule is read anyway
    /// with a warning (`check` run by a user, who cannot chown).
    Warn,
}

impl Owners {
    /// The rule the system generator applies in this process.
    pub fn for_generator() -> Owners {
        if is_root() {
            Owners::Root
        } else {
            Owners::Any
        }
    }
}

/// The largest definition or module read (definitions are programs, not data).
pub const MAX_SOURCE: u64 = 1 << 20;

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
        let mut names: Vec<(String, fs::DirEntry)> = Vec::new();
        for e in entries.filter_map(Result::ok) {
            let raw = e.file_name();
            let Some(name) = raw.to_str() else {
                let lossy = raw.to_string_lossy();
                if lossy.ends_with(".sparrow") {
                    refused.push(Refused {
                        path: e.path(),
                        reason: "the file name is not valid UTF-8; rename the file".into(),
                    });
                }
                continue;
            };
            let is_def = name.ends_with(".sparrow")
                && !name.starts_with('.')
                && name.len() > ".sparrow".len();
            if is_def {
                names.push((name.to_string(), e));
            }
        }
        names.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, entry) in names {
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
                kind: SourceKind::Definition,
            });
        }
    }
    (out, refused)
}

/// Why `path` (following symlinks) is not a regular file, or `None` if it is.
fn not_regular(path: &Path) -> Option<String> {
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) => return Some(format!("cannot read: {e}")),
    };
    let ft = meta.file_type();
    let what = if ft.is_file() {
        return None;
    } else if ft.is_dir() {
        "a directory"
    } else if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_char_device() || ft.is_block_device() {
        "a device"
    } else {
        "not a regular file"
    };
    Some(format!("is {what}, not a definition file; skipped"))
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

/// Why a source could not be read.
#[derive(Debug)]
pub struct ReadError {
    /// The file does not exist.
    pub not_found: bool,
    /// What happened, for people.
    pub reason: String,
}

/// Kernel and virtual file systems whose "files" are interfaces, not text.
const PSEUDO_FS: &[(i64, &str)] = &[
    (0x9fa0, "procfs"),
    (0x6265_6572, "sysfs"),
    (0x6462_6720, "debugfs"),
    (0x7472_6163, "tracefs"),
    (0x7363_6673, "securityfs"),
    (0x6367_7270, "cgroup2"),
    (0x0027_e0eb, "cgroup"),
    (0xcafe_4a11, "bpf"),
    (0x6265_6570, "configfs"),
    (0xde5e_81e4, "efivarfs"),
    (0x6165_676c, "pstore"),
    (0x1cd1, "devpts"),
];

/// Opens `path` for reading only if it is a regular file on a real file
/// system. The open never blocks (`O_NONBLOCK`, so a FIFO swapped in after
/// a check cannot hang us), and the checks are made on the open file.
pub fn open_regular(path: &Path) -> Result<File, ReadError> {
    open_checked(path).map(|(f, _)| f)
}

/// Whether the file system of device `dev` is a kernel pseudo file system,
/// asked once per device (`fstatfs` on every file was a measurable cost).
fn pseudo_fs(dev: u64, file: &File) -> Option<&'static str> {
    use std::cell::RefCell;
    use std::collections::HashMap;
    thread_local! {
        static SEEN: RefCell<HashMap<u64, Option<&'static str>>> = RefCell::default();
    }
    if let Some(hit) = SEEN.with(|s| s.borrow().get(&dev).copied()) {
        return hit;
    }
    // SAFETY: fstatfs fills a plain struct for an fd we own.
    let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
    let found = if unsafe { libc::fstatfs(file.as_raw_fd(), &mut fs) } == 0 {
        let magic = fs.f_type as i64;
        PSEUDO_FS.iter().find(|(m, _)| *m == magic).map(|(_, n)| *n)
    } else {
        None
    };
    SEEN.with(|s| s.borrow_mut().insert(dev, found));
    found
}

/// [`open_regular`], also returning the open file's metadata.
fn open_checked(path: &Path) -> Result<(File, fs::Metadata), ReadError> {
    let fail = |e: std::io::Error| ReadError {
        not_found: e.kind() == std::io::ErrorKind::NotFound,
        reason: format!("cannot read: {e}"),
    };
    let refuse = |reason: String| ReadError {
        not_found: false,
        reason,
    };
    // Devices can act on open (tapes rewind, terminals attach): look first.
    if let Some(why) = not_regular(path) {
        let meta = fs::metadata(path);
        if let Err(e) = meta {
            return Err(fail(e));
        }
        return Err(refuse(why));
    }
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(fail)?;
    let meta = file.metadata().map_err(fail)?;
    if !meta.is_file() {
        return Err(refuse(
            "changed into something that is not a regular file while being opened; skipped".into(),
        ));
    }
    if let Some(name) = pseudo_fs(meta.dev(), &file) {
        return Err(refuse(format!(
            "is a kernel interface file on {name}, not a definition; skipped"
        )));
    }
    Ok((file, meta))
}

/// A source's text, and a warning when the owner rule was broken but the
/// file was read anyway ([`Owners::Warn`]).
#[derive(Debug)]
pub struct SourceText {
    /// The text.
    pub text: String,
    /// Why the generator, running as root, would refuse this file.
    pub warning: Option<String>,
}

/// Reads a definition or module with the owner rule `owners` (files that
/// someone other than root could have written run code as root). The rule
/// is checked on the open file, so it is the file that is read.
pub fn read_source(path: &Path, owners: Owners) -> Result<SourceText, ReadError> {
    let fail = |e: std::io::Error| ReadError {
        not_found: e.kind() == std::io::ErrorKind::NotFound,
        reason: format!("cannot read: {e}"),
    };
    let (mut file, meta) = open_checked(path)?;
    let mut warning = None;
    if owners != Owners::Any {
        if let Err(reason) = owner_problem(&meta, path) {
            if owners == Owners::Root {
                return Err(ReadError {
                    not_found: false,
                    reason,
                });
            }
            warning = Some(format!(
                "the generator, running as root, would refuse this file: {reason}"
            ));
        }
    }
    if meta.len() > MAX_SOURCE {
        return Err(ReadError {
            not_found: false,
            reason: format!(
                "is {} bytes; definitions and modules are limited to {} KiB",
                meta.len(),
                MAX_SOURCE >> 10
            ),
        });
    }
    // One read of the size fstat gave, plus a byte: a short read is the end
    // (a regular file); if it grew meanwhile, read on, up to the limit.
    let want = meta.len() as usize + 1;
    let mut bytes = vec![0u8; want];
    let n = loop {
        match file.read(&mut bytes) {
            Ok(n) => break n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(fail(e)),
        }
    };
    bytes.truncate(n);
    if n == want {
        file.take(MAX_SOURCE + 1 - n as u64)
            .read_to_end(&mut bytes)
            .map_err(fail)?;
    }
    if bytes.len() as u64 > MAX_SOURCE {
        return Err(ReadError {
            not_found: false,
            reason: format!(
                "grew past {} KiB while being read; definitions are limited to that",
                MAX_SOURCE >> 10
            ),
        });
    }
    let text = String::from_utf8(bytes).map_err(|e| ReadError {
        not_found: false,
        reason: format!(
            "is not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ),
    })?;
    Ok(SourceText { text, warning })
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
    fn big_and_binary_files_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let big = d.path().join("big.sparrow");
        fs::write(&big, vec![b' '; MAX_SOURCE as usize + 1]).unwrap();
        let e = read_source(&big, Owners::Any).unwrap_err();
        assert!(e.reason.contains("limited to 1024 KiB"), "{}", e.reason);
        let bin = d.path().join("bin.sparrow");
        fs::write(&bin, b"let x = 1;\xff").unwrap();
        let e = read_source(&bin, Owners::Any).unwrap_err();
        assert!(
            e.reason
                .contains("not UTF-8 text (invalid byte at offset 10)"),
            "{}",
            e.reason
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
        let e = read_source(&f, Owners::Root).unwrap_err();
        assert!(e.reason.contains("writable by group or others"));
        let t = read_source(&f, Owners::Warn).unwrap();
        assert!(t.warning.unwrap().contains("would refuse this file"));
        assert!(read_source(&f, Owners::Any).unwrap().warning.is_none());
        fs::set_permissions(&f, fs::Permissions::from_mode(0o664)).unwrap();
        assert!(check_owner(&f).is_err());
    }
}
