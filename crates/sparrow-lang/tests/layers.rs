//! The crate's modules form layers: no module imports one that imports it
//! back (directly or around a circle). Kept true by this test, which reads
//! the `crate::` paths of every source file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

fn deps() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(&src).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_none_or(|x| x != "rs") {
            continue;
        }
        let name = p.file_stem().unwrap().to_string_lossy().into_owned();
        if name == "lib" {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap();
        // Only the module's own code: its tests may reach anywhere.
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        let mut used = BTreeSet::new();
        for (i, _) in code.match_indices("crate::") {
            let rest = &code[i + "crate::".len()..];
            let module: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !module.is_empty() && module != name {
                used.insert(module);
            }
        }
        // `use crate::{a, b}` lists.
        for (i, _) in code.match_indices("use crate::{") {
            let rest = &code[i + "use crate::{".len()..];
            let list = &rest[..rest.find('}').unwrap_or(0)];
            for item in list.split(',') {
                let m = item.trim().split("::").next().unwrap_or("").trim();
                if !m.is_empty()
                    && m != name
                    && m.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                {
                    used.insert(m.to_string());
                }
            }
        }
        out.insert(name, used);
    }
    out
}

#[test]
fn modules_import_no_circle() {
    let deps = deps();
    // Peel off modules whose dependencies are all peeled: whatever is left
    // is on a circle.
    let mut done: BTreeSet<String> = BTreeSet::new();
    loop {
        let next: Vec<String> = deps
            .iter()
            .filter(|(m, d)| {
                !done.contains(*m) && d.iter().all(|x| done.contains(x) || !deps.contains_key(x))
            })
            .map(|(m, _)| m.clone())
            .collect();
        if next.is_empty() {
            break;
        }
        done.extend(next);
    }
    let left: Vec<(&String, &BTreeSet<String>)> =
        deps.iter().filter(|(m, _)| !done.contains(*m)).collect();
    assert!(left.is_empty(), "modules on an import circle: {left:#?}");
}

/// No source file in the workspace grows past 600 lines unless it says at
/// its top why (a line `//! Longer than 600 lines because ...`).
#[test]
fn source_files_stay_readable() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut long = Vec::new();
    for c in std::fs::read_dir(&crates).unwrap() {
        let src = c.unwrap().path().join("src");
        let mut stack = vec![src];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "rs") {
                    let text = std::fs::read_to_string(&p).unwrap();
                    let lines = text.lines().count();
                    let reasoned = text
                        .lines()
                        .take(20)
                        .any(|l| l.starts_with("//! Longer than 600 lines because"));
                    if lines > 600 && !reasoned {
                        long.push(format!("{} ({lines} lines)", p.display()));
                    }
                }
            }
        }
    }
    assert!(
        long.is_empty(),
        "files over 600 lines without a reason at the top: {long:#?}"
    );
}
