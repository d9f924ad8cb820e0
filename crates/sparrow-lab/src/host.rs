//! The host side of a lab: what it needs installed, where its cgroups go,
//! running a command with a deadline, finding the container's init.

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{LabError, Output};

pub(crate) const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

pub(crate) fn which(prog: &str) -> bool {
    PATH.split(':').any(|d| Path::new(d).join(prog).is_file())
}

pub(crate) fn setup_err(what: &str, e: impl std::fmt::Display) -> LabError {
    LabError::Setup(format!("{what}: {e}"))
}

/// Checks that a lab can run here; the error says what is missing.
pub fn preflight() -> Result<(), LabError> {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Err(LabError::NotRoot);
    }
    for (tool, package) in [
        ("systemd-nspawn", "systemd-container"),
        ("unshare", "util-linux"),
        ("nsenter", "util-linux"),
        ("bash", "bash"),
    ] {
        if !which(tool) {
            return Err(LabError::MissingTool(tool, package));
        }
    }
    if !Path::new("/usr/lib/systemd/systemd").is_file() {
        return Err(LabError::MissingTool("/usr/lib/systemd/systemd", "systemd"));
    }
    Ok(())
}

/// The cgroup hierarchies processes live in, as (mount point, our path):
/// on hybrid hosts both the unified and the `name=systemd` hierarchy.
pub(crate) fn cgroup_bases() -> Vec<PathBuf> {
    let own = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let path_in = |prefix: &str| {
        own.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .map(|p| p.trim_start_matches('/').to_string())
            .unwrap_or_default()
    };
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        return vec![Path::new("/sys/fs/cgroup").join(path_in("0::"))];
    }
    let mut v = Vec::new();
    if Path::new("/sys/fs/cgroup/unified/cgroup.procs").exists() {
        v.push(Path::new("/sys/fs/cgroup/unified").join(path_in("0::")));
    }
    if Path::new("/sys/fs/cgroup/systemd/cgroup.procs").exists() {
        let named = own.lines().find_map(|l| {
            l.split_once(":name=systemd:")
                .map(|(_, p)| p.trim_start_matches('/').to_string())
        });
        v.push(Path::new("/sys/fs/cgroup/systemd").join(named.unwrap_or_default()));
    }
    v
}

/// Runs `cmd` to completion, killing it after `timeout`.
pub(crate) fn run_timed(
    cmd: &mut Command,
    timeout: Duration,
    what: &str,
) -> Result<Output, LabError> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| setup_err(what, e))?;
    let mut out = child.stdout.take().expect("piped");
    let mut err = child.stderr.take().expect("piped");
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Some(st),
            Ok(None) if start.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(setup_err(what, e)),
        }
    };
    let stdout = t_out.join().unwrap_or_default();
    let stderr = t_err.join().unwrap_or_default();
    match status {
        Some(st) => Ok(Output {
            code: st.code(),
            stdout,
            stderr,
        }),
        None => Err(LabError::Timeout {
            what: what.to_string(),
            after: timeout,
            detail: format!("{stdout}{stderr}").trim().to_string(),
        }),
    }
}

/// The container's PID 1 as the host sees it: the child of nspawn whose
/// innermost PID is 1.
pub(crate) fn find_init(nspawn: u32) -> Option<u32> {
    for e in fs::read_dir("/proc").ok()?.filter_map(Result::ok) {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(status) = fs::read_to_string(format!("/proc/{pid}/status")) else {
            continue;
        };
        let ppid = status
            .lines()
            .find_map(|l| l.strip_prefix("PPid:"))
            .map(str::trim);
        let nspid = status
            .lines()
            .find_map(|l| l.strip_prefix("NSpid:"))
            .map(|l| l.split_whitespace().last().unwrap_or(""));
        if ppid == Some(&nspawn.to_string()) && nspid == Some("1") {
            return Some(pid);
        }
    }
    None
}

pub(crate) fn write_file(path: &Path, text: &str, mode: u32) -> Result<(), LabError> {
    fs::write(path, text).map_err(|e| setup_err(&path.display().to_string(), e))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| setup_err(&path.display().to_string(), e))
}
