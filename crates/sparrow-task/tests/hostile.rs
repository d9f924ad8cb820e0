//! The runner against hostile or careless input, with real processes:
//! parameters that try to inject code, output that tries to fill the
//! memory, processes that try to outlive their deadline, files that try to
//! hang or exhaust a reader, checks that try to run forever. The rule:
//! bad input gets a clear error and loses nothing; nothing is injectable;
//! nothing takes the caller down (no hang, no crash, bounded memory).
//!
//! Anything that could hang runs under [`within`], so a regression fails
//! the test instead of stalling CI.

mod hostile {
    mod checks;
    mod files;
    mod inject;
    mod output;
    mod process;
}

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;
use sparrow_task::runner::{run, Options, Outcome, Silent};
use sparrow_task::TaskError;

mod common;

pub use common::Task;

impl Task {
    /// Runs the root (under [`within`] 20 s).
    pub fn try_run(&self, opts: Options) -> Result<Outcome, TaskError> {
        let root = self.root();
        within(20, move || run(&root, &root, &opts, &mut Silent))
    }

    /// Runs the root with these parameters; it must start.
    pub fn run(&self, params: Value) -> Outcome {
        self.try_run(self.opts_with(params))
            .unwrap_or_else(|e| panic!("the run did not start: {e}"))
    }

    /// Runs the root with a time limit; it must start.
    pub fn run_for(&self, timeout: Duration) -> Outcome {
        self.try_run(Options {
            timeout: Some(timeout),
            ..self.opts()
        })
        .unwrap_or_else(|e| panic!("the run did not start: {e}"))
    }
}

/// Runs `f` on a thread of its own and fails if it takes longer than
/// `secs` seconds (the thread is left behind: it is the bug).
pub fn within<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(v) => v,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("still running after {secs} s: it hangs"),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("it panicked (see above)"),
    }
}

/// The transcript for failure messages (long lines shortened).
pub fn shown(o: &Outcome) -> String {
    let lines: Vec<String> = o
        .transcript
        .iter()
        .map(|l| l.chars().take(200).collect())
        .collect();
    format!("status {:?}\n{}", o.status, lines.join("\n"))
}

/// Whether some transcript line contains `text`.
pub fn said(o: &Outcome, text: &str) -> bool {
    o.transcript.iter().any(|l| l.contains(text))
}

/// Makes a FIFO at `path`.
pub fn mkfifo(path: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
}

/// Whether `program args` runs here (and succeeds).
pub fn have(program: &str, args: &[&str]) -> bool {
    std::process::Command::new(program)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
