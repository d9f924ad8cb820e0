//! Patterns as Raku reads them: what they match and what they do not
//! (the expectations follow Raku's documented semantics), and the
//! constructs that are refused.

use super::*;

#[track_caller]
fn check(raku: &str, yes: &[&str], no: &[&str]) {
    let re = compile(raku).unwrap_or_else(|e| panic!("{raku:?}: {e}"));
    for s in yes {
        assert!(re.is_match(s), "{raku:?} ({re}) should match {s:?}");
    }
    for s in no {
        assert!(!re.is_match(s), "{raku:?} ({re}) should not match {s:?}");
    }
}

#[track_caller]
fn refused(raku: &str, naming: &str) {
    let e = translate(raku).expect_err(raku);
    assert!(
        e.message.contains(naming),
        "{raku:?}: {} (expected it to name {naming:?})",
        e.message
    );
}

#[test]
fn whitespace_is_insignificant_and_literals_are_quoted() {
    check("'hello world'", &["say hello world"], &["hello  world"]);
    check("h e l l o", &["hello"], &["h e l l o"]);
    check("\"a.b\"", &["a.b"], &["axb"]);
    check("'it\\'s'", &["it's"], &["its"]);
    check("\"tab\\there\"", &["tab\there"], &["tab here"]);
    check("foo # a comment\n bar", &["foobar"], &["foo bar"]);
    check("'(x)' '[y]' '+*?'", &["(x)[y]+*?"], &["xy"]);
}

#[test]
fn anchors_and_boundaries() {
    check("^ 'ok' $", &["ok"], &["not ok", "ok!"]);
    check("^^ 'b'", &["a\nb"], &["ab"]);
    check("'a' $$", &["a\nb"], &["ab"]);
    check("<< 'cat' >>", &["a cat here"], &["concatenate"]);
    check("« 'cat' »", &["cat"], &["cats"]);
    check("<wb> 'x' <wb>", &["a x b"], &["axb"]);
}

#[test]
fn backslash_classes() {
    check("^ \\d+ $", &["123", "٣"], &["12a"]);
    check("^ \\w+ $", &["foo_bar9"], &["foo-bar"]);
    check("'a' \\s 'b'", &["a b", "a\tb"], &["ab"]);
    check("'a' \\h 'b'", &["a b"], &["a\nb"]);
    check("^ \\N+ $", &["abc"], &["a\nb"]);
    check("'a' \\D 'b'", &["axb"], &["a1b"]);
    check("\\x41", &["A"], &["a"]);
    check("\\x[263A]", &["☺"], &["x"]);
    check("\\. \\- \\'", &[".-'"], &["x-'"]);
    check(". 'z'", &["\nz", "az"], &["z"]);
}

#[test]
fn character_classes() {
    check("^ <[a..f 0..9]>+ $", &["dead00"], &["deadbeefg"]);
    check("^ <-[aeiou]>+ $", &["rhythm"], &["vowel"]);
    check("^ <[ \\- _ ]>+ $", &["-_-"], &["a"]);
    check("^ <alpha>+ $", &["foo_Bar", "Ärger"], &["foo1"]);
    check("^ <digit>+ $", &["42"], &["4x"]);
    check("^ <alnum>+ $", &["a1_"], &["a-1"]);
    check("^ <upper> <lower>+ $", &["Hello"], &["hello"]);
    check("^ <xdigit>+ $", &["0aF"], &["0g"]);
    check("^ <space>+ $", &[" \t"], &["x"]);
    check("^ <punct> $", &["!"], &["a"]);
    check("^ <alpha + [\\-]>+ $", &["kebab-case"], &["kebab case"]);
    check("^ <[a..z] - [aeiou]>+ $", &["rhythm"], &["rhyme"]);
    check("^ <ident> $", &["_foo1"], &["1foo"]);
    check("'a' <ws> 'b'", &["ab", "a  b"], &[]);
}

#[test]
fn quantifiers() {
    check("^ 'a' ** 3 $", &["aaa"], &["aa", "aaaa"]);
    check("^ 'a' ** 2..3 $", &["aa", "aaa"], &["a", "aaaa"]);
    check("^ 'a' ** 2..* $", &["aa", "aaaaa"], &["a"]);
    check("^ 'a' ** 1^..^4 $", &["aa", "aaa"], &["a", "aaaa"]);
    check("^ \\d ** 2 ':' \\d ** 2 $", &["12:30"], &["1:30"]);
    // A bare `:` after an atom is a backtracking control, not a colon.
    check("Colors:", &["Colors red", "Colors: red"], &["colors"]);
    check("a :: b", &["ab"], &["a:b"]);
    check("^ 'ab' + $", &["abab"], &["aba"]);
    check("^ 'x'? 'y' $", &["y", "xy"], &["xxy"]);
    check("^ [ 'ab' | 'cd' ]* $", &["", "abcdab"], &["ac"]);
    let lazy = compile("'<' .+? '>'").unwrap();
    assert_eq!(lazy.find("<a><b>").unwrap().as_str(), "<a>");
    let greedy = compile("'<' .+ '>'").unwrap();
    assert_eq!(greedy.find("<a><b>").unwrap().as_str(), "<a><b>");
}

