//! The lab: a real systemd, as PID 1, in a throwaway container.
//!
//! [`Lab::boot`] makes a directory holding only a bind of the host's `/usr`
//! (and the `bin sbin lib lib64` symlinks), and boots it with
//! `systemd-nspawn --volatile=yes` inside a private mount namespace with its
//! own `/run`. The project's binary is installed inside as the generator and
//! as `/opt/sparrow/bin/systemd-sparrow`; definitions and unit files are
//! host directories bound into `/etc/systemd/sparrow` and
//! `/etc/systemd/system`, so tests edit them from the outside. A package's
//! unpacked `usr/` can be laid over the host's `/usr` instead (read-only
//! overlayfs, [`Setup::usr_layer`]), to boot with what it installs.
//!
//! Clean-up never depends on the test behaving: a reaper process in its own
//! session holds a pipe from the test process and, when the pipe closes (the
//! lab was dropped, the test panicked or was killed) or a watchdog deadline
//! passes, kills everything in the lab's own cgroups and removes them and the
//! lab directory. Every wait has a timeout and says what it waited for.
//!
//! Needs root and `systemd-container`; without them [`Lab::boot`] returns an
//! error whose message is one line saying so.
#![deny(missing_docs)]

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Why the lab could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// The lab needs root (CI runs as root).
    #[error("the lab needs root to run systemd-nspawn (CI runs as root); run the tests as root")]
    NotRoot,
    /// A program the lab needs is missing.
    #[error("the lab needs `{0}`: apt-get install -y {1}")]
    MissingTool(&'static str, &'static str),
    /// Setting up the lab on the host failed.
    #[error("lab setup: {0}")]
    Setup(String),
    /// Something did not happen in time.
    #[error("timed out after {:?} waiting for {what}{}", .after, if .detail.is_empty() { String::new() } else { format!(": {}", .detail) })]
    Timeout {
        /// What was waited for.
        what: String,
        /// How long.
        after: Duration,
        /// What was seen last.
        detail: String,
    },
    /// systemd did not reach `running`.
    #[error("the lab's systemd is {state} after boot, not running; failed units: {failed}")]
    Degraded {
        /// What `systemctl is-system-running` said.
        state: String,
        /// `systemctl --failed`.
        failed: String,
    },
}

mod setup;

pub use setup::{Output, Setup};

