//! What the benches share.

/// With `perf` on the host: a cpu-clock profile of the daemon (its host
/// PID) over `secs`; the symbols over 1 % of the samples, by self time.
pub fn profile(pid: u32, secs: u64) -> Option<Vec<String>> {
    let dir = tempfile::tempdir().ok()?;
    // SPARROW_BENCH_PERF_DATA keeps the samples for `perf report -i`.
    let data = std::env::var("SPARROW_BENCH_PERF_DATA")
        .unwrap_or_else(|_| dir.path().join("perf.data").display().to_string());
    let data = data.as_str();
    // A few percent of a core at 10 kHz is a few thousand samples in 10 s.
    let rec = std::process::Command::new("perf")
        .args(["record", "-e", "cpu-clock", "-F", "10000", "-g", "-p"])
        .arg(pid.to_string())
        .args(["-o", data, "--", "sleep"])
        .arg(secs.to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .ok()?;
    if !rec.success() {
        return None;
    }
    let out = std::process::Command::new("perf")
        .args([
            "report",
            "-i",
            data,
            "--no-children",
            "--stdio",
            "-g",
            "none",
        ])
        .args(["--sort", "dso,symbol", "--percent-limit", "1"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| {
            l.trim_start()
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_digit())
        })
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .map(|l| l.trim_end_matches(" - -").to_string())
        .map(|l| l.chars().take(140).collect())
        .take(15)
        .collect();
    Some(lines)
}
