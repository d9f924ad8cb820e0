//! Kernel watches, the I/O side of [`crate::core::kernel`]. A PSI trigger
//! is a descriptor of a `*.pressure` file with the trigger line written to
//! it, registered with the runtime's epoll for priority events (`POLLPRI`:
//! the kernel wakes us; nothing polls); `POLLERR` means the cgroup is gone.
//! `memory.events` is watched with inotify (the kernel sends `IN_MODIFY`
//! when a counter changes). Each watch is a task that sends
//! [`Event::Signal`]s; disarming a unit aborts its tasks, which closes the
//! descriptors and so removes the triggers.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use sparrow_policy::kernel::{parse_counters, parse_pressure, trigger, Resource, TriggerSpec};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use crate::clock::mono_us;
use crate::core::kernel::{Arm, Armed, Readings, Signal};
use crate::core::Event;

/// Where cgroup v2 is mounted, from `/proc/self/mountinfo`: `/sys/fs/cgroup`
/// on a pure v2 host, `/sys/fs/cgroup/unified` on a hybrid one.
pub fn cgroup2_root(mountinfo: &str) -> Result<PathBuf, String> {
    let mut found: Vec<&str> = mountinfo
        .lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            (right.split_whitespace().next()? == "cgroup2").then_some(left.split(' ').nth(4)?)
        })
        .collect();
    found.sort_by_key(|p| (*p != "/sys/fs/cgroup", *p != "/sys/fs/cgroup/unified"));
    found
        .first()
        .map(PathBuf::from)
        .ok_or_else(|| "no cgroup v2 hierarchy is mounted".to_string())
}

/// Whether the effective capabilities in `/proc/self/status` hold
/// `CAP_SYS_RESOURCE` (24), which lets a trigger have any window.
pub fn has_sys_resource(status: &str) -> bool {
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << 24) != 0)
}

/// The watches of every unit.
pub struct Watcher {
    root: Result<PathBuf, String>,
    privileged: bool,
    tx: mpsc::Sender<Event>,
    tasks: HashMap<String, Vec<AbortHandle>>,
    files: HashMap<String, AbortHandle>,
}

impl Watcher {
    /// Watches of this machine, reporting to `tx`.
    pub fn new(tx: mpsc::Sender<Event>) -> Watcher {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        Watcher::with(cgroup2_root(&mountinfo), has_sys_resource(&status), tx)
    }

    /// Watches with this cgroup v2 root and privilege (tests).
    pub fn with(
        root: Result<PathBuf, String>,
        privileged: bool,
        tx: mpsc::Sender<Event>,
    ) -> Watcher {
        Watcher {
            root,
            privileged,
            tx,
            tasks: HashMap::new(),
            files: HashMap::new(),
        }
    }

    /// Watches `files` for `unit`'s pattern monitor (replacing what was
    /// watched; none: stop). A file that is rotated (moved away, deleted
    /// and created again) or truncated still counts: its directory is
    /// watched for its name too, and a new file is watched as it appears.
    /// A file that does not exist yet is watched for when it does.
    pub fn watch_files(&mut self, unit: &str, seq: u64, files: &[String]) -> Result<(), String> {
        if let Some(t) = self.files.remove(unit) {
            t.abort();
        }
        if files.is_empty() {
            return Ok(());
        }
        let watch = FileWatch::new(files)?;
        // SAFETY: `Inotify` owns its descriptor and never replaces it; the
        // AsyncFd owns it until it is dropped.
        let afd = unsafe { AsyncFd::register_with_interest(watch.inotify, Interest::READABLE) }
            .map_err(|e| format!("inotify: cannot wait on it: {e}"))?;
        let (unit_name, tx) = (unit.to_string(), self.tx.clone());
        let mut files = watch.files;
        let task = tokio::spawn(async move {
            let mut afd = afd;
            let mut buf = [0u8; 4096];
            loop {
                let Ok(mut guard) = afd.readable_mut().await else {
                    return;
                };
                let inotify = guard.get_inner_mut();
                let changed = match inotify.read_events(&mut buf) {
                    Ok(events) => {
                        let events: Vec<(inotify::EventMask, Option<std::ffi::OsString>)> = events
                            .map(|e| (e.mask, e.name.map(|n| n.to_owned())))
                            .collect();
                        files.changed(inotify, &events)
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        guard.clear_ready();
                        continue;
                    }
                    Err(_) => return,
                };
                if changed {
                    let ev = Event::FilesChanged {
                        unit: unit_name.clone(),
                        seq,
                    };
                    if tx.send(ev).await.is_err() {
                        return;
                    }
                }
            }
        });
        self.files.insert(unit.to_string(), task.abort_handle());
        Ok(())
    }

