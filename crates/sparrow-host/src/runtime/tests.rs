use super::*;

fn runtime() -> (RealRuntime, Arc<std::sync::Mutex<Vec<String>>>) {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let s = seen.clone();
    let units: Units = Arc::default();
    (
        RealRuntime::new(
            units,
            Arc::new(move |u, m| s.lock().unwrap().push(format!("{u}: {m}"))),
        ),
        seen,
    )
}

fn meminfo(key: &str) -> u64 {
    let t = fs::read_to_string("/proc/meminfo").unwrap();
    let l = t.lines().find(|l| l.starts_with(key)).unwrap();
    l.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

#[test]
fn memory_figures_match_proc_meminfo() {
    let (rt, _) = runtime();
    let avail = rt.available_memory().unwrap();
    let want = meminfo("MemAvailable:");
    // The two reads are a moment apart: allow 64 MiB of drift.
    assert!(avail.abs_diff(want) < 64 << 20, "{avail} vs {want}");
    assert!(rt.free_memory().unwrap() <= meminfo("MemTotal:"));
}

#[test]
fn load_is_a_percentage_of_all_cpus() {
    let (rt, _) = runtime();
    let l = rt.load().unwrap();
    let one: f64 = fs::read_to_string("/proc/loadavg")
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let cpus = std::thread::available_parallelism().unwrap().get() as f64;
    assert!((l - one / cpus * 100.0).abs() < 50.0, "{l}");
    assert!(l >= 0.0);
}

#[test]
fn psi_reads_proc_pressure() {
    let (rt, _) = runtime();
    let m = rt.psi("memory").unwrap();
    assert!(m.full.is_some());
    assert!(m.some.avg10 >= 0.0 && m.some.avg10 <= 100.0);
    let cpu = rt.psi("cpu").unwrap();
    let text = fs::read_to_string("/proc/pressure/cpu").unwrap();
    let total: u64 = text
        .lines()
        .next()
        .unwrap()
        .rsplit("total=")
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        cpu.some.total <= total + 10_000_000,
        "{} vs {total}",
        cpu.some.total
    );
    assert!(rt.psi("disk").unwrap_err().contains("unknown resource"));
}

#[test]
fn read_file_tail_reads_the_end_of_a_file_of_any_size() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("app.log");
    let mut text = "x".repeat(200_000);
    text.push_str("\nlast line é\n");
    fs::write(&f, &text).unwrap();
    let p = f.to_str().unwrap();
    assert_eq!(read_file_tail(p, 13).unwrap(), "last line é\n");
    assert_eq!(read_file_tail(p, 3).unwrap(), "é\n");
    // A cut inside "é" drops its stray byte.
    assert_eq!(read_file_tail(p, 2).unwrap(), "\n");
    // At most READ_FILE_MAX, whatever is asked.
    assert_eq!(
        read_file_tail(p, 1 << 40).unwrap().len() as u64,
        READ_FILE_MAX
    );
    let small = dir.path().join("small");
    fs::write(&small, "ok").unwrap();
    assert_eq!(read_file_tail(small.to_str().unwrap(), 100).unwrap(), "ok");
    assert!(read_file_tail("/dev/zero", 10).is_err());
    assert!(read_file_tail("relative", 10).is_err());
}

#[test]
fn read_file_reads_small_regular_files_only() {
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("limit");
    fs::write(&f, "512M\n").unwrap();
    let (rt, _) = runtime();
    assert_eq!(rt.read_file(f.to_str().unwrap()).unwrap(), "512M\n");
    assert!(rt
        .read_file("relative")
        .unwrap_err()
        .contains("not an absolute path"));
    assert!(rt
        .read_file("/dev/zero")
        .unwrap_err()
        .contains("not a regular file"));
    let fifo = d.path().join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo with a valid C string.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    assert!(
        rt.read_file(fifo.to_str().unwrap())
            .unwrap_err()
            .contains("not a regular file"),
        "a FIFO must not block"
    );
    fs::write(&f, vec![b'x'; 70_000]).unwrap();
    assert!(rt
        .read_file(f.to_str().unwrap())
        .unwrap_err()
        .contains("larger than"));
}

#[test]
fn connections_counts_established_sockets_on_a_port() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (rt, _) = runtime();
    assert_eq!(rt.connections(port).unwrap(), 0);
    let _a = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let _b = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let (_s1, _) = listener.accept().unwrap();
    let (_s2, _) = listener.accept().unwrap();
    assert_eq!(rt.connections(port).unwrap(), 2);
}

#[test]
fn service_figures_come_from_the_daemons_view() {
    let (rt, seen) = runtime();
    assert_eq!(rt.service_state("x.service"), "unknown");
    // Our own cgroup stands in for a unit's.
    let own = fs::read_to_string("/proc/self/cgroup").unwrap();
    let cg = own
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .unwrap()
        .to_string();
    rt.units.write().unwrap().insert(
        "x.service".into(),
        UnitSnapshot {
            active_state: "active".into(),
            control_group: cg,
        },
    );
    assert_eq!(rt.service_state("x.service"), "active");
    // memory.current, or the resident size of our own process at least.
    let bytes = rt.service_memory("x.service").unwrap();
    let own_rss: u64 = fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap();
    assert!(
        bytes >= own_rss * 1024 / 2,
        "{bytes} bytes for a cgroup holding this process ({own_rss} kB resident)"
    );
    assert!(rt
        .service_memory("y.service")
        .unwrap_err()
        .contains("no control group"));
    rt.log("x.service", "hello");
    assert_eq!(*seen.lock().unwrap(), vec!["x.service: hello".to_string()]);
}

#[test]
fn cgroup_mounts_are_found() {
    let fs = CgroupFs::detect();
    assert!(fs.v2.is_some() || fs.v1_memory.is_some(), "{fs:?}");
}
