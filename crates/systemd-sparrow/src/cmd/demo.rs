//! `systemd-sparrow demo`: the bundled examples in a real systemd.
//!
//! Boots a lab (systemd as PID 1 in a throwaway container, see `sparrow-lab`)
//! with this binary installed as the generator and the examples in
//! `/etc/systemd/sparrow`, then reports, for each definition, the units it
//! became and what systemd made of them. Root only.

use std::collections::BTreeMap;
use std::time::Instant;

use std::time::Duration;

use sparrow_lab::{Lab, LabError, Setup};

use crate::examples::EXAMPLES;

const PROPS: &[&str] = &[
    "LoadState",
    "ActiveState",
    "SubState",
    "Result",
    "SourcePath",
    "ExecMainStatus",
    "ExecStartPre",
    "ExecStart",
    "WantedBy",
    "TriggeredBy",
    "Requires",
];

pub fn run() -> anyhow::Result<u8> {
    let started = Instant::now();
    if let Err(e) = sparrow_lab::preflight() {
        eprintln!("systemd-sparrow demo: {e}");
        if matches!(e, LabError::NotRoot) {
            eprintln!("without root, see the units the examples become with: systemd-sparrow render examples");
        }
        return Ok(2);
    }
    let mut setup = Setup::new(std::env::current_exe()?).daemon();
    for (name, text) in EXAMPLES {
        setup = setup.definition(name, text);
    }
    // Some examples name programs the lab does not have (nginx, mariadbd, ...):
    // their units fail, and the report says why.
    setup.allow_degraded = true;
    eprintln!("booting a lab: systemd as PID 1 in systemd-nspawn (volatile root, host /usr, private network) ...");
    let lab = Lab::boot(setup)?;
    let version = lab
        .exec(&["systemctl", "--version"])?
        .stdout
        .lines()
        .next()
        .unwrap_or("")
        .to_string();
    let definitions = EXAMPLES
        .iter()
        .filter(|(n, _)| !n.starts_with("lib/"))
        .count();
    println!(
        "{version}: booted in {:.1} s with the generator and {definitions} example definitions in /etc/systemd/sparrow\n",
        lab.boot_time().as_secs_f64()
    );

    // The generated unit files (not alias links), and the instances the
    // .wants/ links start (a template itself has no state to show).
    let listing = lab.sh(
        "cd /run/systemd && { find generator generator.early -maxdepth 1 -type f; find generator generator.early -mindepth 2 -maxdepth 2 -path '*.wants/*'; } 2>/dev/null \
         | sed 's|.*/||' | grep -E '\\.(service|timer|socket|path|target|mount|automount)$' | grep -v '@\\.' | sort -u",
    )?;
    let mut rows: BTreeMap<(String, String), BTreeMap<String, String>> = BTreeMap::new();
    for unit in listing.stdout.lines() {
        let props = lab.show(unit, PROPS)?;
        // Other generators (getty, fstab) write into the same directories.
        let Some(def) = props
            .get("SourcePath")
            .and_then(|s| s.strip_prefix("/etc/systemd/sparrow/"))
        else {
            continue;
        };
        let def = def.to_string();
        rows.insert((def, unit.to_string()), props);
    }
    println!(
        "{:<22} {:<26} {:<8} {:<26} note",
        "definition", "unit", "loaded", "state"
    );
    let mut last = String::new();
    for ((def, unit), p) in &rows {
        let shown = if *def == last { "" } else { def.as_str() };
        last = def.clone();
        let state = format!("{} ({})", get(p, "ActiveState"), get(p, "SubState"));
        println!(
            "{shown:<22} {unit:<26} {:<8} {state:<26} {}",
            get(p, "LoadState"),
            note(&lab, p)
        );
    }

    let gen_log = lab.journal(&["SYSLOG_IDENTIFIER=systemd-sparrow-generator"])?;
    let gen_lines: Vec<&str> = gen_log.lines().collect();
    println!(
        "\ngenerator messages in the journal: {}",
        if gen_lines.is_empty() {
            "none".to_string()
        } else {
            gen_lines.len().to_string()
        }
    );
    for l in gen_lines {
        println!("  {l}");
    }
    let diff = lab.exec(&["/opt/sparrow/bin/systemd-sparrow", "diff"])?;
    println!(
        "systemd-sparrow diff in the lab: {}",
        if diff.code == Some(0) {
            "a daemon-reload would change nothing"
        } else {
            "differences (unexpected)"
        }
    );
    let cat = lab.exec(&["systemctl", "cat", "webapp.service"])?;
    println!(
        "\n$ systemctl cat webapp.service\n{}",
        cat.stdout.trim_end()
    );
    let dropins = lab.sh(&format!(
        "cd /run/systemd/generator && ls -d *.d/{}* 2>/dev/null",
        sparrow_lang::DROPIN_PREFIX
    ))?;
    for d in dropins.stdout.lines() {
        let unit = d.split(".d/").next().unwrap_or(d);
        let active = lab.prop(unit, "DropInPaths").unwrap_or_default();
        println!(
            "drop-in {d}: {}",
            if active.contains(d) {
                format!("merged into {unit} (systemctl show -p DropInPaths)")
            } else {
                format!("not seen by systemd for {unit}")
            }
        );
    }
    live_adjustment(&lab)?;
    heal_and_recover(&lab)?;
    pressure_adapts(&lab)?;
    drop(lab);
    println!(
        "\nlab removed; demo took {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(0)
}

fn get<'a>(p: &'a BTreeMap<String, String>, key: &str) -> &'a str {
    p.get(key).map_or("", String::as_str)
}

