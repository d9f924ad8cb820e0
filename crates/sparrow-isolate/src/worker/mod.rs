//! The parent's side: one child process, driven request by request.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::fs::FileExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{ARG0, ATTACHMENT, MAX_MESSAGE, PROGRESS_FD};

mod death;
pub use death::Death;

/// What a child may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Address space (`RLIMIT_AS`), bytes. Allocations beyond it fail, and
    /// the child aborts; the parent reports "out of memory".
    pub memory: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        // Far above what any definition needs (evaluating 1,000 of them fits
        // in 64 MiB of address space), far below what would push a small
        // machine into swap or the OOM killer.
        Limits { memory: 256 << 20 }
    }
}

/// Why a child cannot answer.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The child could not be started.
    #[error("cannot start an evaluator process: {0}")]
    Spawn(#[source] io::Error),
    /// The child died.
    #[error("{0}")]
    Died(Death),
    /// It did not answer within its time and was killed.
    #[error("did not finish within {} ms and was stopped", .0.as_millis())]
    TimedOut(Duration),
    /// It sent something that is not a reply, or the pipe broke; it was killed.
    #[error("broke the protocol ({0}) and was stopped")]
    Protocol(String),
}

/// One child process, driven by one thread of the parent.
///
/// The child gets `PR_SET_PDEATHSIG` (it dies with the thread that
/// spawned it, so keep a worker on that thread), an address-space limit,
/// no core dumps, and `no_new_privs`.
pub struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: ChildStdout,
    stderr: Option<ChildStderr>,
    /// Bytes read from stdout; those before `start` were returned already.
    buf: Vec<u8>,
    start: usize,
    /// Up to where `buf` is known to hold no newline.
    scanned: usize,
    /// Where reads land first (allocated and zeroed once, not per read).
    chunk: Box<[u8]>,
    /// The first bytes of stderr (Rust's abort messages come first).
    err_head: Vec<u8>,
    /// The last bytes of stderr.
    err_tail: Vec<u8>,
    limits: Limits,
    dead: bool,
    /// Shared with the child as fd [`PROGRESS_FD`]: where it says how far
    /// it got, without waking anyone (see [`Worker::recv_progress`]).
    progress: Option<File>,
}

const ERR_KEEP: usize = 2048;
/// How much one read from a child's stdout takes at most.
const READ_CHUNK: usize = 65536;

/// The longest attachment header: `@`, the digits of a length, `\n`.
const HEADER_MAX: usize = 24;

/// A reply's attachment, as far as it has arrived.
enum Attachment {
    None,
    Incomplete,
    At(std::ops::Range<usize>),
}

fn set_nonblocking(fd: i32) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor we own.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

impl Worker {
    /// Starts `program` with `argv[0]` = [`ARG0`] and `argv[1]` = `role`.
    /// Use `/proc/self/exe` to re-run this binary: it names the running
    /// file even when the path was replaced since (a package upgrade).
    pub fn spawn(program: &Path, role: &str, limits: Limits) -> Result<Worker, Failure> {
        let mut cmd = Command::new(program);
        cmd.arg0(ARG0)
            .arg(role)
            // A backtrace would push the abort's reason out of what we keep.
            .env_remove("RUST_BACKTRACE")
            .env_remove("RUST_LIB_BACKTRACE");
        Worker::spawn_command(cmd, limits)
    }

