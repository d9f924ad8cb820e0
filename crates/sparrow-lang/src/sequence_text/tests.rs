use rhai::{Dynamic, Map};

use super::*;

fn ok(text: &str) -> Vec<TextStep> {
    parse(text).unwrap_or_else(|e| panic!("{:?}: {e}", short(text)))
}

fn err(text: &str) -> TextError {
    match parse(text) {
        Ok(steps) => panic!("{:?} parsed as {} steps", short(text), steps.len()),
        Err(e) => e,
    }
}

fn short(text: &str) -> String {
    text.chars().take(200).collect()
}

/// The parameters of the only step of a block whose body is `task-run .. BODY`.
fn params(hash: &str) -> Map {
    let steps = ok(&format!("begin:\n task-run \"d\", \"p\", {hash}\nend:\n"));
    assert_eq!(steps.len(), 1);
    steps[0].params.clone()
}

fn debug(m: &Map) -> String {
    format!("{:?}", Dynamic::from_map(m.clone()))
}

#[test]
fn the_sparrow6_example() {
    let steps = ok(r#"
begin:
  task-run "check storage", "storage-mount", %( path => "/data", min-free => "10G" )
  task-run "wait for db", "tcp-check", %( host => "127.0.0.1", port => 5432, timeout => 30 )
  task-run "warm cache", "cache-warmer"
end:
"#);
    let names: Vec<(&str, &str)> = steps
        .iter()
        .map(|s| (s.desc.as_str(), s.plugin.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("check storage", "storage-mount"),
            ("wait for db", "tcp-check"),
            ("warm cache", "cache-warmer")
        ]
    );
    // Keys stay as written: plugins read them by their own names.
    assert_eq!(steps[0].params["min-free"].to_string(), "10G");
    assert_eq!(steps[0].params["path"].to_string(), "/data");
    assert_eq!(steps[1].params["port"].as_int(), Ok(5432));
    assert_eq!(steps[1].params["timeout"].as_int(), Ok(30));
    assert!(steps[2].params.is_empty());
}

#[test]
fn layout_comments_semicolons_and_multi_line_hashes() {
    let steps = ok("# set up\n\n  begin:   # here\n\
         task-run 'a', 'b';\n\
         # between\n\
         task-run \"c\", \"d\",\n   %(\n  x => 1,   # one\n  y => [ 1,\n 2 ],\n);\r\n\
         end:\n\n# done\n");
    assert_eq!(steps.len(), 2);
    assert_eq!(debug(&steps[1].params), "#{\"x\": 1, \"y\": [1, 2]}");
    assert!(ok("begin:\nend:").is_empty());
    assert!(is_text_form("\n  # c\n begin:\n"));
    assert!(!is_text_form("/usr/bin/begin:"));
    assert!(!is_text_form("# only a comment"));
}

#[test]
fn raku_values() {
    let p = params(
        r#"%( s => "a\"b\\c\n\t", q => 'it\'s \n $x {y}', i => -1_000, f => 2.5, e => 1e3,
              t => True, n => False, h => %( "quoted key" => %() ), l => [], g => ( 1, 'x' ),
              one => (7), trail => (7,), deep => [ [ 1 ], %( k => [ True ] ) ], )"#,
    );
    assert_eq!(p["s"].to_string(), "a\"b\\c\n\t");
    assert_eq!(p["q"].to_string(), "it's \\n $x {y}");
    assert_eq!(p["i"].as_int(), Ok(-1000));
    assert_eq!(p["f"].as_float(), Ok(2.5));
    assert_eq!(p["e"].as_float(), Ok(1000.0));
    assert_eq!(p["t"].as_bool(), Ok(true));
    assert_eq!(p["n"].as_bool(), Ok(false));
    assert_eq!(format!("{:?}", p["h"]), "#{\"quoted key\": #{}}");
    assert_eq!(format!("{:?}", p["l"]), "[]");
    assert_eq!(format!("{:?}", p["g"]), "[1, \"x\"]");
    assert_eq!(p["one"].as_int(), Ok(7));
    assert_eq!(format!("{:?}", p["trail"]), "[7]");
    assert_eq!(format!("{:?}", p["deep"]), "[[1], #{\"k\": [true]}]");
    let p = params("%( one => <x>, words => <a 2 0.5 -3>, none => <> )");
    assert_eq!(p["one"].to_string(), "x");
    assert_eq!(format!("{:?}", p["words"]), "[\"a\", 2, 0.5, -3]");
    assert_eq!(format!("{:?}", p["none"]), "[]");
}