/// Why a unit is in the state it is in, when that is not obvious.
fn note(lab: &Lab, p: &BTreeMap<String, String>) -> String {
    let (active, result) = (get(p, "ActiveState"), get(p, "Result"));
    // The failing process may be ExecStartPre=, so look at every status.
    let statuses = format!(
        "status={} {} {}",
        get(p, "ExecMainStatus"),
        get(p, "ExecStartPre"),
        get(p, "ExecStart")
    );
    if matches!(active, "failed" | "activating") {
        if statuses.contains("status=203") {
            return "its program is not installed in the lab".into();
        }
        if statuses.contains("status=217") {
            return "its user does not exist in the lab's empty /etc".into();
        }
        if active == "failed" {
            return format!("failed: {result}");
        }
    }
    if active == "inactive" {
        if !get(p, "TriggeredBy").is_empty() {
            return format!("started by {}", get(p, "TriggeredBy"));
        }
        let failed_dep = get(p, "Requires")
            .split_whitespace()
            .find(|d| lab.prop(d, "ActiveState").is_ok_and(|s| s == "failed"));
        if let Some(d) = failed_dep {
            return format!("needs {d}, which failed");
        }
        if get(p, "WantedBy").is_empty() {
            return "not started at boot (no wanted_by)".into();
        }
    }
    String::new()
}

/// Runtime mode: starts systemd-sparrowd and shows it resizing
/// adaptive-api.service live, as its monitor closure asks.
fn live_adjustment(lab: &Lab) -> anyhow::Result<()> {
    println!("\n$ systemctl start systemd-sparrowd");
    let started = lab.exec(&["systemctl", "start", "systemd-sparrowd.service"])?;
    if !started.ok() {
        println!("systemd-sparrowd did not start: {}", started.stderr.trim());
        return Ok(());
    }
    let unit = "adaptive-api.service";
    // The daemon starts at boot (the lab's first boot enables units by
    // preset), so its changes are read from its journal.
    let mut log = String::new();
    waiting("systemd-sparrowd's first evaluation of adaptive-api.service");
    let waited = lab.wait_for(
        "systemd-sparrowd to adjust adaptive-api.service",
        Duration::from_secs(20),
        |lab| {
            log = lab.journal(&["-u", "systemd-sparrowd", "UNIT=adaptive-api.service"])?;
            Ok((log.contains("->"), log.clone()))
        },
    );
    let after = lab.show(unit, &["MemoryMax", "CPUQuotaPerSecUSec"])?;
    // In the unit-file spelling an administrator writes, not D-Bus's.
    let mem = after["MemoryMax"]
        .parse::<u64>()
        .map_or(after["MemoryMax"].clone(), sparrow_lang::value::render_size);
    let quota = after["CPUQuotaPerSecUSec"]
        .strip_suffix("ms")
        .and_then(|ms| ms.parse::<f64>().ok())
        .map_or(after["CPUQuotaPerSecUSec"].clone(), |ms| {
            format!("{}%", ms / 10.0)
        });
    match waited {
        Ok(()) => {
            println!("systemd-sparrowd resized {unit} while it ran (its journal):");
            for l in log.lines().filter(|l| l.contains("->")) {
                println!("  {l}");
            }
            println!("now: MemoryMax={mem} CPUQuota={quota} (systemctl show)");
        }
        Err(e) => println!("no live adjustment seen: {e}"),
    }
    let status = lab.exec(&["/opt/sparrow/bin/systemd-sparrow", "status", unit])?;
    println!(
        "\n$ systemd-sparrow status {unit}\n{}",
        status.stdout.trim_end()
    );
    Ok(())
}

