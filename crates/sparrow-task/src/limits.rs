//! What a run keeps and reads, at most. A task's files and output are
//! input like any other: a runner inside the daemon must not run out of
//! memory or hang on them, so each has a limit (docs/tasks.md, "Limits"),
//! and what goes past one is refused with a message or counted and
//! reported, never silently lost.

use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// The longest output line kept (bytes); the rest of a longer line is
/// dropped, and the run says how many lines were cut. (A hook's stdout
/// lines may be as long as [`MAX_FILE`]: they carry `run_task`'s
/// parameters, as JSON on one line.)
pub const MAX_LINE: usize = 64 * 1024;
/// The most output lines a run keeps (stdout and stderr of its scripts,
/// for `task.check`, the result and the report); later lines are counted.
/// Kept lines are copied a few times on their way to a closure (report,
/// result, script value), and the daemon's unit has `MemoryMax=256M`.
pub const MAX_LINES: usize = 250_000;
/// The most output bytes a run keeps, likewise.
pub const MAX_OUTPUT: usize = 16 << 20;
/// The largest file read whole: `config.yaml`/`.json`, `sparrow.json`,
/// `task.check`, the state, `set_stdout`'s file, a flags file.
pub const MAX_FILE: u64 = 16 << 20;
/// How deep sub-tasks may nest (a sub-task that runs itself stops here).
pub const MAX_SUBTASK_DEPTH: usize = 32;
/// The most `code:` and `generator:` blocks one `task.check` runs
/// (generators included: one that prints several of itself would run
/// thousands of processes before its depth limit).
pub const MAX_BLOCKS: usize = 256;
/// How deep parameters may nest (maps and lists), as deep as the JSON and
/// YAML readers allow in files.
pub const MAX_NESTING: usize = 128;

/// Reads the regular file `path` whole, up to `max` bytes. A FIFO or a
/// device is refused without being read (opening a FIFO does not wait for
/// a writer): it could block forever or never end (`/dev/zero`).
pub(crate) fn read(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    // O_PATH first: opening a device for reading can itself act (a
    // watchdog arms, a tape rewinds), so the type is checked on a handle
    // that cannot read, and only a regular file is opened for reading
    // (through the handle, so it is the file that was checked).
    let probe = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH)
        .open(path)?;
    let t = probe.metadata()?.file_type();
    if !t.is_file() {
        let what = if t.is_fifo() {
            "a FIFO"
        } else if t.is_dir() {
            "a directory"
        } else if t.is_char_device() || t.is_block_device() {
            "a device"
        } else {
            "not a regular file"
        };
        return Err(io::Error::other(format!(
            "{what}: only regular files are read"
        )));
    }
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(format!("/proc/self/fd/{}", probe.as_raw_fd()))?;
    read_open(f, max)
}

fn read_open(f: std::fs::File, max: u64) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    f.take(max + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > max {
        return Err(io::Error::other(format!(
            "larger than {} (the limit for this file)",
            size(max as usize)
        )));
    }
    Ok(buf)
}

/// [`read`], as text (invalid UTF-8 replaced: one bad byte must not lose
/// the rest).
pub(crate) fn read_text(path: &Path, max: u64) -> io::Result<String> {
    read(path, max).map(|b| match String::from_utf8(b) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

/// `n` bytes as people read them (`64 KiB`, `16 MiB`).
fn size(n: usize) -> String {
    match n {
        n if n >= 1 << 20 && n % (1 << 20) == 0 => format!("{} MiB", n >> 20),
        n if n >= 1 << 10 && n % (1 << 10) == 0 => format!("{} KiB", n >> 10),
        n => format!("{n} bytes"),
    }
}

/// What a run keeps of its scripts' output: lines up to [`MAX_LINES`] and
/// [`MAX_OUTPUT`] bytes; past either, lines are counted instead.
#[derive(Debug)]
pub(crate) struct Kept {
    lines_left: usize,
    bytes_left: usize,
    dropped_lines: u64,
    dropped_bytes: u64,
    /// Lines longer than [`MAX_LINE`], cut (by [`crate::exec`]).
    pub(crate) cut: u64,
}

impl Default for Kept {
    fn default() -> Kept {
        Kept::with(MAX_LINES, MAX_OUTPUT)
    }
}

impl Kept {
    /// A budget of `lines` lines and `bytes` bytes.
    pub(crate) fn with(lines: usize, bytes: usize) -> Kept {
        Kept {
            lines_left: lines,
            bytes_left: bytes,
            dropped_lines: 0,
            dropped_bytes: 0,
            cut: 0,
        }
    }

    /// Whether `line` may be kept (it is then charged), or is counted.
    pub(crate) fn take(&mut self, line: &str) -> bool {
        if self.lines_left > 0 && line.len() <= self.bytes_left {
            self.lines_left -= 1;
            self.bytes_left -= line.len();
            return true;
        }
        // Once full, full: a later short line kept after a dropped long
        // one would reorder the output.
        self.lines_left = 0;
        self.dropped_lines += 1;
        self.dropped_bytes += line.len() as u64;
        false
    }

    /// What was not kept, as a line for the report (None: everything was).
    pub(crate) fn note(&self) -> Option<String> {
        let mut parts = Vec::new();
        if self.cut > 0 {
            parts.push(format!(
                "{} lines longer than {} were cut",
                self.cut,
                size(MAX_LINE)
            ));
        }
        if self.dropped_lines > 0 {
            parts.push(format!(
                "{} lines ({} bytes) past the first {MAX_LINES} lines or {} were not kept",
                self.dropped_lines,
                self.dropped_bytes,
                size(MAX_OUTPUT)
            ));
        }
        (!parts.is_empty()).then(|| format!("output limit: {}", parts.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_stops_at_either_limit_and_says_so() {
        let mut k = Kept::with(3, 10);
        assert!(k.take("abc") && k.take("defg"));
        assert_eq!(k.note(), None);
        assert!(!k.take("hijk"), "past 10 bytes");
        assert!(!k.take("x"), "full stays full");
        assert_eq!(
            k.note().as_deref(),
            Some("output limit: 2 lines (5 bytes) past the first 250000 lines or 16 MiB were not kept")
        );
        let mut k = Kept::with(2, 1000);
        assert!(k.take("a") && k.take("b") && !k.take("c"));
        k.cut = 4;
        assert!(k
            .note()
            .unwrap()
            .starts_with("output limit: 4 lines longer than 64 KiB were cut; 1 lines (1 bytes)"));
    }

    #[test]
    fn only_regular_files_are_read_and_only_so_much() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("f");
        std::fs::write(&f, b"ab\xffc").unwrap();
        assert_eq!(read_text(&f, 10).unwrap(), "ab\u{fffd}c");
        let e = read(&f, 3).unwrap_err().to_string();
        assert_eq!(e, "larger than 3 bytes (the limit for this file)");
        let e = read(Path::new("/dev/zero"), 10).unwrap_err().to_string();
        assert!(e.starts_with("a device"), "{e}");
        assert!(read(d.path(), 10)
            .unwrap_err()
            .to_string()
            .starts_with("a directory"));
        assert_eq!(
            read(&d.path().join("none"), 1).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }
}
