//! A short scheduler time slice for the threads on the reaction path.
//!
//! Kernel pressure means a busy CPU. When systemd's reply wakes the daemon
//! on a CPU that a CPU-bound task holds, EEVDF lets that task finish its
//! slice first, and the check comes at the next tick (up to 4 ms at
//! HZ=250): the kernel bench saw exactly that wait on every reaction with
//! the daemon on the loaded CPU. Since Linux 6.12 a `SCHED_OTHER` thread
//! may ask for a shorter slice (`sched_attr.sched_runtime`, 0.1-100 ms);
//! a woken thread with a shorter slice than the running one preempts it
//! (`PREEMPT_SHORT`). The share of CPU does not change, only how soon a
//! wake-up runs. Older kernels ignore the field. Children inherit it
//! (no `SCHED_FLAG_RESET_ON_FORK`: that would also drop a negative nice
//! value an administrator gave the unit).
//!
//! `SYSTEMD_SPARROWD_SLICE_US` (default [`DEFAULT_US`]; 0 leaves the
//! kernel's default) sets it for the daemon's loop thread, its evaluator
//! threads and its evaluator processes.

/// The slice asked for, µs (the kernel's default is 0.75 ms times
/// 1 + log2(CPUs), so 1.5 ms on 2 CPUs and 3 ms on 4).
pub const DEFAULT_US: u64 = 500;

/// `struct sched_attr` (include/uapi/linux/sched/types.h), version 1.
#[repr(C)]
#[derive(Default)]
struct SchedAttr {
    size: u32,
    sched_policy: u32,
    sched_flags: u64,
    sched_nice: i32,
    sched_priority: u32,
    sched_runtime: u64,
    sched_deadline: u64,
    sched_period: u64,
    sched_util_min: u32,
    sched_util_max: u32,
}

/// The slice from the environment's setting, µs (0: none asked).
pub fn configured(setting: Option<&str>) -> u64 {
    setting
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(DEFAULT_US)
}

/// Asks for a `us` µs slice for the calling thread, keeping its policy and
/// nice value; only for `SCHED_OTHER`/`SCHED_BATCH` threads. Returns the
/// kernel's refusal, if any (a kernel before 6.12 accepts and ignores it).
pub fn set_for_this_thread(us: u64) -> Result<(), String> {
    if us == 0 {
        return Ok(());
    }
    let mut attr = this_thread()?;
    if attr.sched_policy != libc::SCHED_OTHER as u32
        && attr.sched_policy != libc::SCHED_BATCH as u32
    {
        return Ok(()); // real-time or idle: someone chose that; leave it
    }
    attr.size = std::mem::size_of::<SchedAttr>() as u32;
    attr.sched_flags = 0;
    attr.sched_runtime = us * 1000;
    // SAFETY: `attr` is a valid `struct sched_attr` whose size it states.
    let r = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) };
    if r != 0 {
        return Err(format!(
            "sched_setattr: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// The calling thread's scheduling attributes.
fn this_thread() -> Result<SchedAttr, String> {
    let mut attr = SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        ..SchedAttr::default()
    };
    // SAFETY: sched_getattr writes at most `size` bytes into `attr`, which
    // is a `struct sched_attr` of that size.
    let r = unsafe {
        libc::syscall(
            libc::SYS_sched_getattr,
            0,
            &mut attr as *mut SchedAttr,
            attr.size,
            0,
        )
    };
    if r != 0 {
        let e = std::io::Error::last_os_error();
        return Err(format!("sched_getattr: {e}"));
    }
    Ok(attr)
}

/// [`set_for_this_thread`] with the environment's setting; a refusal is
/// logged (the daemon works the same, wake-ups may just wait longer).
pub fn apply() {
    let us = configured(std::env::var("SYSTEMD_SPARROWD_SLICE_US").ok().as_deref());
    if let Err(e) = set_for_this_thread(us) {
        tracing::warn!("a {us} µs scheduler slice was refused ({e}); keeping the default");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_setting_is_parsed_with_a_default() {
        assert_eq!(configured(None), DEFAULT_US);
        assert_eq!(configured(Some("0")), 0);
        assert_eq!(configured(Some(" 200 ")), 200);
        assert_eq!(configured(Some("fast")), DEFAULT_US);
    }

    #[test]
    fn a_thread_gets_the_slice_and_keeps_its_nice_value() {
        std::thread::spawn(|| {
            // SAFETY: plain libc calls on this thread.
            let before = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
            set_for_this_thread(300).expect("sched_setattr");
            let attr = this_thread().expect("sched_getattr");
            // Linux 6.12 took the field for SCHED_OTHER; before, it is ignored.
            let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
            let mut v = release.split(|c: char| !c.is_ascii_digit());
            let (major, minor): (u32, u32) = (
                v.next().unwrap().parse().unwrap(),
                v.next().unwrap().parse().unwrap(),
            );
            if (major, minor) >= (6, 12) {
                assert_eq!(attr.sched_runtime, 300_000, "the kernel reports the slice");
            } else {
                assert!([0, 300_000].contains(&attr.sched_runtime));
            }
            assert_eq!(unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) }, before);
        })
        .join()
        .unwrap();
    }
}
