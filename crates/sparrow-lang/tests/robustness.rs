//! The loader takes any text without panicking, and every error it reports
//! names a place in a file. Inputs: random text, and the golden fixtures
//! with random bytes changed (a cheap stand-in for a coverage-guided fuzzer).

use std::path::Path;
use std::rc::Rc;

use proptest::prelude::*;
use sparrow_lang::{FixedHost, Loader, NoModules};

fn fixtures() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let p = e.unwrap().path();
            (p.extension()? == "sparrow").then(|| std::fs::read_to_string(p).unwrap())
        })
        .collect();
    v.sort();
    v
}

fn check(text: &str) {
    let loader = Loader::new(Rc::new(FixedHost::debian()));
    let loaded = loader.load(Path::new("/fuzz/input.sparrow"), text, Rc::new(NoModules));
    for d in &loaded.diagnostics {
        if d.is_error() {
            assert!(!d.message.is_empty());
            assert!(!d.file.as_os_str().is_empty());
        }
    }
    if loaded.has_errors() {
        assert!(loaded.units.is_empty());
    }
    for u in &loaded.units {
        // Whatever was accepted renders into a unit systemd can parse.
        sparrow_unit::parse::parse(&u.file.render()).expect("accepted units parse");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn random_text_never_panics(s in ".{0,200}") {
        check(&s);
    }

    #[test]
    fn mutated_fixtures_never_panic(i in 0..64usize, edits in prop::collection::vec((any::<prop::sample::Index>(), any::<char>()), 1..6)) {
        let all = fixtures();
        let mut chars: Vec<char> = all[i % all.len()].chars().collect();
        for (at, c) in edits {
            let k = at.index(chars.len());
            chars[k] = c;
        }
        check(&chars.into_iter().collect::<String>());
    }
}

/// A script that nests `depth` levels of arrays or maps (or both), then
/// uses the result as a value, prints it, and compares it.
fn nested(depth: usize, kind: u8, key: &str) -> String {
    let wrap = match kind % 3 {
        0 => "[take(v)]",
        1 => "#{ x: take(v) }",
        _ => "if i % 2 == 0 { [take(v)] } else { #{ y: take(v) } }",
    };
    format!(
        "let v = 1; for i in 0..{depth} {{ v = {wrap}; }}\nprint(v);\nlet same = v == v;\nservice(\"n\", #{{ exec_start: \"/bin/true\", {key}: v }});\n"
    )
}

/// A script with values near (and over) the engine's size limits.
fn large(len: usize, count: usize, what: u8) -> String {
    match what % 4 {
        0 => format!(
            "let s = \"x\"; s.pad({len}, \"y\");\nservice(\"l\", #{{ exec_start: \"/bin/true\", description: s }});\n"
        ),
        1 => format!(
            "let a = []; a.pad({count}, \"/bin/arg\");\nservice(\"l\", #{{ exec_start: [\"/bin/true\"] + a }});\n"
        ),
        2 => format!(
            "let m = #{{}}; for i in 0..{count} {{ m[`K${{i}}`] = i; }}\nservice(\"l\", #{{ exec_start: \"/bin/true\", env: m }});\n"
        ),
        _ => format!(
            "let s = \"ab\"; s.pad({len}, \"c\"); let t = s + s + s;\nservice(\"l\", #{{ exec_start: \"/bin/true\", description: t }});\n"
        ),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Moderate depth runs in-process (deep enough to exercise every
    /// recursive path, shallow enough for the test's own stack); the
    /// generator's tests run thousands of levels through evaluator processes.
    #[test]
    fn nested_values_never_panic(depth in 1..150usize, kind in any::<u8>(), key in prop::sample::select(vec!["description", "env", "exec_start", "after", "memory_max", "service_section"])) {
        check(&nested(depth, kind, key));
    }

    #[test]
    fn large_values_never_panic(len in 0..(1usize << 21), count in 0..120_000usize, what in any::<u8>()) {
        check(&large(len, count, what));
    }
}