    /// Stops watching `unit`.
    pub fn disarm(&mut self, unit: &str) {
        for t in self.tasks.remove(unit).unwrap_or_default() {
            t.abort();
        }
    }

    /// Watches what `arm` asks (replacing the unit's watches); the result
    /// of each, in order (triggers, then `memory.events`).
    pub fn arm(&mut self, arm: &Arm) -> Event {
        self.disarm(&arm.unit);
        let dir = match &arm.cgroup {
            None => Ok(PathBuf::from("/proc/pressure")),
            Some(cg) => self
                .root
                .clone()
                .map(|r| r.join(cg.trim_start_matches('/'))),
        };
        let mut results = Vec::new();
        let mut tasks = Vec::new();
        for t in &arm.triggers {
            let (file, result) = match &dir {
                Err(why) => (String::new(), Err(why.clone())),
                Ok(d) => {
                    let path = match arm.cgroup {
                        None => d.join(t.resource.name()),
                        Some(_) => d.join(format!("{}.pressure", t.resource.name())),
                    };
                    let shown = path.display().to_string();
                    match self.trigger(arm, t, &path, d) {
                        Ok((note, task)) => {
                            tasks.push(task);
                            (shown, Ok(note))
                        }
                        Err(e) => (shown, Err(e)),
                    }
                }
            };
            results.push(Armed { file, result });
        }
        if arm.memory_events {
            let (file, result) = match &dir {
                Err(why) => (String::new(), Err(why.clone())),
                Ok(d) => {
                    let path = d.join("memory.events");
                    let shown = path.display().to_string();
                    match memory_events(arm, &path, d, self.tx.clone()) {
                        Ok(task) => {
                            tasks.push(task);
                            (shown, Ok(None))
                        }
                        Err(e) => (shown, Err(e)),
                    }
                }
            };
            results.push(Armed { file, result });
        }
        self.tasks.insert(arm.unit.clone(), tasks);
        Event::Armed {
            unit: arm.unit.clone(),
            seq: arm.seq,
            results,
        }
    }

