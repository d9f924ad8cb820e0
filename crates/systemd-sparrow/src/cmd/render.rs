//! `systemd-sparrow render [PATHS] [--output DIR] [--json]`

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use sparrow_generator::write;
use sparrow_source::Owners;

use crate::common;

pub fn run(paths: &[PathBuf], output: Option<&Path>, user: bool, json: bool) -> anyhow::Result<u8> {
    // Rendering runs nothing as root on its own: no owner rule.
    let report = common::evaluate(paths, common::mode(user), Owners::Any)?;
    let errors = report.diagnostics.iter().filter(|d| d.is_error());
    if json {
        common::print_json_diagnostics(errors, &report.refused);
    } else {
        for d in errors {
            eprintln!("{d}");
        }
        for p in &report.skipped {
            eprintln!("{}: skipped, no units rendered from it", p.display());
        }
        common::print_refusals(&report);
    }
    if let Some(dir) = output {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let (notes, errors) = write::write_units(&report.units, dir, dir);
        for n in notes {
            eprintln!("warning: {n}");
        }
        if let Some(e) = errors.first() {
            anyhow::bail!("writing {}: {}", e.path.display(), e.error);
        }
    }
    let mut out = std::io::stdout().lock();
    if json {
        // The units (with their text unless written to a directory).
        let units: Vec<_> = report
            .units
            .iter()
            .map(|g| common::unit_json(g, output.is_none()))
            .collect();
        let doc = serde_json::json!({
            "units": units,
            "output": output,
            "skipped": report.skipped,
        });
        writeln!(out, "{doc:#}")?;
    } else if let Some(dir) = output {
        let dropins = report.units.iter().filter(|g| g.dropin.is_some()).count();
        let n = report.units.len() - dropins;
        let plural = |n: usize| if n == 1 { "" } else { "s" };
        let extra = if dropins > 0 {
            format!(" and {dropins} drop-in{}", plural(dropins))
        } else {
            String::new()
        };
        eprintln!("wrote {n} unit{}{extra} to {}", plural(n), dir.display());
    } else {
        for (i, g) in report.units.iter().enumerate() {
            if i > 0 {
                writeln!(out)?;
            }
            write!(out, "# {}\n{}", g.rel_path(), g.text)?;
        }
    }
    Ok(u8::from(!report.all_ok()))
}
