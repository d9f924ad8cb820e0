//! Running one script: its own process group, stdout streamed line by line,
//! stderr collected, a deadline after which the whole group is killed, and
//! no waiting on descendants that keep the pipes open after it exits.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::limits::MAX_LINE;

/// How long output from descendants is still read after the script exited.
const LINGER: Duration = Duration::from_millis(50);
/// Lines of stderr kept (the last ones).
const STDERR_KEPT: usize = 1000;
/// Bytes of stderr kept (the last lines that fit, one at least).
const STDERR_BYTES: usize = 1 << 20;

/// How a script ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this status.
    Code(i32),
    /// A signal ended it.
    Signal(i32),
    /// The deadline passed; its process group was killed.
    TimedOut,
}

impl Exit {
    /// The status a shell would report (`128 + signal` for a signal, 124
    /// for a timeout, as `timeout(1)` does).
    pub fn code(&self) -> i32 {
        match self {
            Exit::Code(c) => *c,
            Exit::Signal(s) => 128 + s,
            Exit::TimedOut => 124,
        }
    }
}

/// What a script printed and how it ended.
#[derive(Debug, Clone)]
pub struct Ran {
    /// How it ended.
    pub exit: Exit,
    /// Its stderr lines (the last [`STDERR_KEPT`], within [`STDERR_BYTES`]).
    pub stderr: Vec<String>,
    /// Lines (stdout and stderr) longer than their limit, cut to it.
    pub cut: u64,
}

/// Splits a byte stream into lines on `\n`, `\r\n` and `\r`, as Sparrow6
/// reads task output. A line longer than `max` is cut (its rest dropped
/// and the line counted), so output without a newline cannot fill the
/// memory.
struct Lines {
    max: usize,
    buf: Vec<u8>,
    /// A `\r` ended the last line: a `\n` right after it is part of it.
    after_cr: bool,
    /// The line being read is past `max`.
    cutting: bool,
    /// Lines cut so far.
    cut: u64,
}

impl Lines {
    fn new(max: usize) -> Lines {
        Lines {
            max,
            buf: Vec::new(),
            after_cr: false,
            cutting: false,
            cut: 0,
        }
    }

    fn push(&mut self, data: &[u8], out: &mut dyn FnMut(String)) {
        for &b in data {
            if self.after_cr {
                self.after_cr = false;
                if b == b'\n' {
                    continue;
                }
            }
            match b {
                b'\n' | b'\r' => {
                    self.after_cr = b == b'\r';
                    self.emit(out);
                }
                _ if self.buf.len() == self.max => self.cutting = true,
                b => self.buf.push(b),
            }
        }
    }

    fn emit(&mut self, out: &mut dyn FnMut(String)) {
        if std::mem::take(&mut self.cutting) {
            self.cut += 1;
        }
        out(String::from_utf8_lossy(&self.buf).into_owned());
        self.buf.clear();
    }

    fn finish(&mut self, out: &mut dyn FnMut(String)) {
        if !self.buf.is_empty() {
            self.emit(out);
        }
    }
}

fn pidfd(pid: u32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    // SAFETY: a non-negative result is a descriptor we now own.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

fn set_nonblocking(fd: RawFd) {
    // SAFETY: fcntl on a descriptor we own.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags >= 0 {
            libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
        }
    }
}

fn kill_group(child: &Child) {
    // SAFETY: kill with a negative pid signals the process group the child
    // leads (it called setpgid(0, 0) before exec).
    unsafe {
        libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL);
    }
}

/// Set (from a signal handler) when the caller was asked to stop.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);
/// Set when a caller handles interrupts: waits then wake up to look.
static WATCHED: AtomicBool = AtomicBool::new(false);

