//! Golden tests: each `tests/golden/*.sparrow` carries its expectations in
//! `// assert-...` comments, in the style of quadlet's test files. The
//! rendered units are read back with `sparrow_unit::parse` (systemd's rules),
//! not compared as text, so a test states what systemd will see.
//!
//! Directives (one per comment line):
//!   // facts {"memory_total": 1073741824}     override host facts (JSON)
//!   // env NAME=VALUE                         environment seen by env()
//!   // file /path                             file_exists(path) is true
//!   // lib DIR                                 modules come from tests/golden/DIR (default lib)
//!   // assert-units a.service b.timer         exactly these units, in order
//!   // unit NAME                              later unit assertions are about NAME
//!   // assert-key-is SECTION KEY VALUE        the last KEY= in SECTION is VALUE
//!   // assert-key-all SECTION KEY V1 | V2     every KEY= value, in order
//!   // assert-key-missing SECTION KEY
//!   // assert-argv SECTION KEY ["a", "b"]     the last KEY= splits into this argv
//!   // assert-env NAME VALUE                  Environment= sets NAME to VALUE
//!   // assert-install wanted_by a.target      the generator's symlink list
//!   // assert-runtime KEY                     the unit keeps runtime key KEY
//!   // assert-dynamic KEY                     KEY came from a closure
//!   // assert-error LINE:COL TEXT             an error at LINE:COL containing TEXT
//!   // assert-error-file NAME LINE:COL TEXT   the same, in another file (a module)
//!   // assert-help TEXT                       some diagnostic's help contains TEXT
//!   // assert-no-error TEXT                   no diagnostic contains TEXT
//!   // assert-note TEXT                       some note contains TEXT
//!   // assert-warning TEXT                    some warning contains TEXT
//!
//! A drop-in is named `UNIT.d/FILE` in `assert-units` and `unit`.

use std::path::{Path, PathBuf};
use std::rc::Rc;

use sparrow_lang::{FixedHost, Loaded, Loader, ModuleSource, ModuleText, Severity, UnitDecl};
use sparrow_unit::parse;

struct Lib(PathBuf);

impl ModuleSource for Lib {
    fn module(&self, name: &str) -> Result<Option<ModuleText>, String> {
        let path = self.0.join(format!("{name}.sparrow"));
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(Some(ModuleText { path, text })),
            Err(_) => Ok(None),
        }
    }
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn load(path: &Path, text: &str) -> Loaded {
    let mut host = FixedHost::debian();
    let mut lib = "lib";
    for line in text.lines() {
        let Some(d) = line.trim().strip_prefix("// ") else {
            continue;
        };
        if let Some(json) = d.strip_prefix("facts ") {
            let mut facts = serde_json::to_value(&host.facts).unwrap();
            let over: serde_json::Value = serde_json::from_str(json).expect("facts JSON");
            for (k, v) in over.as_object().unwrap() {
                facts[k] = v.clone();
            }
            host.facts = serde_json::from_value(facts).unwrap();
        } else if let Some(kv) = d.strip_prefix("env ") {
            let (k, v) = kv.split_once('=').unwrap();
            host.env.insert(k.into(), v.into());
        } else if let Some(f) = d.strip_prefix("file ") {
            host.files.push(f.into());
        } else if let Some(dir) = d.strip_prefix("lib ") {
            lib = dir;
        }
    }
    let loader = Loader::new(Rc::new(host));
    loader.load(path, text, Rc::new(Lib(golden_dir().join(lib))))
}

