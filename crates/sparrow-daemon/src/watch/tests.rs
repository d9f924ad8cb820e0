//! Against the real kernel: inotify on synthetic `memory.events` files, a
//! real PSI trigger on `/proc/pressure/cpu` under real CPU load.

use std::time::Duration;

use super::*;

const HYBRID: &str = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
const PURE: &str = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate
";

#[test]
fn the_cgroup2_mount_is_found_on_pure_and_hybrid_hosts() {
    assert_eq!(cgroup2_root(PURE), Ok(PathBuf::from("/sys/fs/cgroup")));
    assert_eq!(
        cgroup2_root(HYBRID),
        Ok(PathBuf::from("/sys/fs/cgroup/unified"))
    );
    assert!(cgroup2_root("31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n").is_err());
    // This machine has one (hybrid here, or pure).
    let here = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(cgroup2_root(&here).is_ok());
}

#[test]
fn cap_sys_resource_is_read_from_the_effective_set() {
    assert!(has_sys_resource("CapInh:\t0\nCapEff:\t000001ffffffffff\n"));
    assert!(!has_sys_resource("CapEff:\t000001fffeffffff\n"));
    assert!(!has_sys_resource("no such line"));
}

async fn next(rx: &mut mpsc::Receiver<Event>) -> Event {
    tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await
        .expect("an event within 20 s")
        .expect("the channel is open")
}

fn arm(unit: &str, cgroup: Option<&str>, triggers: Vec<TriggerSpec>, memory: bool) -> Arm {
    Arm {
        unit: unit.into(),
        seq: 7,
        cgroup: cgroup.map(str::to_string),
        triggers,
        memory_events: memory,
    }
}

#[tokio::test]
async fn memory_events_send_a_baseline_then_each_change_then_the_loss() {
    let root = tempfile::tempdir().unwrap();
    let cg = root.path().join("system.slice/app.service");
    std::fs::create_dir_all(&cg).unwrap();
    let events = cg.join("memory.events");
    std::fs::write(&events, "low 0\nhigh 1\nmax 0\noom 0\noom_kill 0\n").unwrap();
    std::fs::write(cg.join("memory.current"), "1048576\n").unwrap();
    std::fs::write(cg.join("memory.max"), "max\n").unwrap();
    let (tx, mut rx) = mpsc::channel(16);
    let mut w = Watcher::with(Ok(root.path().to_path_buf()), false, tx);
    let armed = w.arm(&arm(
        "app.service",
        Some("/system.slice/app.service"),
        vec![],
        true,
    ));
    let Event::Armed { seq, results, .. } = armed else {
        panic!("{armed:?}")
    };
    assert_eq!(seq, 7);
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].result, Ok(None));
    assert!(results[0].file.ends_with("app.service/memory.events"));
    let counters = |ev: Event| match ev {
        Event::Signal {
            signal: Signal::Memory(c),
            readings,
            seq: 7,
            ..
        } => (c, readings),
        other => panic!("{other:?}"),
    };
    let (first, readings) = counters(next(&mut rx).await);
    assert_eq!(first["high"], 1);
    assert_eq!(readings.memory_current, Some(1 << 20));
    assert_eq!(readings.memory_max, None, "max means no limit");
    std::fs::write(&events, "low 0\nhigh 4\nmax 1\noom 0\noom_kill 0\n").unwrap();
    let (second, _) = counters(next(&mut rx).await);
    assert_eq!((second["high"], second["max"]), (4, 1));
    std::fs::remove_file(&events).unwrap();
    match next(&mut rx).await {
        Event::Signal {
            signal: Signal::Lost(why),
            ..
        } => assert!(why.contains("gone"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn what_cannot_be_armed_says_why_and_the_rest_is_armed() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("x.service")).unwrap();
    let (tx, _rx) = mpsc::channel(16);
    let mut w = Watcher::with(Ok(root.path().to_path_buf()), false, tx.clone());
    let cpu = TriggerSpec {
        resource: Resource::Cpu,
        full: false,
        threshold_us: 100_000,
        window_us: 2_000_000,
    };
    let ev = w.arm(&arm("x.service", Some("/x.service"), vec![cpu], true));
    let Event::Armed { results, .. } = ev else {
        panic!("{ev:?}")
    };
    let errs: Vec<String> = results
        .iter()
        .map(|r| r.result.clone().unwrap_err())
        .collect();
    assert!(errs[0].contains("cpu.pressure does not exist"), "{errs:?}");
    assert!(
        errs[1].contains("memory controller is not enabled"),
        "{errs:?}"
    );
    // A host without cgroup v2 says so for every cgroup watch.
    let mut none = Watcher::with(Err("no cgroup v2 hierarchy is mounted".into()), false, tx);
    let Event::Armed { results, .. } =
        none.arm(&arm("x.service", Some("/x.service"), vec![cpu], false))
    else {
        panic!()
    };
    assert_eq!(
        results[0].result,
        Err("no cgroup v2 hierarchy is mounted".into())
    );
    // A window the kernel refuses is refused before the file is opened.
    let bad = TriggerSpec {
        window_us: 20_000_000,
        ..cpu
    };
    let Event::Armed { results, .. } = w.arm(&arm("x.service", None, vec![bad], false)) else {
        panic!()
    };
    assert!(results[0].result.clone().unwrap_err().contains("10 s"));
}

#[tokio::test]
async fn a_system_cpu_trigger_fires_under_real_load_with_a_rounded_window() {
    let (tx, mut rx) = mpsc::channel(16);
    // As an unprivileged daemon: a 1 s window becomes 2 s, said in the result.
    let mut w = Watcher::with(Err("not needed".into()), false, tx);
    let cpu = TriggerSpec {
        resource: Resource::Cpu,
        full: false,
        threshold_us: 50_000,
        window_us: 1_000_000,
    };
    let ev = w.arm(&arm("load.service", None, vec![cpu], false));
    let Event::Armed { results, .. } = ev else {
        panic!("{ev:?}")
    };
    assert_eq!(results[0].file, "/proc/pressure/cpu");
    let note = results[0].result.clone().expect("armed").expect("rounded");
    assert!(note.contains("rounded up to 2 s"), "{note}");
    // More runnable threads than CPUs: tasks wait for a CPU, which is CPU
    // pressure (100 ms of stall per 2 s is far below what this makes).
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
    let burners: Vec<_> = (0..cpus * 2 + 1)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            })
        })
        .collect();
    let got = next(&mut rx).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for b in burners {
        b.join().unwrap();
    }
    match got {
        Event::Signal {
            unit,
            seq: 7,
            signal: Signal::Pressure(Resource::Cpu),
            readings,
        } => {
            assert_eq!(unit, "load.service");
            assert!(readings.psi[&Resource::Cpu].some.total > 0);
            assert!(readings.psi.contains_key(&Resource::Memory));
        }
        other => panic!("{other:?}"),
    }
    w.disarm("load.service");
}

