//! Writing files without following a link or leaving a directory: the one
//! way the project writes (units and their symlinks in the generator, the
//! daemon's state file).
//!
//! Every path is one name component below an open directory descriptor
//! (`openat`, `symlinkat`, `renameat`, `mkdirat`):
//!
//! - a file is created with `O_CREAT|O_EXCL|O_NOFOLLOW`; when its name is
//!   taken (an existing file, or something planted) it is written under a
//!   fresh temporary name, also `O_EXCL|O_NOFOLLOW`, and renamed over the
//!   old entry, which replaces a planted symlink instead of following it;
//! - a subdirectory is opened with `O_DIRECTORY|O_NOFOLLOW`, so a symlink
//!   planted in its place is an error, not an escape;
//! - names with `/`, `.` or `..` are refused.
//!
//! Temporary names are short (`.#sparrow.PID.N`), so names up to 255 bytes
//! can be written.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

fn cstr(s: &str) -> io::Result<CString> {
    CString::new(s).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in a name"))
}

fn check(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// A name that is a single path component we may create.
fn plain(name: &str) -> io::Result<()> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name:?} is not a plain file name"),
        ));
    }
    Ok(())
}

pub(crate) static TMP: AtomicU64 = AtomicU64::new(0);

fn tmp_name() -> String {
    format!(
        ".#sparrow.{}.{}",
        std::process::id(),
        TMP.fetch_add(1, Ordering::Relaxed)
    )
}

/// An open directory to write into.
pub struct Dir {
    fd: OwnedFd,
}

impl Dir {
    /// Opens a directory (following symlinks: the caller names it).
    pub fn open(path: &Path) -> io::Result<Dir> {
        let c = CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in a path"))?;
        // SAFETY: open with a valid C string; the fd is owned below.
        let fd = check(unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        })?;
        // SAFETY: fd was just opened and is ours.
        Ok(Dir {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// The subdirectory `name`, created if missing; never a symlink.
    pub fn subdir(&self, name: &str) -> io::Result<Dir> {
        plain(name)?;
        let c = cstr(name)?;
        // SAFETY: mkdirat/openat relative to our directory fd.
        unsafe {
            if libc::mkdirat(self.fd.as_raw_fd(), c.as_ptr(), 0o755) < 0 {
                let e = io::Error::last_os_error();
                if e.raw_os_error() != Some(libc::EEXIST) {
                    return Err(e);
                }
            }
            let fd = libc::openat(
                self.fd.as_raw_fd(),
                c.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            );
            if fd < 0 {
                let e = io::Error::last_os_error();
                return Err(match e.raw_os_error() {
                    Some(libc::ELOOP) | Some(libc::ENOTDIR) => io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        "something that is not a directory (a symlink?) is in the way; not followed",
                    ),
                    _ => e,
                });
            }
            Ok(Dir {
                fd: OwnedFd::from_raw_fd(fd),
            })
        }
    }

    /// Creates `name` exclusively, without following a symlink there.
    fn create_excl(&self, name: &str) -> io::Result<OwnedFd> {
        let c = cstr(name)?;
        // SAFETY: openat relative to our directory fd; the fd is owned below.
        let fd = check(unsafe {
            libc::openat(
                self.fd.as_raw_fd(),
                c.as_ptr(),
                libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                0o644 as libc::c_uint,
            )
        })?;
        // SAFETY: just opened, ours.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    fn unlink(&self, name: &str) {
        if let Ok(c) = cstr(name) {
            // SAFETY: unlinkat relative to our directory fd.
            unsafe { libc::unlinkat(self.fd.as_raw_fd(), c.as_ptr(), 0) };
        }
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let (f, t) = (cstr(from)?, cstr(to)?);
        // SAFETY: renameat within our directory.
        check(unsafe {
            libc::renameat(
                self.fd.as_raw_fd(),
                f.as_ptr(),
                self.fd.as_raw_fd(),
                t.as_ptr(),
            )
        })
        .map(|_| ())
    }

    /// Writes `name` with `contents`: in place when the name is free,
    /// else through a temporary file renamed over it.
    pub fn write_file(&self, name: &str, contents: &[u8]) -> io::Result<()> {
        plain(name)?;
        match self.create_excl(name) {
            Ok(fd) => write_all(fd, contents).inspect_err(|_| self.unlink(name)),
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                let (tmp, fd) = self.temp(|t| self.create_excl(t))?;
                write_all(fd, contents)
                    .and_then(|()| self.rename(&tmp, name))
                    .inspect_err(|_| self.unlink(&tmp))
            }
            Err(e) => Err(e),
        }
    }

