//! `systemd-sparrow check [PATHS] [--verify [--root DIR]]`

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;
use sparrow_generator::write;
use sparrow_lang::Severity;

use crate::{common, pretty};

pub fn run(paths: &[PathBuf], verify: bool, root: Option<&Path>, user: bool) -> anyhow::Result<u8> {
    let mode = common::mode(user);
    let mut report = common::evaluate(paths, mode, common::owners(mode, false))?;
    // Dependencies nothing on this host provides (system units only: a
    // user's units depend on their own manager's).
    if !user {
        let env = |k: &str| std::env::var(k).ok();
        if let Some(known) = crate::deps::known_units(&crate::deps::unit_dirs(&env)) {
            report
                .diagnostics
                .extend(crate::deps::unknown(&report.units, &known));
        }
    }
    for d in &report.diagnostics {
        eprint!("{}", pretty::render(d));
    }
    common::print_refusals(&report);
    let count = |s: Severity| {
        report
            .diagnostics
            .iter()
            .filter(|d| d.severity == s)
            .count()
    };
    let (errors, warnings) = (count(Severity::Error), count(Severity::Warning));
    eprintln!(
        "{} unit(s), {errors} error(s), {warnings} warning(s); {} source(s) skipped",
        report.units.len(),
        report.skipped.len() + report.refused.len(),
    );
    let mut status = u8::from(!report.all_ok());
    if verify && !report.units.is_empty() && !run_verify(&report, root)? {
        status = 1;
    }
    Ok(status)
}

/// Writes the units where `systemd-analyze verify` can load them and runs it.
fn run_verify(report: &sparrow_generator::Report, root: Option<&Path>) -> anyhow::Result<bool> {
    let tmp;
    let (dir, args): (PathBuf, Vec<String>) = match root {
        Some(root) => {
            let dir = root.join("etc/systemd/system");
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let names = report.units.iter().map(|g| g.name.to_string());
            (
                dir,
                std::iter::once(format!("--root={}", root.display()))
                    .chain(names)
                    .collect(),
            )
        }
        None => {
            tmp = tempfile::tempdir()?;
            let dir = tmp.path().to_path_buf();
            let files = report
                .units
                .iter()
                .map(|g| dir.join(g.name.as_str()).display().to_string());
            (dir.clone(), files.collect())
        }
    };
    let (_, errors) = write::write_units(&report.units, &dir, &dir);
    if let Some(e) = errors.first() {
        anyhow::bail!("writing {}: {}", e.path.display(), e.error);
    }
    // Man pages named in Documentation= are rarely installed where units are checked.
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg("--man=no")
        .args(&args)
        .output()
        .context("running systemd-analyze (install the systemd package)")?;
    let text = String::from_utf8_lossy(&out.stderr);
    let text = text.trim();
    if !text.is_empty() {
        eprintln!("systemd-analyze verify:\n{text}");
    }
    // verify can print warnings and still exit 0; any output is a finding.
    let clean = out.status.success() && text.is_empty();
    eprintln!(
        "systemd-analyze verify: {}",
        if clean { "clean" } else { "problems found" }
    );
    Ok(clean)
}
