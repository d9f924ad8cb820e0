//! The runtime functions closures call while a service runs, read from
//! `/proc` and the cgroup file system. Each read is small and bounded: no
//! network, no D-Bus, nothing that can block (files are opened
//! non-blocking and only regular files are read).

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use procfs::Current;
use sparrow_lang::{Psi, PsiLine, RuntimeHost};

/// What the daemon knows about a unit, shared with closures.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UnitSnapshot {
    /// `ActiveState`.
    pub active_state: String,
    /// `ControlGroup` (e.g. `/system.slice/web.service`), empty when none.
    pub control_group: String,
}

/// Units by name, kept current by the daemon.
pub type Units = Arc<RwLock<HashMap<String, UnitSnapshot>>>;

/// Largest file `read_file()` returns.
pub const READ_FILE_MAX: u64 = 64 * 1024;

/// Logs a closure's message (the daemon sends it to the journal).
pub type LogSink = Arc<dyn Fn(&str, &str) + Send + Sync>;

/// Where `alert(message, severity)` goes: (unit, message, severity).
pub type AlertSink = Arc<dyn Fn(&str, &str, &str) + Send + Sync>;

/// The runtime functions, backed by this machine.
pub struct RealRuntime {
    units: Units,
    cgroup: CgroupFs,
    log: LogSink,
    alert: Option<AlertSink>,
    /// CPUs for `load()`, counted once: `available_parallelism` reads
    /// cgroup files on every call.
    cpus: f64,
    /// Recent readings of /proc/meminfo and the load: many closures
    /// evaluated together share one read.
    recent: Mutex<Recent>,
    fresh: Duration,
    /// Where `task_run` finds plugins.
    plugins: sparrow_task::search::SearchPath,
    /// The resident Raku worker, started on first use (or by
    /// [`RealRuntime::warm_raku`]): runs the subs of Raku definitions.
    raku: Mutex<Option<sparrow_raku::resident::Resident>>,
}

/// Readings kept for [`FRESH`].
#[derive(Default)]
struct Recent {
    meminfo: Option<(Instant, String)>,
    load: Option<(Instant, f64)>,
}

/// How old a shared reading may be.
pub const FRESH: Duration = Duration::from_millis(200);

impl RealRuntime {
    /// A runtime that answers `service_*()` from `units` and logs to `log`.
    pub fn new(units: Units, log: LogSink) -> RealRuntime {
        RealRuntime {
            units,
            cgroup: CgroupFs::detect(),
            log,
            alert: None,
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()) as f64,
            recent: Mutex::default(),
            fresh: FRESH,
            plugins: sparrow_task::search::SearchPath::from_env(),
            raku: Mutex::new(None),
        }
    }

    /// Starts the Raku worker now and loads `files` into it, so that the
    /// first sub's call does not pay Raku's start-up inside its limit.
    pub fn warm_raku(&self, files: &[&std::path::Path]) -> Result<(), String> {
        self.with_raku(|r| files.iter().try_for_each(|f| r.load(f)))
    }

    /// How the Raku worker is doing (`None`: not started).
    pub fn raku_health(&self) -> Option<sparrow_raku::resident::Health> {
        let g = self.raku.lock().unwrap_or_else(|p| p.into_inner());
        g.as_ref().map(|r| r.health().clone())
    }

    fn with_raku<T>(
        &self,
        f: impl FnOnce(&mut sparrow_raku::resident::Resident) -> Result<T, String>,
    ) -> Result<T, String> {
        let mut g = self.raku.lock().unwrap_or_else(|p| p.into_inner());
        if g.is_none() {
            let env = |k: &str| std::env::var(k).ok();
            let raku = sparrow_raku::find_raku(&env).ok_or_else(|| {
                "`raku` is not installed (Debian: apt-get install rakudo)".to_string()
            })?;
            let facts = sparrow_lang::Host::facts(&crate::RealHost::from_env().0).clone();
            // Under the evaluator's own limit per closure call (1 s in the
            // daemon by default), with room for the call's callbacks.
            let ms = env("SYSTEMD_SPARROW_RAKU_CALL_MS")
                .and_then(|v| v.parse().ok())
                .unwrap_or(800);
            *g = Some(sparrow_raku::resident::Resident::new(
                raku,
                facts,
                Duration::from_millis(ms),
            ));
        }
        f(g.as_mut().expect("set above"))
    }

    /// Sends `alert()` calls to `sink` (the daemon delivers them) instead
    /// of logging them.
    pub fn with_alerts(mut self, sink: AlertSink) -> RealRuntime {
        self.alert = Some(sink);
        self
    }

    /// The same, finding `task_run`'s plugins in `plugins` instead of
    /// `SearchPath::from_env()`.
    pub fn with_plugins(mut self, plugins: sparrow_task::search::SearchPath) -> RealRuntime {
        self.plugins = plugins;
        self
    }

    /// The same, sharing readings for `fresh` instead of [`FRESH`]
    /// (`Duration::ZERO`: every call reads the machine).
    pub fn with_freshness(mut self, fresh: Duration) -> RealRuntime {
        self.fresh = fresh;
        self
    }
}