#[test]
fn pairs() {
    let p = params(
        "%( :path</data>, :port<5432>, :ratio<0.5>, :tags<a b>, :timeout(30), :list(1, 2), \
         :verbose, :!dry-run, nested => :x<y> )",
    );
    assert_eq!(p["path"].to_string(), "/data");
    assert_eq!(p["port"].as_int(), Ok(5432));
    assert_eq!(p["ratio"].as_float(), Ok(0.5));
    assert_eq!(format!("{:?}", p["tags"]), "[\"a\", \"b\"]");
    assert_eq!(p["timeout"].as_int(), Ok(30));
    assert_eq!(format!("{:?}", p["list"]), "[1, 2]");
    assert_eq!(p["verbose"].as_bool(), Ok(true));
    assert_eq!(p["dry-run"].as_bool(), Ok(false));
    assert_eq!(format!("{:?}", p["nested"]), "#{\"x\": \"y\"}");
}

#[test]
fn errors_name_the_line_and_column() {
    let cases: &[(&str, (usize, usize), &str)] = &[
        ("task-run \"a\", \"b\"", (1, 1), "expected `begin:`"),
        (
            "begin: task-run \"a\", \"b\"\nend:",
            (1, 8),
            "end of the line after `begin:`",
        ),
        (
            "begin:\n  task-run \"a\", \"b\"\n",
            (3, 1),
            "not closed: expected a line `end:`",
        ),
        (
            "begin:\nend:\ntask-run \"a\", \"b\"",
            (3, 1),
            "nothing but blank lines",
        ),
        ("begin:\nend:\nbegin:\nend:", (3, 1), "may follow `end:`"),
        (
            "begin:\n bash \"ls\"\nend:",
            (2, 2),
            "expected a task-run line or `end:`, found \"bash\"",
        ),
        (
            "begin:\n task-run(\"a\", \"b\")\nend:",
            (2, 10),
            "without parentheses",
        ),
        (
            "begin:\n task-run a, \"b\"\nend:",
            (2, 11),
            "the description as a quoted string",
        ),
        (
            "begin:\n task-run \"a\" \"b\"\nend:",
            (2, 15),
            "expected \",\" and the plugin name",
        ),
        (
            "begin:\n task-run \"a\", \"b\" x\nend:",
            (2, 20),
            "or the end of the line",
        ),
        (
            "begin:\n task-run \"a\", \"b\",\nend:",
            (3, 1),
            "expected a parameter hash",
        ),
        (
            "begin:\n task-run \"a\", \"b\", %( x => 1 y => 2 )\nend:",
            (2, 31),
            "expected \",\" or \")\" after the value, found \"y\"",
        ),
        (
            "begin:\n task-run \"a\", \"b\", %( x => 1,\nend:",
            (3, 4),
            "expected \"=>\" after the name \"end\"",
        ),
        (
            "begin:\n task-run \"a\", \"b\", %( x 1 )\nend:",
            (2, 26),
            "expected \"=>\" after the name \"x\"",
        ),
        (
            "begin:\n task-run \"a\", \"b\", %( x => 1, x => 2 )\nend:",
            (2, 32),
            "\"x\" is given twice",
        ),
        (
            "begin:\n task-run \"a\", \"b\", %( x => yes )\nend:",
            (2, 29),
            "bare word \"yes\"",
        ),
        (
            "begin:\n task-run \"a\", \"b\", %( min-free => 10G )\nend:",
            (2, 36),
            "\"10G\" is not a number",
        ),
        (
            "begin:\n task-run \"a\", \"b\", %( n => 99999999999999999999 )\nend:",
            (2, 29),
            "out of range",
        ),
        (
            "begin:\n task-run \"a\", \"b\", %( n => 1__0 )\nend:",
            (2, 29),
            "\"1__0\" is not a number",
        ),
        (
            "begin:\n task-run \"a\", \"b\", %( :!x<1> )\nend:",
            (2, 27),
            ":!x is False",
        ),
        (
            "begin:\n task-run \"a\", \"b\", %( :<1> )\nend:",
            (2, 25),
            "expected a name after \":\"",
        ),
        (
            "begin:\n task-run \"a\", \"b\", %( :x<1 )\nend:",
            (2, 26),
            "this <..> is not closed",
        ),
        (
            "begin:\n task-run \"a\", \"b\", %( x => [1, 2 )\nend:",
            (2, 35),
            "expected \",\" or \"]\"",
        ),
        (
            "begin:\n task-run \"a\", \"b\", %( x => \"a\\qb\" )\nend:",
            (2, 31),
            "unknown escape \\q",
        ),
    ];
    let wrong: Vec<String> = cases
        .iter()
        .filter_map(|(text, place, want)| {
            let e = err(text);
            (!e.message.contains(want) || (e.line, e.col) != *place)
                .then(|| format!("{text:?}: {e}"))
        })
        .collect();
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn unterminated_strings_and_hashes_point_at_their_opening() {
    let e = err("begin:\n  task-run \"check, \"p\"\nend:\n");
    assert!(
        e.message.contains("expected \",\" and the plugin name"),
        "{e}"
    );
    let e = err("begin:\n  task-run \"a\", \"b\", %( x => 'open\nend:\n");
    assert_eq!((e.line, e.col), (2, 30), "{e}");
    assert!(
        e.message.contains("not closed: expected a closing '"),
        "{e}"
    );
    let e = err("begin:\n  task-run \"a\", \"b\", %( x => 1,\n y => 2\n");
    assert_eq!((e.line, e.col), (4, 1), "{e}");
    assert!(
        e.message
            .contains("the %( hash opened at line 2, column 22 is not closed"),
        "{e}"
    );
    let e = err("begin:\n  task-run \"a\\");
    assert_eq!((e.line, e.col), (2, 12), "{e}");
}

#[test]
fn interpolation_is_refused_at_its_column() {
    for (text, col) in [("\"$HOME/x\"", 30), ("\"a {1 + 1}\"", 32), ("\"$\"", 30)] {
        let e = err(&format!(
            "begin:\n task-run \"a\", \"b\", %( p => {text} )\nend:"
        ));
        assert_eq!((e.line, e.col), (2, col), "{e}");
        assert!(e.message.contains("would interpolate in Raku"), "{e}");
    }
    let e = err("begin:\n task-run \"$desc\", \"b\"\nend:");
    assert_eq!((e.line, e.col), (2, 12), "{e}");
    // Escaped, or in single quotes, they are text.
    let p = params("%( p => \"\\$HOME \\{x\\}\", q => '$HOME {x}' )");
    assert_eq!(p["p"].to_string(), "$HOME {x}");
    assert_eq!(p["q"].to_string(), "$HOME {x}");
}

#[test]
fn nesting_is_capped_at_32_levels() {
    // The parameter hash is the first level.
    let nest = |n: usize, open: &str, close: &str| {
        format!("%( x => {}1{} )", open.repeat(n - 1), close.repeat(n - 1))
    };
    for (open, close) in [("[", "]"), ("(", ",)"), ("%( k => ", " )"), (":k(", ")")] {
        let p = params(&nest(MAX_DEPTH, open, close));
        assert!(p.contains_key("x"));
        let e = err(&format!(
            "begin:\n task-run \"a\", \"b\", {}\nend:",
            nest(MAX_DEPTH + 1, open, close)
        ));
        assert!(e.message.contains("nested more than 32 levels"), "{e}");
        // Far deeper input stops at the cap, without exhausting the stack.
        let e = err(&format!(
            "begin:\n task-run \"a\", \"b\", {}\nend:",
            nest(100_000, open, close)
        ));
        assert!(e.message.contains("nested more than 32 levels"), "{e}");
    }
}

#[test]
fn very_long_input_is_read_in_one_pass() {
    let line = "  task-run \"step\", \"plugin\", %( n => 1, s => 'text' )\n";
    let text = format!("begin:\n{}end:\n", line.repeat(20_000));
    let start = std::time::Instant::now();
    assert_eq!(ok(&text).len(), 20_000);
    let long = "x".repeat(1 << 20);
    let p = params(&format!("%( s => \"{long}\", w => <{long}> )"));
    assert_eq!(p["s"].to_string().len(), 1 << 20);
    let e = err(&format!("begin:\n task-run \"{long}"));
    assert_eq!((e.line, e.col), (2, 11));
    let e = err(&format!("begin:\n{}", "\n".repeat(100_000)));
    assert_eq!(e.line, 100_002);
    let e = err(&format!(
        "begin:\n task-run \"a\", \"b\", %( {} )",
        "[".repeat(1 << 20)
    ));
    assert!(e.message.contains("expected a name"), "{e}");
    // Generous: a quadratic scan would take minutes.
    assert!(start.elapsed() < std::time::Duration::from_secs(20));
}

#[test]
fn errors_display_their_place() {
    let e = err("begin:\n");
    assert_eq!(
        e.to_string(),
        "line 2, column 1: the block is not closed: expected a line `end:` after the last task-run line"
    );
}