    fn trigger(
        &self,
        arm: &Arm,
        spec: &TriggerSpec,
        path: &Path,
        dir: &Path,
    ) -> Result<(Option<String>, AbortHandle), String> {
        let mut t = trigger(*spec, self.privileged)?;
        let open = || {
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
                .open(path)
        };
        let mut file = open().map_err(|e| match e.kind() {
            ErrorKind::NotFound => format!(
                "{} does not exist (no pressure information for this cgroup)",
                path.display()
            ),
            _ => format!("{}: {e}", path.display()),
        })?;
        // With its NUL: the kernel overwrites the last byte written with one
        // (Documentation/accounting/psi.rst writes strlen + 1).
        let bytes = |t: &sparrow_policy::kernel::Trigger| format!("{}\0", t.line()).into_bytes();
        if let Err(e) = file.write_all(&bytes(&t)) {
            // A capability we were not told about is missing: the kernel
            // still takes a 2 s multiple.
            let rounded = trigger(*spec, false)?;
            if e.raw_os_error() != Some(libc::EINVAL) || rounded == t {
                return Err(format!("{}: writing {:?}: {e}", path.display(), t.line()));
            }
            t = rounded;
            file = open().map_err(|e| format!("{}: {e}", path.display()))?;
            file.write_all(&bytes(&t))
                .map_err(|e| format!("{}: writing {:?}: {e}", path.display(), t.line()))?;
        }
        // SAFETY: a `File` owns its descriptor and never replaces it; the
        // AsyncFd owns the file until it is dropped.
        let afd =
            unsafe { AsyncFd::register_with_interest(file, Interest::PRIORITY | Interest::ERROR) }
                .map_err(|e| format!("{}: cannot wait on it: {e}", path.display()))?;
        let (unit, seq, resource, tx) = (arm.unit.clone(), arm.seq, spec.resource, self.tx.clone());
        let dir = dir.to_path_buf();
        let system = arm.cgroup.is_none();
        let task = tokio::spawn(async move {
            loop {
                let mut ready = match afd.ready(Interest::PRIORITY | Interest::ERROR).await {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = tx.send(lost(&unit, seq, e.to_string())).await;
                        return;
                    }
                };
                if ready.ready().is_error() {
                    let why = "its cgroup is gone".to_string();
                    let _ = tx.send(lost(&unit, seq, why)).await;
                    return;
                }
                let woke_us = mono_us();
                ready.clear_ready();
                let ev = Event::Signal {
                    unit: unit.clone(),
                    seq,
                    signal: Signal::Pressure(resource),
                    readings: Readings {
                        woke_us,
                        ..readings(&dir, system)
                    },
                };
                if tx.send(ev).await.is_err() {
                    return;
                }
            }
        });
        Ok((t.rounded, task.abort_handle()))
    }
}

/// Watched files: each file's own watch (content, moves, deletion) and its
/// directory's (the name appearing again).
struct FileWatch {
    inotify: inotify::Inotify,
    files: Watched,
}

struct Watched {
    /// (path, its directory, its name).
    paths: Vec<(PathBuf, PathBuf, std::ffi::OsString)>,
}

const FILE_MASK: inotify::WatchMask = inotify::WatchMask::MODIFY
    .union(inotify::WatchMask::CLOSE_WRITE)
    .union(inotify::WatchMask::ATTRIB)
    .union(inotify::WatchMask::MOVE_SELF)
    .union(inotify::WatchMask::DELETE_SELF);
const DIR_MASK: inotify::WatchMask = inotify::WatchMask::CREATE.union(inotify::WatchMask::MOVED_TO);

impl FileWatch {
    fn new(files: &[String]) -> Result<FileWatch, String> {
        let inotify = inotify::Inotify::init().map_err(|e| format!("inotify: {e}"))?;
        let mut paths = Vec::new();
        for f in files {
            let p = PathBuf::from(f);
            let (Some(dir), Some(name)) = (p.parent(), p.file_name()) else {
                return Err(format!("{f}: not a file path"));
            };
            inotify
                .watches()
                .add(dir, DIR_MASK)
                .map_err(|e| format!("{}: inotify: {e}", dir.display()))?;
            // Not there yet is fine: its directory says when it is.
            let _ = inotify.watches().add(&p, FILE_MASK);
            paths.push((p.clone(), dir.to_path_buf(), name.to_owned()));
        }
        Ok(FileWatch {
            inotify,
            files: Watched { paths },
        })
    }
}

impl Watched {
    /// Whether `events` concern a watched file; a file that appeared under
    /// its name again is watched anew.
    fn changed(
        &mut self,
        inotify: &mut inotify::Inotify,
        events: &[(inotify::EventMask, Option<std::ffi::OsString>)],
    ) -> bool {
        let mut changed = false;
        for (mask, name) in events {
            match name {
                // A directory event: only the names we watch matter.
                Some(n) => {
                    if let Some((p, _, _)) = self.paths.iter().find(|(_, _, f)| f == n) {
                        let _ = inotify.watches().add(p, FILE_MASK);
                        changed = true;
                    }
                }
                // The file's own watch (IGNORED: it went; its name may come back).
                None => changed |= !mask.contains(inotify::EventMask::IGNORED),
            }
        }
        changed
    }
}

fn lost(unit: &str, seq: u64, why: String) -> Event {
    Event::Signal {
        unit: unit.to_string(),
        seq,
        signal: Signal::Lost(why),
        readings: Readings::default(),
    }
}

