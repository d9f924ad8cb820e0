//! Property tests: whatever a value contains, the rendered unit reads back
//! (with systemd's rules, `sparrow_unit::parse`) as exactly the keys that were
//! pushed, with exactly the pushed values, or the push is refused.

use proptest::prelude::*;
use sparrow_unit::parse::{self, ParsedUnit};
use sparrow_unit::{UnitFile, Value, Word};

/// Strings dense in the characters that matter to unit syntax.
fn nasty() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z %$\\\\\"' ;#=\\[\\]\n\r\t\u{0}\u{1b}\u{7f}é]{0,24}",
        any::<String>(),
    ]
}

/// Renders `value` between two sentinel keys and parses the result.
fn render_between(key: &str, value: &Value) -> Option<ParsedUnit> {
    let mut u = UnitFile::new();
    u.comment("header");
    let s = u.section("Service").unwrap();
    s.push("Before", &Value::Verbatim("1".into())).unwrap();
    if s.push(key, value).is_err() {
        return None;
    }
    s.push("After", &Value::Verbatim("2".into())).unwrap();
    let parsed = parse::parse(&u.render()).expect("a rendered unit always parses");
    Some(parsed)
}

/// Exactly the three pushed keys, in order, in the one section.
fn assert_shape(p: &ParsedUnit, key: &str) -> String {
    assert_eq!(p.sections, vec!["Service".to_string()]);
    let keys: Vec<&str> = p.entries.iter().map(|(_, k, _)| k.as_str()).collect();
    assert_eq!(keys, vec!["Before", key, "After"]);
    assert_eq!(p.get("Service", "Before"), vec!["1"]);
    assert_eq!(p.get("Service", "After"), vec!["2"]);
    p.entries[1].2.clone()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn text_cannot_inject(s in nasty()) {
        if let Some(p) = render_between("Description", &Value::Text(s.clone())) {
            let v = assert_shape(&p, "Description");
            prop_assert_eq!(parse::unescape_specifiers(&v), s.trim_matches(' '));
        } else {
            prop_assert!(s.chars().any(char::is_control) || s.trim_end_matches(' ').ends_with('\\'));
        }
    }

    #[test]
    fn verbatim_cannot_inject(s in nasty()) {
        if let Some(p) = render_between("LimitNOFILE", &Value::Verbatim(s.clone())) {
            let v = assert_shape(&p, "LimitNOFILE");
            prop_assert_eq!(v, s.trim_matches(' '));
        } else {
            prop_assert!(s.chars().any(char::is_control) || s.trim_end_matches(' ').ends_with('\\'));
        }
    }

    #[test]
    fn argv_round_trips(words in prop::collection::vec(nasty(), 1..5), raw_mask in any::<u8>()) {
        let mut argv = vec![Word::Literal("/usr/bin/prog".into())];
        for (i, w) in words.iter().enumerate() {
            // Raw words keep `%` and `$`; only check those that hold neither.
            let raw = raw_mask & (1 << i) != 0 && !w.contains(['%', '$']);
            argv.push(if raw { Word::Raw(w.clone()) } else { Word::Literal(w.clone()) });
        }
        if let Some(p) = render_between("ExecStart", &Value::Argv(argv.clone())) {
            let v = assert_shape(&p, "ExecStart");
            let got = parse::exec_argv(&v).expect("rendered argv splits");
            let want: Vec<String> = argv.iter().map(|w| w.text().to_string()).collect();
            prop_assert_eq!(got, want);
        } else {
            prop_assert!(words.iter().any(|w| w.chars().any(char::is_control)));
        }
    }

    #[test]
    fn environment_round_trips(name in "[A-Za-z_][A-Za-z0-9_]{0,8}|.{0,6}", value in nasty()) {
        let v = Value::Env(name.clone(), Word::Literal(value.clone()));
        if let Some(p) = render_between("Environment", &v) {
            let raw = assert_shape(&p, "Environment");
            prop_assert_eq!(parse::environment(&raw).expect("splits"), vec![(name, value)]);
        } else {
            let bad_name = name.is_empty()
                || name.starts_with(|c: char| c.is_ascii_digit())
                || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            prop_assert!(bad_name || value.chars().any(char::is_control));
        }
    }

    #[test]
    fn keys_and_sections_cannot_inject(key in nasty(), section in nasty()) {
        let mut u = UnitFile::new();
        let Ok(s) = u.section(&section) else { return Ok(()) };
        if s.push(&key, &Value::Verbatim("v".into())).is_err() {
            return Ok(());
        }
        let p = parse::parse(&u.render()).unwrap();
        prop_assert_eq!(p.entries, vec![(section, key, "v".to_string())]);
    }
}
