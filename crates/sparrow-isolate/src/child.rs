//! The child's side: a request/reply channel on stdin and stdout.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{ARG0, ATTACHMENT, MAX_MESSAGE, PROGRESS_FD};

/// When this process was started as a child (`argv[0]` is [`ARG0`]), the
/// role it was given (`argv[1]`), else `None`.
pub fn role(argv: &[OsString]) -> Option<String> {
    let name = Path::new(argv.first()?).file_name()?;
    (name == ARG0).then(|| {
        argv.get(1)
            .map(|r| r.to_string_lossy().into_owned())
            .unwrap_or_default()
    })
}

/// Requests in, replies out. Stdout is taken over for replies and fd 1 is
/// pointed at stderr, so that nothing else the process prints can corrupt
/// the protocol.
pub struct Channel {
    input: BufReader<io::Stdin>,
    output: BufWriter<File>,
    line: Vec<u8>,
    progress: Option<File>,
}

impl Channel {
    /// Takes over stdin and stdout.
    pub fn take() -> io::Result<Channel> {
        // SAFETY: dup/dup2 on the standard descriptors; the duplicate is
        // owned by the returned File from here on.
        let out = unsafe {
            let fd = libc::fcntl(1, libc::F_DUPFD_CLOEXEC, 3);
            if fd < 0 || libc::dup2(2, 1) < 0 {
                return Err(io::Error::last_os_error());
            }
            OwnedFd::from_raw_fd(fd)
        };
        // SAFETY: F_GETFD only asks whether the descriptor is open; when it
        // is, it is the parent's progress file, owned by the File from here
        // on and closed on exec so that nothing this process runs inherits it.
        let progress = unsafe {
            (libc::fcntl(PROGRESS_FD, libc::F_GETFD) >= 0
                && libc::fcntl(PROGRESS_FD, libc::F_SETFD, libc::FD_CLOEXEC) >= 0)
                .then(|| File::from_raw_fd(PROGRESS_FD))
        };
        Ok(Channel {
            input: BufReader::new(io::stdin()),
            output: BufWriter::new(File::from(out)),
            line: Vec::new(),
            progress,
        })
    }

    /// Says how far a long request got (a step number), for the parent's
    /// [`crate::Worker::recv_progress`]. A write to a memory file: it wakes
    /// nobody, so it costs nothing to call per step.
    pub fn progress(&self, step: u64) {
        if let Some(f) = &self.progress {
            let _ = f.write_at(&step.to_le_bytes(), 0);
        }
    }

    /// The next request, or `None` when the parent closed the pipe.
    pub fn recv<T: DeserializeOwned>(&mut self) -> io::Result<Option<T>> {
        self.line.clear();
        let n = (&mut self.input)
            .take(MAX_MESSAGE as u64 + 1)
            .read_until(b'\n', &mut self.line)?;
        if n == 0 {
            return Ok(None);
        }
        if n > MAX_MESSAGE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "request too long",
            ));
        }
        serde_json::from_slice(&self.line)
            .map(Some)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    /// Sends one reply (a line) and flushes it, so the parent sees progress
    /// as it happens: that is how it knows which request a crash belongs to.
    pub fn send<T: Serialize>(&mut self, reply: &T) -> io::Result<()> {
        self.send_with(reply, &[])
    }

    /// [`Channel::send`] with an attachment: bytes that travel as they are
    /// (the parent's [`crate::Worker::recv_with`] returns them), so large
    /// texts cost no JSON escaping on this side and no unescaping on the other.
    pub fn send_with<T: Serialize>(&mut self, reply: &T, attachment: &[u8]) -> io::Result<()> {
        if !attachment.is_empty() {
            writeln!(self.output, "{ATTACHMENT}{}", attachment.len())?;
            self.output.write_all(attachment)?;
        }
        serde_json::to_writer(&mut self.output, reply)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        self.output.write_all(b"\n")?;
        self.output.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_is_read_from_argv0_and_argv1() {
        let argv = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
        assert_eq!(
            role(&argv(&["sparrow-evaluator", "generate"])),
            Some("generate".into())
        );
        assert_eq!(role(&argv(&["/x/sparrow-evaluator"])), Some(String::new()));
        assert_eq!(role(&argv(&["systemd-sparrow", "generate"])), None);
        assert_eq!(role(&[]), None);
    }
}