/// A small kernel file, read whole (cgroup and proc files are not regular
/// files with a size).
fn read_small(path: &Path) -> Option<String> {
    let mut s = String::new();
    File::open(path)
        .ok()?
        .take(64 * 1024)
        .read_to_string(&mut s)
        .ok()?;
    Some(s)
}

/// The pressure of every resource in `dir` (a cgroup, or `/proc/pressure`)
/// and, for a cgroup, its memory figures.
pub fn readings(dir: &Path, system: bool) -> Readings {
    let mut r = Readings::default();
    for res in Resource::ALL {
        let file = if system {
            dir.join(res.name())
        } else {
            dir.join(format!("{}.pressure", res.name()))
        };
        if let Some(p) = read_small(&file).and_then(|t| parse_pressure(&t).ok()) {
            r.psi.insert(res, p);
        }
    }
    if !system {
        let num = |name: &str| read_small(&dir.join(name))?.trim().parse::<u64>().ok();
        r.memory_current = num("memory.current");
        r.memory_max = num("memory.max");
    }
    r
}

/// Watches `memory.events` with inotify: the first reading (the baseline)
/// is sent at once, then one at every change.
fn memory_events(
    arm: &Arm,
    path: &Path,
    dir: &Path,
    tx: mpsc::Sender<Event>,
) -> Result<AbortHandle, String> {
    let counters = |path: &Path| -> Result<BTreeMap<String, u64>, String> {
        let text = read_small(path).ok_or_else(|| format!("{} cannot be read", path.display()))?;
        parse_counters(&text)
    };
    if !path.exists() {
        return Err(format!(
            "{} does not exist: the memory controller is not enabled for this cgroup in the cgroup v2 hierarchy (on a hybrid host it is a v1 controller)",
            path.display()
        ));
    }
    let inotify = inotify::Inotify::init().map_err(|e| format!("inotify: {e}"))?;
    inotify
        .watches()
        .add(path, inotify::WatchMask::MODIFY)
        .map_err(|e| format!("{}: inotify: {e}", path.display()))?;
    let first = counters(path)?;
    // SAFETY: `Inotify` owns its descriptor and never replaces it; the
    // AsyncFd owns it until it is dropped.
    let afd = unsafe { AsyncFd::register_with_interest(inotify, Interest::READABLE) }
        .map_err(|e| format!("inotify: cannot wait on it: {e}"))?;
    let (unit, seq, path, dir) = (
        arm.unit.clone(),
        arm.seq,
        path.to_path_buf(),
        dir.to_path_buf(),
    );
    let task = tokio::spawn(async move {
        let mut afd = afd;
        let send = |counters, woke_us| Event::Signal {
            unit: unit.clone(),
            seq,
            signal: Signal::Memory(counters),
            readings: Readings {
                woke_us,
                ..readings(&dir, false)
            },
        };
        if tx.send(send(first, 0)).await.is_err() {
            return;
        }
        let mut buf = [0u8; 1024];
        loop {
            let mut guard = match afd.readable_mut().await {
                Ok(g) => g,
                Err(e) => {
                    let _ = tx.send(lost(&unit, seq, e.to_string())).await;
                    return;
                }
            };
            let woke_us = mono_us();
            let gone = match guard.get_inner_mut().read_events(&mut buf) {
                Ok(events) => events
                    .into_iter()
                    .any(|e| e.mask.contains(inotify::EventMask::IGNORED)),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    guard.clear_ready();
                    continue;
                }
                Err(e) => {
                    let _ = tx.send(lost(&unit, seq, format!("inotify: {e}"))).await;
                    return;
                }
            };
            if gone {
                // The file went with its cgroup.
                let why = "its cgroup is gone".to_string();
                let _ = tx.send(lost(&unit, seq, why)).await;
                return;
            }
            match counters(&path) {
                Ok(c) => {
                    if tx.send(send(c, woke_us)).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.send(lost(&unit, seq, e)).await;
                    return;
                }
            }
        }
    });
    Ok(task.abort_handle())
}

#[cfg(test)]
mod tests;