    /// Starts another program under the same containment (death with the
    /// spawning thread, `no_new_privs`, the address-space limit, no core
    /// dumps), speaking the same protocol: one JSON request per line on its
    /// stdin, one JSON reply per line on its stdout. The Raku bridge is one.
    pub fn spawn_command(mut cmd: Command, limits: Limits) -> Result<Worker, Failure> {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // SAFETY: getpid is async-signal-safe.
        let parent = unsafe { libc::getpid() };
        let memory = limits.memory;
        let progress = progress_file();
        let progress_fd = progress.as_ref().map_or(-1, |f| f.as_raw_fd());
        // SAFETY: only async-signal-safe calls (prctl, setrlimit, getppid)
        // run between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0
                    || libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                {
                    return Err(io::Error::last_os_error());
                }
                // The parent may have died before PDEATHSIG was armed.
                if libc::getppid() != parent {
                    return Err(io::Error::other("parent exited"));
                }
                let limit = |res, v: u64| {
                    // Never above what this process may have: a child of an
                    // evaluator (the Raku worker) keeps the evaluator's limit.
                    let mut now = libc::rlimit {
                        rlim_cur: 0,
                        rlim_max: 0,
                    };
                    let v = if libc::getrlimit(res, &mut now) == 0 {
                        v.min(now.rlim_max)
                    } else {
                        v
                    };
                    let r = libc::rlimit {
                        rlim_cur: v as libc::rlim_t,
                        rlim_max: v as libc::rlim_t,
                    };
                    if libc::setrlimit(res, &r) != 0 {
                        return Err(io::Error::last_os_error());
                    }
                    Ok(())
                };
                limit(libc::RLIMIT_AS, memory)?;
                limit(libc::RLIMIT_CORE, 0)?;
                if progress_fd >= 0 {
                    // dup2 leaves the copy without close-on-exec; when the
                    // file already is fd 3, clear the flag instead.
                    let r = if progress_fd == PROGRESS_FD {
                        libc::fcntl(PROGRESS_FD, libc::F_SETFD, 0)
                    } else {
                        libc::dup2(progress_fd, PROGRESS_FD)
                    };
                    if r < 0 {
                        return Err(io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(Failure::Spawn)?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Failure::Spawn(io::Error::other("no pipes")));
        };
        for fd in [stdin.as_raw_fd(), stdout.as_raw_fd(), stderr.as_raw_fd()] {
            set_nonblocking(fd).map_err(Failure::Spawn)?;
        }
        Ok(Worker {
            child,
            stdin,
            stdout,
            stderr: Some(stderr),
            buf: Vec::new(),
            start: 0,
            scanned: 0,
            chunk: vec![0; READ_CHUNK].into_boxed_slice(),
            err_head: Vec::new(),
            err_tail: Vec::new(),
            limits,
            dead: false,
            progress,
        })
    }

    /// How far the child says it got ([`crate::Channel::progress`]); 0
    /// before it said anything.
    pub fn progress(&self) -> u64 {
        let Some(f) = &self.progress else { return 0 };
        let mut b = [0u8; 8];
        match f.read_at(&mut b, 0) {
            Ok(8) => u64::from_le_bytes(b),
            _ => 0,
        }
    }

    /// Receives one reply to a request that takes many steps (a batch):
    /// the child is killed only when its progress stands still for
    /// `stall`, however long the whole takes. Waiting costs no wake-ups
    /// while the child works: its progress is read only when `stall` passes.
    pub fn recv_progress<T: DeserializeOwned>(&mut self, stall: Duration) -> Result<T, Failure> {
        let mut seen = self.progress();
        let mut deadline = Instant::now() + stall;
        loop {
            if let Some(reply) = self.take_line() {
                return reply.map(|(r, _)| r);
            }
            if self.fill()? == 0 && !self.poll_io(deadline, 0)? {
                let now = self.progress();
                if now == seen {
                    self.kill();
                    return Err(Failure::TimedOut(stall));
                }
                seen = now;
                deadline = Instant::now() + stall;
            }
        }
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends one request, waiting at most `timeout` for the pipe to take it.
    /// The child's progress starts again from 0 (it is between requests,
    /// so nothing races this).
    pub fn send<T: Serialize>(&mut self, msg: &T, timeout: Duration) -> Result<(), Failure> {
        if let Some(f) = &self.progress {
            let _ = f.write_at(&0u64.to_le_bytes(), 0);
        }
        let mut line = serde_json::to_vec(msg).map_err(|e| self.fail_protocol(e.to_string()))?;
        line.push(b'\n');
        if line.len() > MAX_MESSAGE {
            return Err(Failure::Protocol(format!(
                "a request of {} bytes is over the limit",
                line.len()
            )));
        }
        let deadline = Instant::now() + timeout;
        let mut rest = &line[..];
        while !rest.is_empty() {
            match self.stdin.write(rest) {
                Ok(n) => rest = &rest[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // Keep draining stderr so a chatty child cannot block.
                    self.wait_io(deadline, libc::POLLOUT, timeout)?;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Err(self.death()),
            }
        }
        Ok(())
    }

    /// Receives one reply, killing the child if none comes within `timeout`.
    pub fn recv<T: DeserializeOwned>(&mut self, timeout: Duration) -> Result<T, Failure> {
        self.recv_with(timeout).map(|(r, _)| r)
    }

    /// [`Worker::recv`], with the reply's attachment (empty when it has
    /// none; see [`crate::Channel::send_with`]).
    pub fn recv_with<T: DeserializeOwned>(
        &mut self,
        timeout: Duration,
    ) -> Result<(T, Vec<u8>), Failure> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(reply) = self.take_line() {
                return reply;
            }
            if self.fill()? == 0 {
                self.wait_io(deadline, 0, timeout)?;
            }
        }
    }

    /// A reply that has already arrived, without waiting for one.
    pub fn try_recv<T: DeserializeOwned>(&mut self) -> Result<Option<T>, Failure> {
        Ok(self.try_recv_with()?.map(|(r, _)| r))
    }

    /// [`Worker::try_recv`], with the reply's attachment.
    pub fn try_recv_with<T: DeserializeOwned>(&mut self) -> Result<Option<(T, Vec<u8>)>, Failure> {
        if let Some(reply) = self.take_line() {
            return reply.map(Some);
        }
        self.fill()?;
        self.take_line().transpose()
    }

    /// The next complete reply in the buffer (its attachment, then its
    /// line), parsed.
    fn take_line<T: DeserializeOwned>(&mut self) -> Option<Result<(T, Vec<u8>), Failure>> {
        let (body, attachment) = match self.attachment() {
            Ok(Attachment::None) => (self.start, None),
            Ok(Attachment::At(range)) => (range.end, Some(range)),
            Ok(Attachment::Incomplete) => {
                self.compact(self.start);
                return None;
            }
            Err(e) => return Some(Err(e)),
        };
        let from = self.scanned.max(body);
        let Some(i) = self.buf[from..].iter().position(|b| *b == b'\n') else {
            self.compact(self.buf.len());
            return None;
        };
        let end = from + i;
        let parsed = serde_json::from_slice(&self.buf[body..end]);
        let bytes = attachment.map_or_else(Vec::new, |r| self.buf[r].to_vec());
        self.start = end + 1;
        self.scanned = self.start;
        Some(
            parsed
                .map(|r| (r, bytes))
                .map_err(|e| self.fail_protocol(e.to_string())),
        )
    }

    /// Drops the replies already taken, in one move rather than one per
    /// reply; `scanned` is where the search for the line's end goes on.
    fn compact(&mut self, scanned: usize) {
        self.buf.drain(..self.start);
        self.scanned = scanned - self.start;
        self.start = 0;
    }

    /// Where the next reply's attachment is in the buffer.
    fn attachment(&mut self) -> Result<Attachment, Failure> {
        let head = &self.buf[self.start..];
        if head.first() != Some(&(ATTACHMENT as u8)) {
            return Ok(Attachment::None);
        }
        // The header is short: look for its end only there, so a child
        // that never ends it cannot make every read rescan the buffer.
        let Some(nl) = head.iter().take(HEADER_MAX).position(|b| *b == b'\n') else {
            if head.len() < HEADER_MAX {
                return Ok(Attachment::Incomplete);
            }
            return Err(self.fail_protocol("a bad attachment header".into()));
        };
        let len = std::str::from_utf8(&head[1..nl])
            .ok()
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| *n <= MAX_MESSAGE);
        let Some(len) = len else {
            return Err(self.fail_protocol("a bad attachment header".into()));
        };
        let from = self.start + nl + 1;
        Ok(if from + len <= self.buf.len() {
            Attachment::At(from..from + len)
        } else {
            Attachment::Incomplete
        })
    }