/// A running lab. Dropping it powers the container off and removes every
/// trace of it; a panicking test also gets the container's journal printed.
pub struct Lab {
    dir: PathBuf,
    cgroups: Vec<PathBuf>,
    nspawn: Child,
    init: u32,
    reaper: Option<(Child, ChildStdin)>,
    boot_time: Duration,
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

mod host;

pub use host::preflight;
use host::{cgroup_bases, find_init, run_timed, setup_err, write_file, PATH};

impl Lab {
    /// Boots a lab and waits until its systemd is `running`.
    pub fn boot(setup: Setup) -> Result<Lab, LabError> {
        preflight()?;
        let id = format!(
            "sparrow-lab-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let dir = std::env::temp_dir().join(&id);
        let mk =
            |p: &Path| fs::create_dir_all(p).map_err(|e| setup_err(&p.display().to_string(), e));
        for sub in ["root/usr", "sparrow", "system", "generators", "bin"] {
            mk(&dir.join(sub))?;
        }
        for l in ["bin", "sbin", "lib", "lib64"] {
            let _ = std::os::unix::fs::symlink(format!("usr/{l}"), dir.join("root").join(l));
        }
        let cgroups: Vec<PathBuf> = cgroup_bases().into_iter().map(|b| b.join(&id)).collect();
        for cg in &cgroups {
            mk(cg)?;
        }

        // The reaper first, so nothing below can leak.
        let mut reaper = Command::new("bash")
            .arg("-c")
            .arg(include_str!("reaper.sh"))
            .arg("sparrow-lab-reaper")
            .arg(setup.watchdog.as_secs().max(1).to_string())
            .arg(&dir)
            .args(&cgroups)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|e| setup_err("starting the reaper", e))?;
        let pipe = reaper.stdin.take().expect("piped");
        let reaper = Some((reaper, pipe));

        // A quiet boot on an empty /etc: first-boot would wait for a key
        // press, and with a private network (only lo) waiting for
        // network-online would take its full two-minute timeout.
        for unit in [
            "systemd-firstboot.service",
            "systemd-networkd-wait-online.service",
        ] {
            std::os::unix::fs::symlink("/dev/null", dir.join("system").join(unit))
                .map_err(|e| setup_err(&format!("masking {unit}"), e))?;
        }
        if let Some(bin) = &setup.sparrow {
            // One binary under three names: the CLI, the generator and the
            // daemon (it dispatches on argv[0]). Hard links spare copying a
            // large debug build; a copy when they are on different file systems.
            for (to, what) in [
                ("bin/systemd-sparrow", "copying systemd-sparrow"),
                (
                    "generators/systemd-sparrow-generator",
                    "installing the generator",
                ),
                ("bin/systemd-sparrowd", "installing systemd-sparrowd"),
            ] {
                let to = dir.join(to);
                fs::hard_link(bin, &to)
                    .or_else(|_| fs::copy(bin, &to).map(|_| ()))
                    .map_err(|e| setup_err(what, e))?;
            }
        }
        for (name, text) in &setup.definitions {
            let p = dir.join("sparrow").join(name);
            if let Some(parent) = p.parent() {
                mk(parent)?;
            }
            write_file(&p, text, 0o644)?;
        }
        for (name, text) in &setup.unit_files {
            let p = dir.join("system").join(name);
            if let Some(parent) = p.parent() {
                mk(parent)?;
            }
            write_file(&p, text, 0o644)?;
        }

        let usr_layer = match &setup.usr_layer {
            Some(layer) => Some(usr_layer(layer)?),
            None => None,
        };

        let console =
            fs::File::create(dir.join("console.log")).map_err(|e| setup_err("console log", e))?;
        let start = Instant::now();
        let bind = |host: &str, inner: &str, ro: bool| {
            format!(
                "--bind{}={}:{inner}",
                if ro { "-ro" } else { "" },
                dir.join(host).display()
            )
        };
        let mut nspawn = Command::new("unshare");
        nspawn
            .args([
                "--mount",
                "--propagation",
                "private",
                "bash",
                "-c",
                include_str!("boot.sh"),
                "sparrow-lab-boot",
            ])
            .arg(&dir)
            .args(&cgroups)
            .arg("--")
            .arg(bind("sparrow", "/etc/systemd/sparrow", false))
            .arg(bind("system", "/etc/systemd/system", false))
            .arg(bind("generators", "/etc/systemd/system-generators", true))
            .arg(bind("bin", "/opt/sparrow/bin", true))
            .env_clear()
            .env("PATH", PATH)
            .stdin(Stdio::null())
            .stdout(
                console
                    .try_clone()
                    .map_err(|e| setup_err("console log", e))?,
            )
            .stderr(console);
        if let Some(layer) = &usr_layer {
            nspawn.env("SPARROW_LAB_USR_LAYER", layer);
        }
        let nspawn = nspawn
            .spawn()
            .map_err(|e| setup_err("starting systemd-nspawn", e))?;
        let mut lab = Lab {
            dir,
            cgroups,
            nspawn,
            init: 0,
            reaper,
            boot_time: Duration::ZERO,
        };

        let deadline = Instant::now() + setup.boot_timeout;
        lab.init = loop {
            if let Some(pid) = find_init(lab.nspawn.id()) {
                break pid;
            }
            if let Ok(Some(st)) = lab.nspawn.try_wait() {
                return Err(LabError::Setup(format!(
                    "systemd-nspawn exited ({st}): {}",
                    lab.console_tail(15)
                )));
            }
            if Instant::now() > deadline {
                return Err(LabError::Timeout {
                    what: "the container's PID 1 to appear".into(),
                    after: setup.boot_timeout,
                    detail: lab.console_tail(15),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        // PID 1 exists before it is systemd, and systemd answers before it
        // listens ("offline"): retry until it gives a real answer.
        let state = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let is_systemd = fs::read_to_string(format!("/proc/{}/comm", lab.init))
                .is_ok_and(|c| c.trim() == "systemd");
            if is_systemd {
                let o = match lab.exec_timeout(&["systemctl", "is-system-running", "--wait"], left)
                {
                    Ok(o) => o,
                    Err(LabError::Timeout { after, .. }) => {
                        // Say what boot is still doing.
                        let jobs = lab
                            .exec(&["systemctl", "list-jobs", "--no-legend", "--plain"])
                            .map(|o| o.stdout)
                            .unwrap_or_default();
                        return Err(LabError::Timeout {
                            what: "boot to finish (`systemctl is-system-running --wait`)".into(),
                            after,
                            detail: format!(
                                "jobs still running: {}",
                                jobs.trim().replace('\n', "; ")
                            ),
                        });
                    }
                    Err(e) => return Err(e),
                };
                let state = o.stdout.trim().to_string();
                if !state.is_empty() && state != "offline" {
                    break state;
                }
            }
            if Instant::now() > deadline {
                return Err(LabError::Timeout {
                    what: "systemd in the lab to answer".into(),
                    after: setup.boot_timeout,
                    detail: lab.console_tail(15),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        lab.boot_time = start.elapsed();
        if state != "running" && !(setup.allow_degraded && state == "degraded") {
            let failed = lab
                .exec(&["systemctl", "--failed", "--no-legend", "--plain"])
                .map(|o| o.stdout)
                .unwrap_or_default();
            eprintln!("{}", lab.journal_tail(80));
            return Err(LabError::Degraded {
                state,
                failed: failed.trim().replace('\n', "; "),
            });
        }
        Ok(lab)
    }

    /// Time from spawning nspawn to `running`.
    pub fn boot_time(&self) -> Duration {
        self.boot_time
    }

    /// The host's PID of the lab process whose PID inside is `inner` (for
    /// host tools such as `perf -p`), if it runs.
    pub fn host_pid(&self, inner: &str) -> Option<u32> {
        let init = self.init_pid().to_string();
        let ns = std::fs::read_link(format!("/proc/{init}/ns/pid")).ok()?;
        std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            if std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok()? != ns {
                return None;
            }
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
            let nspid = status.lines().find_map(|l| l.strip_prefix("NSpid:"))?;
            (nspid.split_whitespace().last()? == inner).then_some(pid)
        })
    }

    /// The container's PID 1 as the host sees it.
    pub fn init_pid(&self) -> u32 {
        self.init
    }

    /// The lab's directory on the host (removed with the lab).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The lab's own cgroups on the host (removed with the lab).
    pub fn cgroups(&self) -> &[PathBuf] {
        &self.cgroups
    }

    /// The host directory bound to the container's `/etc/systemd/sparrow`.
    pub fn definitions_dir(&self) -> PathBuf {
        self.dir.join("sparrow")
    }

    /// The host directory bound to the container's `/etc/systemd/system`.
    pub fn units_dir(&self) -> PathBuf {
        self.dir.join("system")
    }

    /// Writes (or replaces) a definition, root-owned and 0644.
    pub fn write_definition(&self, name: &str, text: &str) -> Result<(), LabError> {
        write_file(&self.definitions_dir().join(name), text, 0o644)
    }

    /// Writes (or replaces) a file in `/etc/systemd/system`.
    pub fn write_unit_file(&self, name: &str, text: &str) -> Result<(), LabError> {
        write_file(&self.units_dir().join(name), text, 0o644)
    }

    /// Runs a command inside the container (30 s limit).
    pub fn exec(&self, argv: &[&str]) -> Result<Output, LabError> {
        self.exec_timeout(argv, Duration::from_secs(30))
    }

    /// Runs a command inside the container, killed after `timeout`.
    pub fn exec_timeout(&self, argv: &[&str], timeout: Duration) -> Result<Output, LabError> {
        let secs = format!("{:.1}", timeout.as_secs_f64().max(0.5));
        let what = format!("`{}` in the lab", argv.join(" "));
        // `timeout` inside stops the command itself; the outer limit stops nsenter.
        let out = run_timed(
            Command::new("nsenter")
                .args([
                    "-t",
                    &self.init.to_string(),
                    "-a",
                    "timeout",
                    "-k",
                    "2",
                    &secs,
                ])
                .args(argv)
                .env_clear()
                .env("PATH", PATH)
                .env("LANG", "C.UTF-8")
                .env("SYSTEMD_PAGER", "")
                .env("SYSTEMD_COLORS", "0"),
            timeout + Duration::from_secs(5),
            &what,
        )?;
        if out.code == Some(124) {
            return Err(LabError::Timeout {
                what,
                after: timeout,
                detail: format!("{}{}", out.stdout, out.stderr).trim().to_string(),
            });
        }
        Ok(out)
    }

    /// Runs a shell script inside the container.
    pub fn sh(&self, script: &str) -> Result<Output, LabError> {
        self.exec(&["/bin/sh", "-c", script])
    }

    /// `systemctl daemon-reload`, checked.
    pub fn daemon_reload(&self) -> Result<(), LabError> {
        let o = self.exec(&["systemctl", "daemon-reload"])?;
        if !o.ok() {
            return Err(LabError::Setup(format!(
                "daemon-reload failed: {}",
                o.stderr.trim()
            )));
        }
        Ok(())
    }

    /// `systemctl show -p ...` as a map.
    pub fn show(&self, unit: &str, props: &[&str]) -> Result<BTreeMap<String, String>, LabError> {
        let mut argv = vec!["systemctl", "show", unit];
        let joined = props.join(",");
        if !props.is_empty() {
            argv.extend(["-p", &joined]);
        }
        let o = self.exec(&argv)?;
        Ok(o.stdout
            .lines()
            .filter_map(|l| {
                l.split_once('=')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
            })
            .collect())
    }

    /// One property of a unit.
    pub fn prop(&self, unit: &str, prop: &str) -> Result<String, LabError> {
        Ok(self.show(unit, &[prop])?.remove(prop).unwrap_or_default())
    }

    /// Polls `cond` every 100 ms until it holds, or fails naming `what` and
    /// the last thing `cond` saw.
    pub fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        mut cond: impl FnMut(&Lab) -> Result<(bool, String), LabError>,
    ) -> Result<(), LabError> {
        let start = Instant::now();
        loop {
            let (done, seen) = cond(self)?;
            if done {
                return Ok(());
            }
            if start.elapsed() > timeout {
                return Err(LabError::Timeout {
                    what: what.into(),
                    after: timeout,
                    detail: seen,
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until `unit`'s ActiveState is `state`.
    pub fn wait_active_state(
        &self,
        unit: &str,
        state: &str,
        timeout: Duration,
    ) -> Result<(), LabError> {
        self.wait_for(&format!("{unit} to be {state}"), timeout, |lab| {
            let s = lab.prop(unit, "ActiveState")?;
            Ok((s == state, format!("ActiveState={s}")))
        })
    }

    /// Messages of this boot's journal matching `filters` (`journalctl`
    /// arguments such as `-u x` or `FIELD=value`), one per line.
    pub fn journal(&self, filters: &[&str]) -> Result<String, LabError> {
        let mut argv = vec!["journalctl", "-b", "--no-pager", "-o", "cat"];
        argv.extend_from_slice(filters);
        let o = self.exec(&argv)?;
        if !o.ok() {
            return Err(LabError::Setup(format!(
                "journalctl {}: {}",
                filters.join(" "),
                o.stderr.trim()
            )));
        }
        Ok(o.stdout)
    }

    /// The last `lines` lines of this boot's journal.
    pub fn journal_tail(&self, lines: usize) -> String {
        let n = lines.to_string();
        match self.exec(&["journalctl", "-b", "--no-pager", "-q", "-n", &n]) {
            Ok(o) => format!(
                "--- lab journal (last {lines} lines) ---\n{}{}",
                o.stdout, o.stderr
            ),
            Err(e) => format!("--- lab journal unavailable: {e}"),
        }
    }

    fn console_tail(&self, lines: usize) -> String {
        let text = fs::read_to_string(self.dir.join("console.log")).unwrap_or_default();
        let v: Vec<&str> = text.lines().collect();
        v[v.len().saturating_sub(lines)..].join(" | ")
    }

    fn teardown(&mut self) {
        // Ask for a clean poweroff: nspawn turns SIGTERM into one.
        // SAFETY: plain kill(2) on our own child.
        unsafe { libc::kill(self.nspawn.id() as i32, libc::SIGTERM) };
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(15) {
            if let Ok(Some(_)) = self.nspawn.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Whatever happened, the reaper finishes the job: closing its pipe wakes it.
        if let Some((mut reaper, pipe)) = self.reaper.take() {
            drop(pipe);
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(20) {
                if let Ok(Some(_)) = reaper.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = self.nspawn.kill();
        let _ = self.nspawn.wait();
    }
}

/// `layer` made absolute and checked for overlayfs's `lowerdir=` (a
/// directory, no `:` or `,` in its path).
fn usr_layer(layer: &Path) -> Result<PathBuf, LabError> {
    let abs = fs::canonicalize(layer).map_err(|e| setup_err(&layer.display().to_string(), e))?;
    if !abs.is_dir() {
        return Err(LabError::Setup(format!(
            "the /usr layer {} is not a directory",
            abs.display()
        )));
    }
    let text = abs.to_str().unwrap_or(":");
    if text.contains([':', ',']) {
        return Err(LabError::Setup(format!(
            "the /usr layer's path {} cannot be an overlayfs lower directory (':' or ',' in it, or not UTF-8)",
            abs.display()
        )));
    }
    Ok(abs)
}

impl Drop for Lab {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = writeln!(std::io::stderr(), "{}", self.journal_tail(150));
        }
        self.teardown();
    }
}