/// Where the memory accounting of a cgroup can be read.
#[derive(Debug, Clone)]
pub struct CgroupFs {
    /// cgroup v2 mount point (`/sys/fs/cgroup` or `/sys/fs/cgroup/unified`).
    pub v2: Option<PathBuf>,
    /// cgroup v1 memory controller mount point, on hybrid hosts.
    pub v1_memory: Option<PathBuf>,
}

impl CgroupFs {
    /// Finds the mounts from `/proc/self/mountinfo`.
    pub fn detect() -> CgroupFs {
        let text = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut fs = CgroupFs {
            v2: None,
            v1_memory: None,
        };
        for line in text.lines() {
            let Some((left, right)) = line.split_once(" - ") else {
                continue;
            };
            let mount_point = left.split_whitespace().nth(4).unwrap_or_default();
            let mut r = right.split_whitespace();
            let fstype = r.next().unwrap_or_default();
            let super_opts = r.nth(1).unwrap_or_default();
            match fstype {
                "cgroup2" if fs.v2.is_none() => fs.v2 = Some(PathBuf::from(mount_point)),
                "cgroup" if super_opts.split(',').any(|o| o == "memory") => {
                    fs.v1_memory = Some(PathBuf::from(mount_point))
                }
                _ => {}
            }
        }
        fs
    }

    /// Bytes of memory used by the cgroup `path`: v2 `memory.current`, else
    /// v1 `memory.usage_in_bytes`, else (a hybrid host whose memory
    /// controller is not delegated, such as a container) the resident size
    /// of the cgroup's processes, which leaves out page cache.
    pub fn memory_current(&self, path: &str) -> Result<u64, String> {
        let rel = path.trim_start_matches('/');
        let candidates = [
            self.v2.as_ref().map(|m| m.join(rel).join("memory.current")),
            self.v1_memory
                .as_ref()
                .map(|m| m.join(rel).join("memory.usage_in_bytes")),
        ];
        for p in candidates.into_iter().flatten() {
            if let Ok(t) = fs::read_to_string(&p) {
                return t
                    .trim()
                    .parse()
                    .map_err(|_| format!("{}: not a number", p.display()));
            }
        }
        match &self.v2 {
            Some(v2) if v2.join(rel).join("cgroup.procs").exists() => {
                Ok(resident_bytes(&v2.join(rel)))
            }
            _ => Err(format!(
                "no memory accounting and no process list for cgroup {path}"
            )),
        }
    }
}

/// The summed `VmRSS` of every process in a cgroup and its children.
fn resident_bytes(cgroup: &Path) -> u64 {
    let mut total = 0;
    let mut dirs = vec![cgroup.to_path_buf()];
    while let Some(d) = dirs.pop() {
        let procs = fs::read_to_string(d.join("cgroup.procs")).unwrap_or_default();
        for pid in procs.lines() {
            let status =
                fs::read_to_string(format!("/proc/{}/status", pid.trim())).unwrap_or_default();
            let kb: u64 = status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
                .unwrap_or(0);
            total += kb * 1024;
        }
        if let Ok(entries) = fs::read_dir(&d) {
            dirs.extend(
                entries
                    .filter_map(Result::ok)
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.path()),
            );
        }
    }
    total
}