/// Stops every running script as if its deadline had passed (its group is
/// killed, the run ends with a timeout). Async-signal-safe: the CLI calls
/// it from its SIGINT/SIGTERM handler, because scripts run in their own
/// process group and so never see the terminal's Ctrl-C themselves.
pub fn interrupt() {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Whether [`interrupt`] was called.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Says that [`interrupt`] may be called: waits are then cut to 100 ms,
/// so a signal that lands just before a wait is seen soon.
pub fn watch_interrupts() {
    WATCHED.store(true, Ordering::SeqCst);
}

fn cap_for_interrupts(wait: Option<Duration>) -> Option<Duration> {
    if !WATCHED.load(Ordering::Relaxed) {
        return wait;
    }
    let cap = Duration::from_millis(100);
    Some(wait.map_or(cap, |w| w.min(cap)))
}

/// Runs `cmd` in a process group of its own, calling `on_line` with each
/// stdout line as it arrives (cut at [`MAX_LINE`]). `deadline` kills the
/// group.
pub fn run(
    cmd: Command,
    deadline: Option<Instant>,
    on_line: &mut dyn FnMut(String),
) -> io::Result<Ran> {
    run_lines(cmd, deadline, MAX_LINE, on_line)
}

/// [`run`], with stdout lines cut at `max_line` bytes (stderr's still at
/// [`MAX_LINE`]).
pub fn run_lines(
    mut cmd: Command,
    deadline: Option<Instant>,
    max_line: usize,
    on_line: &mut dyn FnMut(String),
) -> io::Result<Ran> {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    // Its own process group, so a timeout kills what it started too. Set
    // through `process_group` rather than a pre_exec hook: that keeps
    // posix_spawn (vfork-like) available, where a hook forces fork, which
    // copies the caller's page tables (a millisecond in a large daemon).
    cmd.process_group(0);
    let mut child = cmd.spawn()?;
    let (Some(mut stdout), Some(mut stderr)) = (child.stdout.take(), child.stderr.take()) else {
        kill_group(&child);
        let _ = child.wait();
        return Err(io::Error::other("no pipes"));
    };
    set_nonblocking(stdout.as_raw_fd());
    set_nonblocking(stderr.as_raw_fd());
    let exited = pidfd(child.id());
    let mut out_lines = Lines::new(max_line);
    let mut err_lines = Lines::new(MAX_LINE);
    let mut errs: VecDeque<String> = VecDeque::new();
    let mut err_bytes = 0;
    let mut keep_err = |l: String| {
        err_bytes += l.len();
        errs.push_back(l);
        while errs.len() > STDERR_KEPT || (err_bytes > STDERR_BYTES && errs.len() > 1) {
            err_bytes -= errs.pop_front().map_or(0, |l| l.len());
        }
    };
    let (mut out_open, mut err_open) = (true, true);
    let mut linger_until: Option<Instant> = None;
    let mut timed_out = false;
    let mut chunk = [0u8; 8192];
    while out_open || err_open {
        if interrupted() {
            timed_out = true;
            kill_group(&child);
            break;
        }
        let now = Instant::now();
        let mut wait = cap_for_interrupts(deadline.map(|d| d.saturating_duration_since(now)));
        if let Some(l) = linger_until {
            let left = l.saturating_duration_since(now);
            wait = Some(wait.map_or(left, |w| w.min(left)));
        }
        if wait == Some(Duration::ZERO) {
            if linger_until.is_some_and(|l| now >= l) {
                break; // descendants hold the pipes; the script is done
            }
            timed_out = true;
            kill_group(&child);
            break;
        }
        let mut fds = [
            libc::pollfd {
                fd: if out_open { stdout.as_raw_fd() } else { -1 },
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: if err_open { stderr.as_raw_fd() } else { -1 },
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: match (&exited, linger_until) {
                    (Some(p), None) => p.as_raw_fd(),
                    _ => -1,
                },
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        let ms = wait.map_or(-1, |w| w.as_millis().clamp(1, i32::MAX as u128) as i32);
        // SAFETY: three valid pollfd structs (fd -1 entries are ignored).
        let r = unsafe { libc::poll(fds.as_mut_ptr(), 3, ms) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            kill_group(&child);
            let _ = child.wait();
            return Err(e);
        }
        if fds[0].revents != 0 {
            loop {
                match stdout.read(&mut chunk) {
                    Ok(0) => {
                        out_open = false;
                        break;
                    }
                    Ok(n) => out_lines.push(&chunk[..n], on_line),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => {
                        out_open = false;
                        break;
                    }
                }
            }
        }
        if fds[1].revents != 0 {
            loop {
                match stderr.read(&mut chunk) {
                    Ok(0) => {
                        err_open = false;
                        break;
                    }
                    Ok(n) => err_lines.push(&chunk[..n], &mut keep_err),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => {
                        err_open = false;
                        break;
                    }
                }
            }
        }
        if fds[2].revents != 0 {
            // The script itself is gone: read what is left, briefly.
            linger_until = Some(Instant::now() + LINGER);
        }
    }
    out_lines.finish(on_line);
    err_lines.finish(&mut keep_err);
    // The pipes are closed, but the script may still run (it can close its
    // stdout): wait for it, up to the deadline.
    while !timed_out && child.try_wait()?.is_none() {
        let left =
            cap_for_interrupts(deadline.map(|d| d.saturating_duration_since(Instant::now())));
        if interrupted() || deadline.is_some_and(|d| Instant::now() >= d) {
            timed_out = true;
            break;
        }
        let mut fd = [libc::pollfd {
            fd: exited.as_ref().map_or(-1, |p| p.as_raw_fd()),
            events: libc::POLLIN,
            revents: 0,
        }];
        // Without a pidfd, check again every 10 ms.
        let ms = match (&exited, left) {
            (None, _) => 10,
            (Some(_), None) => -1,
            (Some(_), Some(l)) => l.as_millis().clamp(1, i32::MAX as u128) as i32,
        };
        // SAFETY: one valid pollfd struct (or none to wait on, with fd -1).
        unsafe { libc::poll(fd.as_mut_ptr(), 1, ms) };
    }
    // Whatever it left running in its group goes with it (before reaping
    // it: until then its pid, and so the group id, cannot be reused).
    kill_group(&child);
    let status = child.wait()?;
    let exit = if timed_out {
        Exit::TimedOut
    } else if let Some(s) = status.signal() {
        Exit::Signal(s)
    } else {
        Exit::Code(status.code().unwrap_or(1))
    };
    Ok(Ran {
        exit,
        stderr: errs.into(),
        cut: out_lines.cut + err_lines.cut,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str, deadline: Option<Duration>) -> (Ran, Vec<String>) {
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(script);
        let mut lines = Vec::new();
        let ran = run(cmd, deadline.map(|d| Instant::now() + d), &mut |l| {
            lines.push(l)
        })
        .unwrap();
        (ran, lines)
    }

    #[test]
    fn lines_end_at_lf_crlf_and_cr() {
        let (ran, lines) = sh("printf 'a\\nb\\r\\nc\\rd'; echo e >&2; exit 3", None);
        assert_eq!(lines, vec!["a", "b", "c", "d"]);
        assert_eq!(ran.stderr, vec!["e"]);
        assert_eq!(ran.exit, Exit::Code(3));
    }

    #[test]
    fn the_deadline_kills_the_whole_group() {
        let start = Instant::now();
        let (ran, lines) = sh(
            "echo started; sleep 30 & sleep 30; echo never",
            Some(Duration::from_millis(300)),
        );
        assert_eq!(ran.exit, Exit::TimedOut);
        assert_eq!(ran.exit.code(), 124);
        assert_eq!(lines, vec!["started"]);
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn a_background_child_holding_the_pipe_does_not_hold_the_caller() {
        let start = Instant::now();
        let (ran, lines) = sh("echo done; sleep 30 &", None);
        assert_eq!(ran.exit, Exit::Code(0));
        assert_eq!(lines, vec!["done"]);
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn a_signal_is_reported() {
        let (ran, _) = sh("kill -TERM $$", None);
        assert_eq!(ran.exit, Exit::Signal(libc::SIGTERM));
        assert_eq!(ran.exit.code(), 143);
    }
}