#[tokio::test]
async fn watched_files_report_writes_truncation_rotation_and_late_creation() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let late = dir.path().join("late.log");
    std::fs::write(&log, "start\n").unwrap();
    let (tx, mut rx) = mpsc::channel(64);
    let mut w = Watcher::with(Err("not needed".into()), false, tx);
    let files = vec![log.display().to_string(), late.display().to_string()];
    w.watch_files("web.service", 3, &files).unwrap();
    let changed =
        |ev: Event| matches!(ev, Event::FilesChanged { ref unit, seq: 3 } if unit == "web.service");
    let drain = |rx: &mut mpsc::Receiver<Event>| while rx.try_recv().is_ok() {};
    // An append.
    use std::io::Write as _;
    std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .unwrap()
        .write_all(b"GET /\n")
        .unwrap();
    assert!(changed(next(&mut rx).await));
    tokio::time::sleep(Duration::from_millis(50)).await;
    drain(&mut rx);
    // Truncation.
    std::fs::write(&log, "").unwrap();
    assert!(changed(next(&mut rx).await));
    tokio::time::sleep(Duration::from_millis(50)).await;
    drain(&mut rx);
    // Rotation: moved away, a new file under the name, then written to.
    std::fs::rename(&log, dir.path().join("access.log.1")).unwrap();
    assert!(changed(next(&mut rx).await));
    std::fs::write(&log, "fresh\n").unwrap();
    assert!(changed(next(&mut rx).await));
    tokio::time::sleep(Duration::from_millis(50)).await;
    drain(&mut rx);
    std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .unwrap()
        .write_all(b"more\n")
        .unwrap();
    assert!(changed(next(&mut rx).await), "the new file is watched");
    tokio::time::sleep(Duration::from_millis(50)).await;
    drain(&mut rx);
    // A file that did not exist yet.
    std::fs::write(&late, "x\n").unwrap();
    assert!(changed(next(&mut rx).await));
    tokio::time::sleep(Duration::from_millis(50)).await;
    drain(&mut rx);
    // Other files in the directory do not count.
    std::fs::write(dir.path().join("other.log"), "x\n").unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(rx.try_recv().is_err(), "an unwatched name changed nothing");
    // Unwatched: nothing more.
    w.watch_files("web.service", 4, &[]).unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    std::fs::write(&log, "after\n").unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(rx.try_recv().is_err());
    assert!(w.watch_files("web.service", 5, &["/".into()]).is_err());
}