fn line(r: &procfs::PressureRecord) -> PsiLine {
    PsiLine {
        avg10: f64::from(r.avg10),
        avg60: f64::from(r.avg60),
        avg300: f64::from(r.avg300),
        total: r.total,
    }
}

impl RealRuntime {
    /// `/proc/meminfo`, read at most every [`FRESH`].
    fn meminfo(&self) -> Result<String, String> {
        let mut recent = self.recent.lock().map_err(|_| "poisoned")?;
        if let Some((at, text)) = &recent.meminfo {
            if at.elapsed() < self.fresh {
                return Ok(text.clone());
            }
        }
        let text =
            fs::read_to_string("/proc/meminfo").map_err(|e| format!("/proc/meminfo: {e}"))?;
        recent.meminfo = Some((Instant::now(), text.clone()));
        Ok(text)
    }
}

/// One `/proc/meminfo` field in bytes, looked up by hand: parsing the whole
/// file into procfs's struct took longer than the rest of an evaluation.
fn meminfo_field(text: &str, key: &str) -> Result<u64, String> {
    let line = text
        .lines()
        .find(|l| l.starts_with(key))
        .ok_or_else(|| format!("/proc/meminfo has no {key}"))?;
    let kb: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("/proc/meminfo: bad {key} line"))?;
    Ok(kb * 1024)
}

/// The last `bytes` (at most [`READ_FILE_MAX`]) of a regular file, for
/// `read_file_tail()`: a log of any size costs one seek and one read. A
/// character cut at the start is dropped; invalid UTF-8 is replaced.
pub fn read_file_tail(path: &str, bytes: u64) -> Result<String, String> {
    use std::io::{Seek, SeekFrom};
    let mut f = open_regular(path)?;
    let len = f.metadata().map_err(|e| format!("{path}: {e}"))?.len();
    let want = bytes.min(READ_FILE_MAX).min(len);
    f.seek(SeekFrom::Start(len - want))
        .map_err(|e| format!("{path}: {e}"))?;
    let mut buf = Vec::with_capacity(want as usize);
    f.take(want)
        .read_to_end(&mut buf)
        .map_err(|e| format!("{path}: {e}"))?;
    // Continuation bytes of a character that began before the cut.
    let skip = buf
        .iter()
        .take(3)
        .take_while(|b| (**b & 0xC0) == 0x80)
        .count();
    Ok(String::from_utf8_lossy(&buf[skip..]).into_owned())
}

/// Opens `path` for reading if it is an absolute path to a regular file
/// (never a FIFO or a device, never the kernel log).
fn open_regular(path: &str) -> Result<fs::File, String> {
    let p = Path::new(path);
    if !p.is_absolute() {
        return Err(format!("{path}: not an absolute path"));
    }
    // Reading the kernel log's consuming interface would steal messages
    // from journald (and it passes as a regular file).
    if fs::canonicalize(p).is_ok_and(|c| c == Path::new("/proc/kmsg")) {
        return Err(format!(
            "{path}: the kernel log is not readable from closures"
        ));
    }
    let f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(p)
        .map_err(|e| format!("{path}: {e}"))?;
    let meta = f.metadata().map_err(|e| format!("{path}: {e}"))?;
    if !meta.is_file() {
        return Err(format!("{path}: not a regular file"));
    }
    Ok(f)
}

/// Reads a small regular file without blocking.
pub fn read_small_file(path: &str) -> Result<String, String> {
    let mut f = open_regular(path)?;
    let mut buf = Vec::new();
    f.by_ref()
        .take(READ_FILE_MAX + 1)
        .read_to_end(&mut buf)
        .map_err(|e| format!("{path}: {e}"))?;
    if buf.len() as u64 > READ_FILE_MAX {
        return Err(format!("{path}: larger than {READ_FILE_MAX} bytes"));
    }
    String::from_utf8(buf).map_err(|_| format!("{path}: not UTF-8 text"))
}

