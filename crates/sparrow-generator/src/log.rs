//! Logging for a process that runs before logging exists.
//!
//! At boot a generator's stderr goes nowhere useful, so messages go to
//! `/dev/kmsg` (the kernel log, read by journald later), as quadlet does.
//! Inside a container `/dev/kmsg` is not the kernel's device (nspawn points
//! it elsewhere and systemd 252 drops generators' stderr), so when it is not
//! the real character device we write to journald's native socket if it
//! exists, and only then fall back to stderr.

use std::io::Write;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::Mutex;

/// Syslog priorities we use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// LOG_ERR
    Error = 3,
    /// LOG_WARNING
    Warning = 4,
    /// LOG_NOTICE
    Notice = 5,
    /// LOG_INFO
    Info = 6,
    /// LOG_DEBUG
    Debug = 7,
}

/// Where messages go.
pub enum Sink {
    /// The kernel log.
    Kmsg(std::fs::File),
    /// journald's native protocol socket.
    Journal(UnixDatagram, std::path::PathBuf),
    /// Standard error.
    Stderr,
}

/// The identifier in every message.
pub const IDENT: &str = "systemd-sparrow-generator";

/// A logger bound to one sink.
pub struct Logger {
    sink: Mutex<Sink>,
    pid: u32,
}

/// The kernel log device is character device 1:11.
fn is_kmsg_device(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| {
        use std::os::unix::fs::MetadataExt;
        let rdev = m.rdev();
        m.file_type().is_char_device() && libc::major(rdev) == 1 && libc::minor(rdev) == 11
    })
}

impl Logger {
    /// Picks the sink: `SYSTEMD_SPARROW_LOG=kmsg|journal|stderr` forces one;
    /// otherwise the real kmsg device, then the journal socket, then stderr.
    pub fn from_env() -> Logger {
        let forced = std::env::var("SYSTEMD_SPARROW_LOG").ok();
        Logger::detect(
            forced.as_deref(),
            Path::new("/dev/kmsg"),
            Path::new("/run/systemd/journal/socket"),
        )
    }

    /// [`Logger::from_env`] with the paths given, for tests.
    pub fn detect(forced: Option<&str>, kmsg: &Path, journal: &Path) -> Logger {
        let try_kmsg = || {
            is_kmsg_device(kmsg)
                .then(|| std::fs::OpenOptions::new().write(true).open(kmsg).ok())
                .flatten()
                .map(Sink::Kmsg)
        };
        let try_journal = || {
            journal
                .exists()
                .then(|| UnixDatagram::unbound().ok())
                .flatten()
                .map(|s| Sink::Journal(s, journal.to_path_buf()))
        };
        let sink = match forced {
            Some("stderr") => Sink::Stderr,
            Some("kmsg") => try_kmsg().unwrap_or(Sink::Stderr),
            Some("journal") => try_journal().unwrap_or(Sink::Stderr),
            _ => try_kmsg().or_else(try_journal).unwrap_or(Sink::Stderr),
        };
        Logger {
            sink: Mutex::new(sink),
            pid: std::process::id(),
        }
    }

    /// Which sink was chosen: `kmsg`, `journal` or `stderr`.
    pub fn sink_name(&self) -> &'static str {
        match *self.sink.lock().unwrap_or_else(|e| e.into_inner()) {
            Sink::Kmsg(_) => "kmsg",
            Sink::Journal(..) => "journal",
            Sink::Stderr => "stderr",
        }
    }

    /// Logs one message (newlines are flattened: one message, one line).
    pub fn log(&self, level: Level, msg: &str) {
        let msg = msg.replace(['\n', '\r'], " ");
        let mut sink = self.sink.lock().unwrap_or_else(|e| e.into_inner());
        let ok = match &mut *sink {
            Sink::Kmsg(f) => {
                // Facility daemon (3 << 3) plus the level.
                let line = format!("<{}>{IDENT}[{}]: {msg}\n", (3 << 3) | level as u8, self.pid);
                f.write_all(line.as_bytes()).is_ok()
            }
            Sink::Journal(sock, path) => {
                let datagram = format!(
                    "PRIORITY={}\nSYSLOG_FACILITY=3\nSYSLOG_IDENTIFIER={IDENT}\nSYSLOG_PID={}\nMESSAGE={msg}\n",
                    level as u8, self.pid
                );
                sock.send_to(datagram.as_bytes(), &*path).is_ok()
            }
            Sink::Stderr => false,
        };
        if !ok {
            let _ = writeln!(std::io::stderr(), "{IDENT}[{}]: {msg}", self.pid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_socket_is_used_when_kmsg_is_not_the_device() {
        let d = tempfile::tempdir().unwrap();
        let fake_kmsg = d.path().join("kmsg");
        std::fs::write(&fake_kmsg, "").unwrap();
        let sock_path = d.path().join("socket");
        let journal = UnixDatagram::bind(&sock_path).unwrap();
        let logger = Logger::detect(None, &fake_kmsg, &sock_path);
        assert_eq!(logger.sink_name(), "journal");
        logger.log(Level::Error, "web.sparrow:3:5: error: bad\nthing");
        let mut buf = [0u8; 1024];
        let n = journal.recv(&mut buf).unwrap();
        let got = std::str::from_utf8(&buf[..n]).unwrap();
        assert!(got.contains("PRIORITY=3\n"), "{got}");
        assert!(
            got.contains(&format!("SYSLOG_IDENTIFIER={IDENT}\n")),
            "{got}"
        );
        assert!(
            got.contains("MESSAGE=web.sparrow:3:5: error: bad thing\n"),
            "{got}"
        );
        assert_eq!(
            std::fs::read_to_string(&fake_kmsg).unwrap(),
            "",
            "the fake kmsg file must not be written"
        );
    }

    #[test]
    fn stderr_is_the_last_resort_and_can_be_forced() {
        let d = tempfile::tempdir().unwrap();
        let none = d.path().join("none");
        assert_eq!(Logger::detect(None, &none, &none).sink_name(), "stderr");
        assert_eq!(
            Logger::detect(Some("stderr"), Path::new("/dev/kmsg"), &none).sink_name(),
            "stderr"
        );
    }

    #[test]
    fn the_real_kmsg_device_is_recognised() {
        // On a normal host /dev/kmsg is the kernel's 1:11 device.
        assert!(
            is_kmsg_device(Path::new("/dev/kmsg")),
            "/dev/kmsg is not the kernel log device here"
        );
        assert!(!is_kmsg_device(Path::new("/dev/null")));
    }
}