    /// Makes `name` a symlink to `target`, replacing what was there.
    pub fn symlink(&self, target: &str, name: &str) -> io::Result<()> {
        plain(name)?;
        let t = cstr(target)?;
        let link = |n: &str| -> io::Result<()> {
            let c = cstr(n)?;
            // SAFETY: symlinkat relative to our directory fd.
            check(unsafe { libc::symlinkat(t.as_ptr(), self.fd.as_raw_fd(), c.as_ptr()) })
                .map(|_| ())
        };
        match link(name) {
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                let (tmp, ()) = self.temp(link)?;
                self.rename(&tmp, name).inspect_err(|_| self.unlink(&tmp))
            }
            r => r,
        }
    }

    /// Runs `make` with fresh temporary names until one is free.
    fn temp<T>(&self, make: impl Fn(&str) -> io::Result<T>) -> io::Result<(String, T)> {
        let mut last = None;
        for _ in 0..64 {
            let name = tmp_name();
            match make(&name) {
                Ok(v) => return Ok((name, v)),
                // Someone planted this name: never reuse it, take another.
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("no free temporary name")))
    }
}

fn write_all(fd: OwnedFd, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        // SAFETY: write from a valid slice to an fd we own.
        let n = unsafe { libc::write(fd.as_raw_fd(), bytes.as_ptr().cast(), bytes.len()) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        bytes = &bytes[n as usize..];
    }
    Ok(())
}

/// Writes `path` with `contents` through [`Dir::write_file`] in its parent
/// directory (created if missing).
pub fn write_file(path: &Path, contents: &[u8]) -> io::Result<()> {
    let parent = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
    Dir::open(parent)?.write_file(name, contents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planted_temporary_names_are_skipped_not_followed() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("out");
        std::fs::create_dir_all(&out).unwrap();
        let victim = d.path().join("victim");
        std::fs::write(&victim, "untouched").unwrap();
        // The next temporary names this process will try, all taken.
        let next = TMP.load(Ordering::Relaxed);
        for n in next..next + 8 {
            let name = format!(".#sparrow.{}.{n}", std::process::id());
            std::os::unix::fs::symlink(&victim, out.join(name)).unwrap();
        }
        // The name exists, so the write goes through a temporary file.
        std::fs::write(out.join("a.service"), "old").unwrap();
        write_file(&out.join("a.service"), b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched");
        assert_eq!(
            std::fs::read_to_string(out.join("a.service")).unwrap(),
            "new"
        );
    }

    #[test]
    fn names_that_are_not_one_component_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let dir = Dir::open(d.path()).unwrap();
        for bad in ["", ".", "..", "a/b", "../x"] {
            assert!(dir.write_file(bad, b"x").is_err(), "{bad:?}");
            assert!(dir.symlink("t", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_symlinked_subdirectory_is_not_entered() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("elsewhere")).unwrap();
        std::os::unix::fs::symlink(d.path().join("elsewhere"), d.path().join("x.wants")).unwrap();
        let dir = Dir::open(d.path()).unwrap();
        let e = dir.subdir("x.wants").err().expect("refused");
        assert!(e.to_string().contains("not followed"), "{e}");
    }
}
