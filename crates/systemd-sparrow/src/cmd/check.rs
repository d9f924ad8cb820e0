//! `systemd-sparrow check [PATHS] [--verify [--root DIR]]`

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;
use sparrow_generator::write;
use sparrow_lang::{Diagnostic, Severity};

use crate::{common, pretty};

pub fn run(
    paths: &[PathBuf],
    verify: bool,
    root: Option<&Path>,
    user: bool,
    json: bool,
) -> anyhow::Result<u8> {
    if let Some(r) = root.filter(|r| !r.is_dir()) {
        anyhow::bail!(
            "--root {}: no such directory (it should hold the system the units are for)",
            r.display()
        );
    }
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
    if json {
        common::print_json_diagnostics(&report.diagnostics, &report.refused);
    } else {
        for d in &report.diagnostics {
            eprint!("{}", pretty::render(d));
        }
    }
    // Nothing found on the search path: say where it looked.
    if paths.is_empty()
        && report.units.is_empty()
        && report.diagnostics.is_empty()
        && report.refused.is_empty()
        && report.skipped.is_empty()
    {
        let env = |k: &str| std::env::var(k).ok();
        let dirs: Vec<String> = sparrow_source::paths::search_path(mode, &env)
            .iter()
            .map(|d| d.display().to_string())
            .collect();
        let message = format!(
            "no definitions found: looked for *.sparrow and *.raku in {}, and for shebang units under {}",
            dirs.join(", "),
            sparrow_source::paths::unit_root(mode, &env).display()
        );
        if json {
            eprintln!(
                "{}",
                serde_json::json!({ "file": null, "line": 0, "col": 0, "severity": "note", "message": message, "hint": null })
            );
        } else {
            eprintln!("{message}");
        }
    }
    if !json {
        common::print_refusals(&report);
    }
    let count = |s: Severity| {
        report
            .diagnostics
            .iter()
            .filter(|d| d.severity == s)
            .count()
    };
    let (errors, warnings) = (count(Severity::Error), count(Severity::Warning));
    let findings = if verify && !report.units.is_empty() {
        Some(run_verify(&report, root, json)?)
    } else {
        None
    };
    let failed = !report.all_ok() || findings.unwrap_or(0) > 0;
    let dropins = report.units.iter().filter(|g| g.dropin.is_some()).count();
    if json {
        let units: Vec<_> = report
            .units
            .iter()
            .map(|g| common::unit_json(g, false))
            .collect();
        let summary = serde_json::json!({
            "ok": !failed,
            "units": units,
            "errors": errors,
            "warnings": warnings,
            "notes": count(Severity::Note),
            "verify_findings": findings,
            "skipped": report.skipped,
            "refused": report.refused.iter().map(|r| &r.path).collect::<Vec<_>>(),
        });
        println!("{summary:#}");
        return Ok(u8::from(failed));
    }
    // One summary, after everything, that says what the exit status says.
    eprintln!(
        "{} unit(s){}, {errors} error(s), {warnings} warning(s){}; {} source(s) skipped",
        report.units.len() - dropins,
        if dropins > 0 {
            format!(" and {dropins} drop-in(s)")
        } else {
            String::new()
        },
        findings.map_or(String::new(), |n| format!(
            ", {n} finding(s) of systemd-analyze verify"
        )),
        report.skipped.len() + report.refused.len(),
    );
    Ok(u8::from(failed))
}

/// systemd-analyze's lines about the units written to `dir`, pointed at
/// the definitions they came from (`FILE:LINE (UNIT): ...`) instead of the
/// temporary copies.
fn attribute(text: &str, units: &[sparrow_generator::Generated], dir: &Path) -> Vec<Diagnostic> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let found = |u: &sparrow_generator::Generated, message: String| Diagnostic {
                severity: Severity::Error,
                file: u.source.clone(),
                line: u.line,
                col: 0,
                len: 1,
                message,
                help: None,
            };
            for u in units {
                let src = format!("{}:{}", u.source.display(), u.line);
                let path = dir.join(u.name.as_str()).display().to_string();
                // `PATH:N: message` (N: the rendered unit's line).
                if let Some((n, rest)) = line
                    .strip_prefix(&format!("{path}:"))
                    .and_then(|r| r.split_once(':'))
                    .filter(|(n, _)| n.parse::<usize>().is_ok())
                {
                    return found(
                        u,
                        format!("{src}: {} (line {n} of the unit):{rest}", u.name),
                    );
                }
                if line.contains(&path) {
                    return found(u, line.replace(&path, &format!("{src} ({})", u.name)));
                }
                // `UNIT: message`.
                if let Some(rest) = line.strip_prefix(&format!("{}:", u.name)) {
                    return found(u, format!("{src}: {}:{rest}", u.name));
                }
            }
            Diagnostic {
                severity: Severity::Error,
                file: PathBuf::new(),
                line: 0,
                col: 0,
                len: 1,
                message: line.to_string(),
                help: None,
            }
        })
        .collect()
}

/// Writes the units where `systemd-analyze verify` can load them, runs it,
/// prints its findings and returns how many there were.
fn run_verify(
    report: &sparrow_generator::Report,
    root: Option<&Path>,
    json: bool,
) -> anyhow::Result<usize> {
    let tmp;
    let (dir, args): (PathBuf, Vec<String>) = match root {
        Some(root) => {
            let dir = root.join("etc/systemd/system");
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            // Drop-ins are written too (they apply to the units beside
            // them); only whole units are named for verification.
            let names = report
                .units
                .iter()
                .filter(|g| g.dropin.is_none())
                .map(|g| g.name.to_string());
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
                .filter(|g| g.dropin.is_none())
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
    let findings = attribute(&text, &report.units, &dir);
    if json {
        common::print_json_diagnostics(&findings, &[]);
    } else {
        for f in &findings {
            eprintln!("{}", f.message);
        }
    }
    // verify can print warnings and still exit 0; any output is a finding,
    // and a failure without output is one too.
    let n = if findings.is_empty() && !out.status.success() {
        1
    } else {
        findings.len()
    };
    if !json {
        eprintln!(
            "systemd-analyze verify: {}",
            if n == 0 {
                "clean".to_string()
            } else {
                format!("{n} finding(s)")
            }
        );
    }
    Ok(n)
}
