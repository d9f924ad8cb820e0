//! `systemd-sparrow diff`: what a `daemon-reload` would change.
//!
//! Compares the units the generator would write now with those it wrote
//! last time (files in the generator directories that carry our header, and
//! the symlinks pointing at them). Exit status 0: no change; 1: changes.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use sparrow_generator::write;
use sparrow_lang::HEADER;
use sparrow_source::{paths, read_source, Owners};

use crate::{common, udiff};

/// A generator output tree: unit files and symlinks, by relative path.
#[derive(Default)]
struct Tree {
    files: BTreeMap<PathBuf, String>,
    links: BTreeMap<PathBuf, PathBuf>,
}

pub fn run(
    paths: &[PathBuf],
    generator_dir: Option<PathBuf>,
    early_dir: Option<PathBuf>,
    user: bool,
) -> anyhow::Result<u8> {
    let mode = common::mode(user);
    let env = |k: &str| std::env::var(k).ok();
    let normal = generator_dir.unwrap_or_else(|| paths::generator_dir(mode, &env));
    let early = early_dir.unwrap_or_else(|| paths::early_dir(&normal));
    // What a daemon-reload would do: the generator's own owner rule.
    let report = common::evaluate(paths, mode, common::owners(mode, true))?;
    for d in report.diagnostics.iter().filter(|d| d.is_error()) {
        eprintln!("{d}");
    }
    common::print_refusals(&report);

    let mut new = Tree::default();
    for g in &report.units {
        let base = if g.early { &early } else { &normal };
        new.files.insert(base.join(g.rel_path()), g.text.clone());
        for (sub, link, target) in write::install_links(&g.name, &g.install).0 {
            new.links
                .insert(base.join(sub).join(link), PathBuf::from(target));
        }
    }
    let mut old = Tree::default();
    for dir in [&normal, &early] {
        read_tree(dir, &mut old);
    }
    // Symlinks only count when they point at one of our units.
    let ours = |t: &Path| {
        let name = t.file_name().map(PathBuf::from).unwrap_or_default();
        old.files
            .keys()
            .chain(new.files.keys())
            .any(|f| f.file_name() == Some(name.as_os_str()))
    };
    old.links.retain(|_, t| ours(t));

    let mut changed = false;
    let mut names: Vec<&PathBuf> = old.files.keys().chain(new.files.keys()).collect();
    names.sort();
    names.dedup();
    for path in names {
        let (a, b) = (old.files.get(path), new.files.get(path));
        let shown = path.display().to_string();
        let old_name = if a.is_some() {
            format!("a{shown}")
        } else {
            "/dev/null".into()
        };
        let new_name = if b.is_some() {
            format!("b{shown}")
        } else {
            "/dev/null".into()
        };
        let d = udiff::unified(
            a.map_or("", |s| s),
            b.map_or("", |s| s),
            &old_name,
            &new_name,
        );
        if !d.is_empty() {
            changed = true;
            print!("{d}");
        }
    }
    let mut links: Vec<&PathBuf> = old.links.keys().chain(new.links.keys()).collect();
    links.sort();
    links.dedup();
    for l in links {
        match (old.links.get(l), new.links.get(l)) {
            (Some(a), Some(b)) if a == b => {}
            (a, b) => {
                changed = true;
                if let Some(a) = a {
                    println!("-symlink {} -> {}", l.display(), a.display());
                }
                if let Some(b) = b {
                    println!("+symlink {} -> {}", l.display(), b.display());
                }
            }
        }
    }
    if !changed {
        eprintln!("no changes: a daemon-reload would generate the same units");
    }
    Ok(u8::from(changed))
}

/// Our unit files (by header) and every symlink below `dir`, two levels deep.
fn read_tree(dir: &Path, tree: &mut Tree) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.filter_map(Result::ok) {
        let p = e.path();
        let Ok(meta) = fs::symlink_metadata(&p) else {
            continue;
        };
        if meta.file_type().is_symlink() {
            if let Ok(t) = fs::read_link(&p) {
                tree.links.insert(p, t);
            }
        } else if meta.is_dir() {
            for e2 in fs::read_dir(&p)
                .into_iter()
                .flatten()
                .filter_map(Result::ok)
            {
                let p2 = e2.path();
                if let Ok(t) = fs::read_link(&p2) {
                    tree.links.insert(p2, t);
                } else if let Ok(t) = read_source(&p2, Owners::Any) {
                    // A drop-in (`UNIT.d/50-sparrow-x.conf`) we wrote.
                    if t.text.lines().next() == Some(&format!("# {HEADER}")) {
                        tree.files.insert(p2, t.text);
                    }
                }
            }
        } else if let Ok(t) = read_source(&p, Owners::Any) {
            if t.text.lines().next() == Some(&format!("# {HEADER}")) {
                tree.files.insert(p, t.text);
            }
        }
    }
}
