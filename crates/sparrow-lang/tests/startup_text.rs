//! Sparrow6's text form of `orchestration.startup_sequence`, through
//! `Loader::load`: the same steps as the list form, and errors that name the
//! definition's file:line:col and the line within the block.

use std::path::Path;
use std::rc::Rc;

use sparrow_lang::runtime::Step;
use sparrow_lang::{Diagnostic, FixedHost, Loaded, Loader, NoModules};

fn load(text: &str) -> Loaded {
    let loader = Loader::new(Rc::new(FixedHost::debian()));
    loader.load(Path::new("/defs/app.sparrow"), text, Rc::new(NoModules))
}

/// `orchestration: #{ startup_sequence: SEQ }` in an otherwise good service.
fn with_sequence(seq: &str) -> String {
    format!(
        "service(\"app\", #{{\n    exec_start: \"/usr/bin/app\",\n    orchestration: #{{ startup_sequence: {seq} }},\n}});\n"
    )
}

/// The steps of the only unit, spelled out (a `Map` of `Dynamic`s has no `==`).
fn steps(text: &str) -> Vec<String> {
    let loaded = load(text);
    assert!(!loaded.has_errors(), "{:#?}", loaded.diagnostics);
    loaded.units[0]
        .runtime
        .startup_sequence
        .iter()
        .map(|s| match s {
            Step::Task {
                desc,
                plugin,
                params,
            } => format!("task {desc:?} {plugin:?} {params:?}"),
            Step::Command(argv) => format!("command {argv:?}"),
            Step::Closure(_) => "closure".into(),
        })
        .collect()
}

fn errors(text: &str) -> Vec<Diagnostic> {
    let loaded = load(text);
    assert!(loaded.units.is_empty());
    loaded
        .diagnostics
        .into_iter()
        .filter(|d| d.is_error())
        .collect()
}

const TEXT: &str = r#"`
    # Sparrow6's spelling
    begin:
      task-run "check storage", "storage-mount", %( path => "/data", min-free => "10G" )
      task-run "wait for db", "tcp-check", %(
          host => "127.0.0.1", port => 5432, timeout => 30,
          ratio => 0.5, tls => False, :verbose, tags => [ "a", "b" ], extra => %( n => -1 ),
      );
      task-run 'warm cache', 'cache-warmer'
    end:
`"#;

const LIST: &str = r#"[
    ["check storage", "storage-mount", #{ path: "/data", "min-free": "10G" }],
    ["wait for db", "tcp-check", #{
        host: "127.0.0.1", port: 5432, timeout: 30,
        ratio: 0.5, tls: false, verbose: true, tags: ["a", "b"], extra: #{ n: -1 },
    }],
    ["warm cache", "cache-warmer"],
]"#;

#[test]
fn the_text_form_gives_the_same_steps_as_the_list_form() {
    let from_text = steps(&with_sequence(TEXT));
    assert_eq!(from_text.len(), 3);
    assert_eq!(from_text, steps(&with_sequence(LIST)));
    assert!(
        from_text[0].contains(r#""min-free": "10G""#),
        "{from_text:?}"
    );
}

#[test]
fn text_blocks_in_a_list_expand_in_place() {
    let mixed = format!(
        "[\"/usr/bin/prepare --fast\", {TEXT}, [\"last\", \"bash\", #{{ command: \"true\" }}], || true, \"begin:\\nend:\"]"
    );
    let got = steps(&with_sequence(&mixed));
    let list = steps(&with_sequence(LIST));
    assert_eq!(got.len(), 6, "{got:#?}");
    assert_eq!(got[0], r#"command ["/usr/bin/prepare", "--fast"]"#);
    assert_eq!(got[1..4], list[..]);
    assert!(got[4].starts_with(r#"task "last" "bash""#));
    assert_eq!(got[5], "closure");
}

#[test]
fn a_broken_block_names_the_definition_and_the_line_in_the_block() {
    let text = with_sequence(
        "`begin:\n  task-run \"a\", \"b\"\n  task-run \"c\", \"d\", %( x => 1 y => 2 )\nend:`",
    );
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    let d = &errs[0];
    // At the `startup_sequence` key (line 3, column 23 of the definition).
    assert_eq!(
        d.to_string().split(": error").next(),
        Some("/defs/app.sparrow:3:23")
    );
    assert_eq!(
        d.message,
        "startup_sequence text, line 3, column 32: expected \",\" or \")\" after the value, found \"y\""
    );
    assert!(d.help.as_deref().unwrap_or("").contains("begin:"), "{d}");

    // An item names its index.
    let errs = errors(&with_sequence(
        "[\"/bin/true\", \"begin:\\n task-run \\\"a\\\", \\\"b\\\"\"]",
    ));
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!((errs[0].line, errs[0].col), (3, 23));
    assert!(
        errs[0]
            .message
            .starts_with("startup_sequence[1] text, line 2, column 19: the block is not closed"),
        "{}",
        errs[0]
    );

    // Raku's interpolation is refused (Rhai's own `${..}` in a backtick string is
    // evaluated before the block is read).
    let errs = errors(&with_sequence(
        "`begin:\n task-run \"a\", \"b\", %( home => \"$HOME\" )\nend:`",
    ));
    assert!(errs[0].message.contains("line 2, column 33"), "{}", errs[0]);
    assert!(
        errs[0].message.contains("would interpolate in Raku"),
        "{}",
        errs[0]
    );
}

#[test]
fn other_strings_and_values_say_what_a_sequence_is() {
    let errs = errors(&with_sequence("\"/usr/bin/warm-cache\""));
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!((errs[0].line, errs[0].col), (3, 23));
    assert!(
        errs[0]
            .message
            .contains("must be Sparrow6's text form, starting with `begin:`"),
        "{}",
        errs[0]
    );
    assert_eq!(
        errs[0].help.as_deref(),
        Some("for one command write a list: [\"/usr/bin/warm-cache\"]")
    );
    let errs = errors(&with_sequence("#{ a: 1 }"));
    assert!(
        errs[0].message.starts_with(
            "expected an array of steps [..] or a text block starting with `begin:`, found a map"
        ),
        "{}",
        errs[0]
    );
    // A list item that is not a block stays a command.
    assert_eq!(
        steps(&with_sequence("[\"  /usr/bin/warm-cache begin:\"]")),
        [r#"command ["/usr/bin/warm-cache", "begin:"]"#]
    );
}
