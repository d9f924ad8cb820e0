//! Reading definitions and modules defensively. They run as root at boot,
//! so a file is read only when it is a regular file on a real file system:
//! never a FIFO (which would block), a device, a directory, or a kernel
//! pseudo-file such as `/proc/kmsg` (whose reads block and consume the
//! kernel log). Files are opened non-blocking, checked on the open
//! descriptor, and read up to [`MAX_SOURCE`]; the owner rule ([`Owners`])
//! is checked on the open file too.

use std::fs::{self, File};
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use serde::{Deserialize, Serialize};

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

/// Why `path` (following symlinks) is not a regular file, or `None` if it is.
pub(crate) fn not_regular(path: &Path) -> Option<String> {
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

/// Why a source could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{reason}")]
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
    open_checked(path, false).map(|(f, _)| f)
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

/// [`open_regular`], also returning the open file's metadata. With
/// `listed_regular` (a directory listing said so), the path is not looked at
/// before opening: a stat by path is the costliest call in reading a
/// definition, and the listing already answered what it asks.
fn open_checked(path: &Path, listed_regular: bool) -> Result<(File, fs::Metadata), ReadError> {
    let fail = |e: std::io::Error| ReadError {
        not_found: e.kind() == std::io::ErrorKind::NotFound,
        reason: format!("cannot read: {e}"),
    };
    let refuse = |reason: String| ReadError {
        not_found: false,
        reason,
    };
    // Devices can act on open (tapes rewind, terminals attach): look first.
    if let Some(why) = (!listed_regular).then(|| not_regular(path)).flatten() {
        let meta = fs::metadata(path);
        if let Err(e) = meta {
            return Err(fail(e));
        }
        return Err(refuse(why));
    }
    // Listed as a regular file, not a symlink: one swapped in since then
    // (to a device, say) is not followed.
    let nofollow = if listed_regular { libc::O_NOFOLLOW } else { 0 };
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | nofollow)
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
    read_listed(path, owners, false)
}

/// [`read_source`] for a file a directory listing showed as a regular file
/// (`listed_regular`, see [`crate::Source`]).
pub fn read_listed(
    path: &Path,
    owners: Owners,
    listed_regular: bool,
) -> Result<SourceText, ReadError> {
    let fail = |e: std::io::Error| ReadError {
        not_found: e.kind() == std::io::ErrorKind::NotFound,
        reason: format!("cannot read: {e}"),
    };
    let (mut file, meta) = open_checked(path, listed_regular)?;
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
