//! How a child ended, said for people.

use std::fmt;

/// How a child ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Death {
    /// The signal that killed it.
    pub signal: Option<i32>,
    /// Its exit status, when it exited.
    pub code: Option<i32>,
    /// The end of what it wrote to stderr (Rust's abort messages land here).
    pub stderr: String,
    /// The address-space limit it had.
    pub memory_limit: u64,
}

impl fmt::Display for Death {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.stderr.contains("has overflowed its stack") {
            return f.write_str("overflowed the stack (data or calls nested too deeply) and was stopped; nothing else was affected");
        }
        if self.stderr.contains("memory allocation of") || self.stderr.contains("capacity overflow")
        {
            return write!(
                f,
                "ran out of memory (limit {} MiB) and was stopped; nothing else was affected",
                self.memory_limit >> 20
            );
        }
        match (self.signal, self.code) {
            (Some(libc::SIGKILL), _) => {
                f.write_str("was killed (SIGKILL; the kernel's OOM killer or an administrator)")
            }
            (Some(sig), _) => write!(f, "crashed ({})", signal_name(sig)),
            (None, Some(code)) => {
                let last = self.stderr.lines().last().unwrap_or("").trim();
                if last.is_empty() {
                    write!(f, "exited unexpectedly with status {code}")
                } else {
                    write!(f, "exited unexpectedly with status {code}: {last}")
                }
            }
            (None, None) => f.write_str("ended unexpectedly"),
        }
    }
}

fn signal_name(sig: i32) -> String {
    let name = match sig {
        libc::SIGABRT => "SIGABRT",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGBUS => "SIGBUS",
        libc::SIGILL => "SIGILL",
        libc::SIGFPE => "SIGFPE",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGTERM => "SIGTERM",
        _ => return format!("signal {sig}"),
    };
    name.to_string()
}