/// Checks one fixture; returns the failures.
fn check(file: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap();
    // A fixed path, so that SourcePath= and diagnostics do not depend on the checkout.
    let path = &Path::new("/golden").join(file.file_name().unwrap());
    let loaded = load(path, &text);
    let mut failures = Vec::new();
    let mut fail = |lineno: usize, msg: String| failures.push(format!("line {lineno}: {msg}"));
    let mut current: Option<&UnitDecl> = None;
    let mut parsed = None;
    let mut expects_error = false;
    let diags = || {
        loaded
            .diagnostics
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join("\n    ")
    };

    for (i, line) in text.lines().enumerate() {
        let lineno = i + 1;
        let Some(d) = line.trim().strip_prefix("// ") else {
            continue;
        };
        let (cmd, rest) = d.split_once(' ').unwrap_or((d, ""));
        match cmd {
            "assert-units" => {
                let got: Vec<String> = loaded.units.iter().map(label).collect();
                let want: Vec<&str> = rest.split_whitespace().collect();
                if got != want {
                    fail(
                        lineno,
                        format!("units {got:?}, expected {want:?}\n    {}", diags()),
                    );
                }
            }
            "unit" => {
                current = loaded.units.iter().find(|u| label(u) == rest);
                parsed =
                    current.map(|u| parse::parse(&u.file.render()).expect("rendered units parse"));
                if current.is_none() {
                    fail(lineno, format!("no unit {rest}\n    {}", diags()));
                }
            }
            "assert-key-is" | "assert-key-all" | "assert-key-missing" | "assert-argv"
            | "assert-env" => {
                let Some(p) = &parsed else { continue };
                let mut parts = rest.splitn(3, ' ');
                let (section, key, want) = (
                    parts.next().unwrap(),
                    parts.next().unwrap_or(""),
                    parts.next().unwrap_or(""),
                );
                let values = p.get(section, key);
                match cmd {
                    "assert-key-is" => {
                        if values.last() != Some(&want) {
                            fail(
                                lineno,
                                format!("[{section}] {key}= is {values:?}, expected {want:?}"),
                            );
                        }
                    }
                    "assert-key-all" => {
                        let want: Vec<&str> = want.split(" | ").collect();
                        if values != want {
                            fail(
                                lineno,
                                format!("[{section}] {key}= is {values:?}, expected {want:?}"),
                            );
                        }
                    }
                    "assert-key-missing" => {
                        if !values.is_empty() {
                            fail(
                                lineno,
                                format!("[{section}] {key}= is {values:?}, expected none"),
                            );
                        }
                    }
                    "assert-argv" => {
                        let want: Vec<String> = serde_json::from_str(want).expect("argv JSON");
                        let got = values.last().map(|v| parse::exec_argv(v).unwrap());
                        if got.as_ref() != Some(&want) {
                            fail(lineno, format!("[{section}] {key}= argv {got:?}, expected {want:?} (raw {values:?})"));
                        }
                    }
                    _ => {
                        // assert-env NAME VALUE: rest is "NAME VALUE".
                        let (name, val) = rest.split_once(' ').unwrap_or((rest, ""));
                        let env: Vec<(String, String)> = p
                            .get("Service", "Environment")
                            .iter()
                            .flat_map(|v| parse::environment(v).unwrap())
                            .collect();
                        if !env.contains(&(name.to_string(), val.to_string())) {
                            fail(lineno, format!("Environment {env:?} lacks {name}={val:?}"));
                        }
                    }
                }
            }
            "assert-install" => {
                let Some(u) = current else { continue };
                let (what, names) = rest.split_once(' ').unwrap_or((rest, ""));
                let want: Vec<String> = names.split_whitespace().map(String::from).collect();
                let got = match what {
                    "wanted_by" => &u.install.wanted_by,
                    "required_by" => &u.install.required_by,
                    "upheld_by" => &u.install.upheld_by,
                    "alias" => &u.install.alias,
                    other => panic!("unknown install list {other}"),
                };
                if *got != want {
                    fail(lineno, format!("{what} is {got:?}, expected {want:?}"));
                }
            }
            "assert-runtime" => {
                if let Some(u) = current {
                    if !u.runtime_keys.contains(&rest) {
                        fail(
                            lineno,
                            format!("runtime keys {:?} lack {rest}", u.runtime_keys),
                        );
                    }
                }
            }
            "assert-dynamic" => {
                if let Some(u) = current {
                    if !u.dynamic_keys.contains(&rest) {
                        fail(
                            lineno,
                            format!("dynamic keys {:?} lack {rest}", u.dynamic_keys),
                        );
                    }
                }
            }
            "assert-no-error" => {
                if let Some(d) = loaded.diagnostics.iter().find(|d| d.message.contains(rest)) {
                    fail(lineno, format!("unexpected diagnostic: {d}"));
                }
            }
            "assert-error" | "assert-error-file" => {
                expects_error = true;
                let (file, rest) = if cmd == "assert-error-file" {
                    let (f, r) = rest.split_once(' ').unwrap();
                    (Some(f), r)
                } else {
                    (None, rest)
                };
                let (pos, want) = rest.split_once(' ').unwrap();
                let (l, c) = pos.split_once(':').unwrap();
                let (l, c): (usize, usize) = (l.parse().unwrap(), c.parse().unwrap());
                let found = loaded.diagnostics.iter().any(|d| {
                    d.severity == Severity::Error
                        && d.line == l
                        && d.col == c
                        && d.message.contains(want)
                        && match file {
                            Some(f) => d.file.ends_with(f),
                            None => d.file == *path,
                        }
                });
                if !found {
                    fail(
                        lineno,
                        format!(
                            "no error at {l}:{c} containing {want:?}; got:\n    {}",
                            diags()
                        ),
                    );
                }
            }
            "assert-help" | "assert-note" | "assert-warning" => {
                let found = loaded.diagnostics.iter().any(|d| match cmd {
                    "assert-help" => d.help.as_deref().is_some_and(|h| h.contains(rest)),
                    "assert-note" => d.severity == Severity::Note && d.message.contains(rest),
                    _ => d.severity == Severity::Warning && d.message.contains(rest),
                });
                if !found {
                    fail(
                        lineno,
                        format!("no {cmd} containing {rest:?}; got:\n    {}", diags()),
                    );
                }
            }
            "facts" | "env" | "file" | "lib" => {}
            other if other.starts_with("assert") => {
                fail(lineno, format!("unknown directive {other}"))
            }
            _ => {}
        }
    }
    if !expects_error && loaded.has_errors() {
        failures.push(format!("unexpected errors:\n    {}", diags()));
    }
    if expects_error && !loaded.units.is_empty() {
        failures.push("a definition with errors must declare no units".into());
    }
    failures
}