/// Established TCP connections (v4 and v6) whose local port is `port`.
pub fn established(port: u16) -> Result<u64, String> {
    let mut n = 0;
    for table in [procfs::net::tcp(), procfs::net::tcp6()] {
        // A host without IPv6 has no tcp6 table.
        let Ok(entries) = table else { continue };
        n += entries
            .iter()
            .filter(|e| {
                e.state == procfs::net::TcpState::Established && e.local_address.port() == port
            })
            .count() as u64;
    }
    Ok(n)
}

impl RuntimeHost for RealRuntime {
    fn available_memory(&self) -> Result<u64, String> {
        meminfo_field(&self.meminfo()?, "MemAvailable:")
    }
    fn free_memory(&self) -> Result<u64, String> {
        meminfo_field(&self.meminfo()?, "MemFree:")
    }
    fn load(&self) -> Result<f64, String> {
        let mut recent = self.recent.lock().map_err(|_| "poisoned")?;
        if let Some((at, v)) = recent.load {
            if at.elapsed() < self.fresh {
                return Ok(v);
            }
        }
        let l = procfs::LoadAverage::current().map_err(|e| e.to_string())?;
        let v = f64::from(l.one) / self.cpus * 100.0;
        recent.load = Some((Instant::now(), v));
        Ok(v)
    }
    fn psi(&self, resource: &str) -> Result<Psi, String> {
        let e = |e: procfs::ProcError| format!("/proc/pressure/{resource}: {e}");
        match resource {
            "memory" => procfs::MemoryPressure::current()
                .map(|p| Psi {
                    some: line(&p.some),
                    full: Some(line(&p.full)),
                })
                .map_err(e),
            "io" => procfs::IoPressure::current()
                .map(|p| Psi {
                    some: line(&p.some),
                    full: Some(line(&p.full)),
                })
                .map_err(e),
            "cpu" => procfs::CpuPressure::current()
                .map(|p| Psi {
                    some: line(&p.some),
                    full: None,
                })
                .map_err(e),
            other => Err(format!("unknown resource {other:?} (memory, cpu or io)")),
        }
    }
    fn service_memory(&self, unit: &str) -> Result<u64, String> {
        let cg = self
            .units
            .read()
            .map_err(|_| "unit table poisoned")?
            .get(unit)
            .map(|u| u.control_group.clone());
        match cg {
            Some(cg) if !cg.is_empty() => self.cgroup.memory_current(&cg),
            _ => Err(format!("{unit} has no control group (is it running?)")),
        }
    }
    fn service_state(&self, unit: &str) -> String {
        self.units
            .read()
            .ok()
            .and_then(|u| u.get(unit).map(|s| s.active_state.clone()))
            .unwrap_or_else(|| "unknown".into())
    }
    fn connections(&self, port: u16) -> Result<u64, String> {
        established(port)
    }
    fn read_file(&self, path: &str) -> Result<String, String> {
        read_small_file(path)
    }
    fn read_file_tail(&self, path: &str, bytes: u64) -> Result<String, String> {
        read_file_tail(path, bytes)
    }
    fn log(&self, unit: &str, message: &str) {
        (self.log)(unit, message);
    }
    fn alert(&self, unit: &str, message: &str, severity: &str) {
        match &self.alert {
            Some(sink) => sink(unit, message, severity),
            None => (self.log)(unit, &format!("ALERT ({severity}): {message}")),
        }
    }
    fn raku_call(
        &self,
        file: &str,
        desc: &str,
        keys: &[String],
        args: Vec<serde_json::Value>,
        native: &mut sparrow_lang::RakuNative<'_>,
    ) -> Result<serde_json::Value, String> {
        self.with_raku(|r| r.call(std::path::Path::new(file), desc, keys, &args, native))
    }

    fn task_run(
        &self,
        _unit: &str,
        desc: &str,
        plugin: &str,
        params: serde_json::Value,
        deadline: Instant,
    ) -> Result<serde_json::Value, sparrow_lang::TaskFailure> {
        // A tmpfs (as root: /run/systemd-sparrow/tasks, inside the
        // daemon's RuntimeDirectory), as the CLI's runs use.
        crate::tasks::run(
            &self.plugins,
            sparrow_task::default_cache_base(),
            desc,
            plugin,
            params,
            deadline,
        )
    }
}

#[cfg(test)]
mod tests;
