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