/// How assertions name a unit: `NAME`, or `NAME.d/FILE` for a drop-in.
fn label(u: &UnitDecl) -> String {
    match &u.dropin {
        Some(d) => format!("{}.d/{d}", u.name),
        None => u.name.to_string(),
    }
}

#[test]
fn golden() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(golden_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sparrow"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "golden fixtures missing");
    let mut report = String::new();
    for f in &files {
        for failure in check(f) {
            report.push_str(&format!(
                "{}: {failure}\n",
                f.file_name().unwrap().to_string_lossy()
            ));
        }
    }
    assert!(report.is_empty(), "golden failures:\n{report}");
}

/// Every key of the table is exercised by some golden fixture.
#[test]
fn every_key_has_a_golden() {
    let mut all = String::new();
    for e in std::fs::read_dir(golden_dir()).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|e| e == "sparrow") {
            all.push_str(&std::fs::read_to_string(&p).unwrap());
        }
    }
    let missing: Vec<&str> = sparrow_lang::keys::KEYS
        .iter()
        .filter(|k| {
            !std::iter::once(k.name)
                .chain(k.aliases.iter().copied())
                .flat_map(|n| [format!("{n}:"), format!("\"{}\":", n.replace('_', "-"))])
                .any(|s| all.contains(&s))
        })
        .map(|k| k.name)
        .collect();
    assert!(missing.is_empty(), "keys without a golden: {missing:?}");
}
