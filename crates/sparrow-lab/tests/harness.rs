//! The lab harness itself: it cleans up after itself and reports instead of
//! hanging.

use std::path::Path;
use std::time::{Duration, Instant};

use sparrow_lab::{Lab, LabError, Setup};

fn gone_within(what: &str, timeout: Duration, check: impl Fn() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(
            start.elapsed() < timeout,
            "{what} still there after {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn dropping_a_lab_leaves_no_process_mount_cgroup_or_directory() {
    let lab = Lab::boot(Setup::bare()).unwrap_or_else(|e| panic!("{e}"));
    let (dir, cgroups, init) = (
        lab.dir().to_path_buf(),
        lab.cgroups().to_vec(),
        lab.init_pid(),
    );
    assert!(dir.is_dir() && Path::new(&format!("/proc/{init}")).exists());
    assert!(
        !cgroups.is_empty() && cgroups.iter().all(|c| c.is_dir()),
        "{cgroups:?}"
    );
    let mounts = std::fs::read_to_string(format!("/proc/{init}/mounts")).unwrap();
    assert!(
        mounts.contains(" /usr "),
        "the container sees the host's /usr"
    );
    let host_mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    assert!(
        !host_mounts.contains(&dir.display().to_string()),
        "lab mounts must not be visible on the host"
    );
    drop(lab);
    assert!(
        !Path::new(&format!("/proc/{init}")).exists()
            || std::fs::read_to_string(format!("/proc/{init}/status"))
                .is_ok_and(|s| s.contains("zombie")),
        "container PID 1 still running"
    );
    gone_within("the lab directory", Duration::from_secs(5), || {
        !dir.exists()
    });
    for cg in &cgroups {
        gone_within(&cg.display().to_string(), Duration::from_secs(5), || {
            !cg.exists()
        });
    }
}

#[test]
fn a_boot_that_never_finishes_times_out_and_says_what_it_waited_for() {
    let mut setup = Setup::bare()
        .unit_file(
            "stuck.service",
            "[Service]\nType=oneshot\nExecStart=/bin/sleep 3600\n",
        )
        .unit_file(
            "multi-user.target.d/stuck.conf",
            "[Unit]\nWants=stuck.service\nAfter=stuck.service\n",
        );
    setup.boot_timeout = Duration::from_secs(4);
    let start = Instant::now();
    let err = match Lab::boot(setup) {
        Ok(_) => panic!("boot should not finish while stuck.service runs"),
        Err(e) => e,
    };
    assert!(
        start.elapsed() < Duration::from_secs(15),
        "the timeout was not honoured: {:?}",
        start.elapsed()
    );
    assert!(matches!(err, LabError::Timeout { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("boot to finish"), "{msg}");
    assert!(
        msg.contains("stuck.service"),
        "the message names what boot was waiting for: {msg}"
    );
    // And the failed lab was cleaned up: its `sleep 3600` is gone.
    gone_within("the stuck lab's processes", Duration::from_secs(10), || {
        let out = std::process::Command::new("pgrep")
            .args(["-f", "^/bin/sleep 3600$"])
            .output()
            .unwrap();
        out.stdout.is_empty()
    });
}