    /// Reads what stdout has now (0 bytes when nothing is there yet).
    fn fill(&mut self) -> Result<usize, Failure> {
        self.scanned = self.buf.len();
        if self.buf.len() - self.start > MAX_MESSAGE {
            return Err(self.fail_protocol("a reply over the size limit".into()));
        }
        loop {
            match self.stdout.read(&mut self.chunk) {
                Ok(0) => return Err(self.death()),
                Ok(n) => {
                    self.buf.extend_from_slice(&self.chunk[..n]);
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(0),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.fail_protocol(e.to_string())),
            }
        }
    }

    /// Waits until stdout is readable (or, with `POLLOUT`, stdin writable),
    /// collecting stderr meanwhile; kills the child at `deadline`.
    fn wait_io(&mut self, deadline: Instant, out: i16, timeout: Duration) -> Result<(), Failure> {
        if self.poll_io(deadline, out)? {
            return Ok(());
        }
        self.kill();
        Err(Failure::TimedOut(timeout))
    }

    /// Like `wait_io`, but at `deadline` returns `false` instead of killing.
    fn poll_io(&mut self, deadline: Instant, out: i16) -> Result<bool, Failure> {
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Ok(false);
            }
            let ms = (deadline - now).as_millis().clamp(1, i32::MAX as u128) as i32;
            let mut fds = [
                libc::pollfd {
                    fd: if out != 0 {
                        self.stdin.as_raw_fd()
                    } else {
                        self.stdout.as_raw_fd()
                    },
                    events: if out != 0 { out } else { libc::POLLIN },
                    revents: 0,
                },
                libc::pollfd {
                    fd: self.stderr.as_ref().map_or(-1, |e| e.as_raw_fd()),
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            // SAFETY: two valid pollfd structs (fd -1 is ignored by poll).
            let r = unsafe { libc::poll(fds.as_mut_ptr(), 2, ms) };
            if r < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(self.fail_protocol(e.to_string()));
            }
            if fds[1].revents != 0 {
                self.read_stderr();
            }
            if fds[0].revents != 0 {
                return Ok(true);
            }
        }
    }

    fn read_stderr(&mut self) {
        let Some(err) = self.stderr.as_mut() else {
            return;
        };
        let mut chunk = [0u8; 4096];
        loop {
            match err.read(&mut chunk) {
                Ok(0) => {
                    self.stderr = None;
                    return;
                }
                Ok(n) => {
                    let head = (ERR_KEEP - self.err_head.len()).min(n);
                    self.err_head.extend_from_slice(&chunk[..head]);
                    self.err_tail.extend_from_slice(&chunk[head..n]);
                    let over = self.err_tail.len().saturating_sub(ERR_KEEP);
                    self.err_tail.drain(..over);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    }

    fn fail_protocol(&mut self, why: String) -> Failure {
        self.kill();
        Failure::Protocol(why)
    }

    /// The child closed its stdout: it is dying. Collects how.
    fn death(&mut self) -> Failure {
        // It closes stdout only by exiting; give it a moment, then make sure.
        let give_up = Instant::now() + Duration::from_secs(2);
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(s)) => break Some(s),
                Ok(None) if Instant::now() < give_up => {
                    std::thread::sleep(Duration::from_millis(2));
                }
                _ => {
                    let _ = self.child.kill();
                    break self.child.wait().ok();
                }
            }
        };
        self.dead = true;
        self.read_stderr();
        let (signal, code) = status.map_or((None, None), |s| (s.signal(), s.code()));
        Failure::Died(Death {
            signal,
            code,
            stderr: format!(
                "{}{}",
                String::from_utf8_lossy(&self.err_head),
                String::from_utf8_lossy(&self.err_tail)
            ),
            memory_limit: self.limits.memory,
        })
    }

    fn kill(&mut self) {
        if !self.dead {
            let _ = self.child.kill();
            let _ = self.child.wait();
            self.dead = true;
        }
    }
}

/// A memory-backed file for progress: 8 bytes, little-endian; `None` when
/// the kernel has no memfd (the child then reports no progress).
fn progress_file() -> Option<File> {
    // SAFETY: memfd_create with a constant C string; the descriptor is
    // owned by the File from here on.
    let fd = unsafe { libc::memfd_create(c"sparrow-progress".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return None;
    }
    // SAFETY: fd was just created and is not owned elsewhere.
    let f = unsafe { File::from_raw_fd(fd) };
    f.set_len(8).ok()?;
    Some(f)
}

impl Drop for Worker {
    fn drop(&mut self) {
        // Done with it, or given up on it: either way it must not outlive us.
        self.kill();
    }
}

#[cfg(test)]
mod tests;
