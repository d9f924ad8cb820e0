use super::*;
use proptest::prelude::*;
use serde_json::json;

fn decl(desc: &str, line: usize, params: Value) -> Decl {
    Decl {
        desc: desc.into(),
        plugin: "systemd".into(),
        params,
        line,
    }
}

#[test]
fn declarations_land_on_their_raku_lines() {
    let text = rhai_text(
        &[
            decl("b", 4, json!({"start": "/bin/b"})),
            decl("a", 2, json!({"start": "/bin/a"})),
            decl("c", 4, json!({})),
        ],
        "/d.raku",
    )
    .unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "");
    assert!(
        lines[1].starts_with(r#"task_run("a", "systemd", #{"start": "/bin/a"});"#),
        "{text}"
    );
    assert_eq!(lines[2], "");
    // Same line, in the order declared.
    assert!(
        lines[3].find("\"b\"").unwrap() < lines[3].find("\"c\"").unwrap(),
        "{text}"
    );
}

#[test]
fn raku_values_get_native_spellings() {
    let text = rhai_text(&[decl(
        "web",
        1,
        json!({
            "after-service": ["redis", "postgresql"],
            "memory-max": 4294967296u64,
            "cpu-weight": 1.5,
            "restart": true,
            "nothing": null,
            "kernel-monitoring": {"psi": {"memory": {"threshold": 150000, "window": 2000000, "level": "some"}}},
            "monitoring": {"interval": 60},
            "health-check": {"type": "http", "body": {"$regex": "'ok' \\d+"}},
            "hooks": {"pre-start": {"$sub": {"arity": 0, "line": 3}}},
            "pressure-response": {"$sub": {"arity": 1, "line": 5}},
        }),
    )], "/d.raku")
    .unwrap();
    for want in [
        r#""after-service": ["redis", "postgresql"]"#,
        r#""memory-max": 4294967296"#,
        r#""cpu-weight": 1.5"#,
        r#""restart": true"#,
        r#""nothing": ()"#,
        r#""threshold": "150000us""#,
        r#""window": "2000000us""#,
        // Only PSI integers are microseconds.
        r#""interval": 60"#,
        r#""body_regex": "ok\\d+""#,
        r#""pre-start": || raku_sub("/d.raku", "web", ["hooks", "pre-start"], [])"#,
        r#""pressure-response": |a0| raku_sub("/d.raku", "web", ["pressure-response"], [a0])"#,
    ] {
        assert!(text.contains(want), "{want} not in {text}");
    }
}

#[test]
fn untranslatable_parts_name_the_line_and_the_place() {
    let e = rhai_text(
        &[decl(
            "w",
            7,
            json!({"health-check": {"body": {"$regex": "\\d{2}"}}}),
        )],
        "/d.raku",
    )
    .unwrap_err();
    assert_eq!(e.line, 7);
    assert!(e.message.contains("health-check.body"), "{}", e.message);
    assert!(e.message.contains("** 2"), "{}", e.message);
    let e = rhai_text(&[decl("w", 2, json!(["not", "a", "hash"]))], "/d.raku").unwrap_err();
    assert!(e.message.contains("must be a hash"), "{}", e.message);
    let e = rhai_text(&[decl("w", 2, json!({"x": u64::MAX}))], "/d.raku").unwrap_err();
    assert!(e.message.contains("largest integer"), "{}", e.message);
}

#[test]
fn strings_cannot_break_out_of_their_literal() {
    assert_eq!(string("a\"b\\c\nd\u{1}"), r#""a\"b\\c\nd\u0001""#);
}

proptest! {
    /// Any string survives the trip: the native engine reads the literal
    /// back as the same string.
    #[test]
    fn string_literals_round_trip(s in "\\PC*|[\\x00-\\x1f\"\\\\$`{}]*") {
        let engine = rhai::Engine::new_raw();
        let back: String = engine.eval_expression(&string(&s)).unwrap();
        prop_assert_eq!(back, s);
    }
}