/// The health check of healing.service in one unit's `status --json`.
fn health(lab: &Lab, unit: &str) -> Result<serde_json::Value, LabError> {
    let out = lab.exec(&["/opt/sparrow/bin/systemd-sparrow", "status", "--json", unit])?;
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap_or_default();
    Ok(v["status"]["units"][0]["health"].clone())
}

/// Runtime mode, part 2: healing.service's health file disappears, the
/// daemon's check fails, it restarts the service, and the restart's startup
/// sequence puts it right.
fn heal_and_recover(lab: &Lab) -> anyhow::Result<()> {
    let unit = "healing.service";
    let healthy = |lab: &Lab| -> Result<(bool, String), LabError> {
        let h = health(lab, unit)?;
        Ok((h["state"] == "healthy", h.to_string()))
    };
    if let Err(e) = lab.wait_for(
        "healing.service to be healthy",
        Duration::from_secs(20),
        healthy,
    ) {
        println!(
            "
healing.service did not become healthy: {e}"
        );
        return Ok(());
    }
    let pid = lab.prop(unit, "MainPID")?;
    println!(
        "
{unit} is healthy (MainPID {pid}); now it goes bad:
$ rm /run/healing/health"
    );
    lab.exec(&["rm", "-f", "/run/healing/health"])?;
    waiting("two failed health checks and the daemon's restart");
    let restarted = lab.wait_for("a restart", Duration::from_secs(20), |lab| {
        let now = lab.prop(unit, "MainPID")?;
        Ok((now != pid && now != "0", now))
    });
    if let Err(e) = restarted {
        println!("no restart seen: {e}");
        return Ok(());
    }
    let recovered = lab.wait_for("recovery", Duration::from_secs(20), healthy);
    let log = lab.journal(&["-u", "systemd-sparrowd", "UNIT=healing.service"])?;
    println!("systemd-sparrowd's journal about {unit}:");
    for l in log.lines() {
        println!("  {l}");
    }
    let seq = lab.journal(&["-u", unit])?;
    println!("{unit}'s own journal (hooks and startup sequence, last start):");
    let lines: Vec<&str> = seq
        .lines()
        .filter(|l| l.contains("step ") || l.contains("starting "))
        .collect();
    for l in &lines[lines.len().saturating_sub(3)..] {
        println!("  {l}");
    }
    match recovered {
        Ok(()) => println!(
            "{unit} healed: restarted by the daemon (MainPID {pid} -> {}), healthy again",
            lab.prop(unit, "MainPID")?
        ),
        Err(e) => println!("{unit} did not recover: {e}"),
    }
    let status = lab.exec(&["/opt/sparrow/bin/systemd-sparrow", "status", unit])?;
    println!(
        "\n$ systemd-sparrow status {unit}\n{}",
        status.stdout.trim_end()
    );
    Ok(())
}

/// Runtime mode, part 3: burner.service stalls on CPU in its own cgroup;
/// its PSI trigger fires and `pressure_response` lowers its CPU weight live.
fn pressure_adapts(lab: &Lab) -> anyhow::Result<()> {
    let unit = "burner.service";
    println!(
        "\n{unit} runs more busy loops than there are CPUs (CPUWeight={}):\n$ systemctl start {unit}",
        lab.prop(unit, "CPUWeight")?
    );
    lab.exec(&["systemctl", "start", unit])?;
    waiting("CPU pressure to build up and the kernel trigger to fire");
    let changed = lab.wait_for("the pressure response", Duration::from_secs(30), |lab| {
        let w = lab.prop(unit, "CPUWeight")?;
        Ok((w == "20", format!("CPUWeight={w}")))
    });
    let log = lab.journal(&["-u", "systemd-sparrowd", "UNIT=burner.service"])?;
    println!("systemd-sparrowd's journal about {unit}:");
    for l in log.lines() {
        println!("  {l}");
    }
    match changed {
        Ok(()) => println!(
            "{unit}: CPUWeight is now {} (applied live by the daemon, from a kernel trigger)",
            lab.prop(unit, "CPUWeight")?
        ),
        Err(e) => println!("{unit}: no change seen: {e}"),
    }
    let status = lab.exec(&["/opt/sparrow/bin/systemd-sparrow", "status", unit])?;
    println!(
        "\n$ systemd-sparrow status {unit}\n{}",
        status.stdout.trim_end()
    );
    lab.exec(&["systemctl", "stop", unit])?;
    Ok(())
}

/// Says on stderr what the demo is waiting for, so the pause has a reason.
fn waiting(what: &str) {
    eprintln!("(waiting for {what} ...)");
}
