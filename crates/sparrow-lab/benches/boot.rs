//! Lab boot time: spawn to `systemctl is-system-running` = running, over
//! several boots (median), on a bare systemd.
//!
//! Run: `cargo bench -p sparrow-lab --bench boot` (as root). `SPARROW_LAB_BOOTS`
//! sets the number of boots (default 5).

use std::time::Duration;

use sparrow_lab::{Lab, Setup};

fn main() {
    let n: usize = std::env::var("SPARROW_LAB_BOOTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let mut times: Vec<Duration> = Vec::new();
    for i in 0..n {
        let lab = Lab::boot(Setup::bare()).unwrap_or_else(|e| panic!("boot {i}: {e}"));
        times.push(lab.boot_time());
        drop(lab);
    }
    let mut sorted = times.clone();
    sorted.sort();
    let ms: Vec<String> = times
        .iter()
        .map(|t| format!("{:.0}", t.as_secs_f64() * 1e3))
        .collect();
    println!("lab boot to `running`: {n} boots [{}] ms", ms.join(", "));
    println!(
        "  median {:.0} ms (target < 10000 ms: {})",
        sorted[n / 2].as_secs_f64() * 1e3,
        if sorted[n / 2] < Duration::from_secs(10) {
            "met"
        } else {
            "MISSED"
        }
    );
}