#[test]
fn separators() {
    check("^ [\\d+]+ % ',' $", &["1,22,333"], &["1,,2", "1,"]);
    check("^ [\\d+]+ %% ',' $", &["1,22,", "1"], &["1,,"]);
    check("^ \\d+ % ',' $", &["1,2,3"], &["12,3"]);
    check("^ [ \\w+ ]* % ';' $", &["", "a;b"], &["a;"]);
}

#[test]
fn alternation_groups_and_captures() {
    check("^ [ 'yes' || 'no' ] $", &["yes", "no"], &["maybe"]);
    check("^ [ | 'a' | 'b' ] $", &["a", "b"], &["c"]);
    let re = compile("(\\d+) '-' (\\d+)").unwrap();
    let c = re.captures("10-20").unwrap();
    assert_eq!((&c[1], &c[2]), ("10", "20"));
    let re = compile("$<year>=[\\d ** 4] '-' $<month>=(\\d ** 2)").unwrap();
    let c = re.captures("2024-06").unwrap();
    assert_eq!((&c["year"], &c["month"]), ("2024", "06"));
    // Capture numbering is left to right, as in Raku ($0, $1).
    let re = compile("('a') [ ('b') ] ('c')").unwrap();
    let c = re.captures("abc").unwrap();
    assert_eq!((&c[1], &c[2], &c[3]), ("a", "b", "c"));
}

#[test]
fn case_insensitivity() {
    check(":i 'hello'", &["HeLLo"], &["help"]);
    check("'a' :i 'b'", &["aB"], &["AB"]);
    check(":ignorecase ^ 'ok' $", &["OK"], &["OKAY"]);
}

#[test]
fn what_cannot_be_translated_is_refused_by_name() {
    refused("<?before 'x'>", "lookahead or lookbehind");
    // Perl habits get a Raku answer.
    refused("\\d+(?=x)", "Perl's (?...) group syntax");
    refused("\\d{2}", "in Raku write ** 2");
    refused("\\d{2,4}", "in Raku write ** 2..4");
    refused("(\\d)\\1", "the backreference \\1");
    refused("<!after 'x'>", "lookahead or lookbehind");
    refused("('a') $0", "backreference $0");
    refused("$<x>", "backreference $<x>");
    refused("'a' { say 1 }", "code block");
    refused("$foo", "variable interpolation");
    refused("\"a$foo\"", "interpolation of a variable");
    refused("<{ 1 }>", "cannot interpolate");
    refused("'a' & 'b'", "conjunction");
    refused("'a' <( 'b' )>", "capture marker");
    refused("'(' ~ ')' \\d+", "~ goal operator");
    refused(":sigspace 'a'", "adverb :sigspace");
    refused("'a' - 'b'", "unrecognized regex metacharacter '-'");
    refused("a, b", "unrecognized regex metacharacter ','");
    refused("<foo>", "<foo>");
    refused("\\d+: 'x'", "ratchet");
    refused("** 3", "nothing before it");
    refused("^+", "matches no characters");
    refused("'a' ** 3..1", "backwards");
    refused("<[z..a]>", "backwards");
    refused("'open", "not closed");
    refused("( 'a'", "not closed");
}

#[test]
fn errors_point_at_the_construct() {
    let e = translate("'ok' <?before x>").unwrap_err();
    assert_eq!(e.col, 6);
    let e = translate("ab cd @x").unwrap_err();
    assert_eq!(e.col, 7);
}

proptest::proptest! {
    /// Any text, quoted, matches itself and only contains itself.
    #[test]
    fn quoted_text_matches_itself(s in "[^'\\\\]{1,20}") {
        let re = compile(&format!("^ '{s}' $")).unwrap();
        proptest::prop_assert!(re.is_match(&s));
        let other = format!("{s}x");
        proptest::prop_assert!(!re.is_match(&other));
    }

    /// Translation never panics, and what it returns always compiles.
    #[test]
    fn translation_is_total(s in "\\PC{0,30}") {
        if let Ok(rust) = translate(&s) {
            proptest::prop_assert!(regex::Regex::new(&rust).is_ok(), "{s:?} -> {rust:?}");
        }
    }
}
