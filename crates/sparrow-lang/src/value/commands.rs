//! Readers of runtime values that are commands, HTTP header lines and
//! regular expressions.

use rhai::Dynamic;

use super::{array, text, Issue};

/// A command as an argv: a string is split with systemd's quoting rules.
pub fn command_words(v: &Dynamic) -> Result<Vec<String>, Issue> {
    let words = match array(v) {
        Some(items) => items
            .iter()
            .map(|w| text(w).map(|s| s.text))
            .collect::<Result<Vec<_>, _>>()?,
        None => {
            let s = text(v)?.text;
            sparrow_unit::parse::split_words(&s).map_err(|e| Issue::new(e.to_string()))?
        }
    };
    if words.is_empty() || words[0].is_empty() {
        return Err(Issue::new("the command is empty"));
    }
    Ok(words)
}

/// `"Name: value"` split into its name and value, when the name is an HTTP
/// token and neither has a control character.
pub fn header(line: &str) -> Option<(&str, &str)> {
    let (name, value) = line.split_once(':')?;
    let value = value.trim();
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    (!name.is_empty() && name.chars().all(token) && !value.chars().any(char::is_control))
        .then_some((name, value))
}

/// A command whose program is an absolute path (runtime commands run
/// without a shell or `PATH`).
pub fn absolute_command(v: &Dynamic) -> Result<Vec<String>, Issue> {
    let words = command_words(v)?;
    if !words[0].starts_with('/') {
        return Err(
            Issue::new(format!("{:?} is not an absolute path", words[0]))
                .help("commands run without a shell or PATH: write /usr/bin/..."),
        );
    }
    Ok(words)
}

/// A regular expression (Rust's syntax), checked.
pub fn regex_text(v: &Dynamic) -> Result<String, Issue> {
    let s = text(v)?.text;
    match regex::RegexBuilder::new(&s).size_limit(1 << 20).build() {
        Ok(_) => Ok(s),
        Err(e) => Err(Issue::new(format!("{s:?} is not a valid regex: {e}"))),
    }
}

/// An HTTP header line `"Name: value"`, checked.
pub fn header_text(v: &Dynamic) -> Result<String, Issue> {
    let s = text(v)?.text;
    if header(&s).is_some() {
        return Ok(s);
    }
    Err(Issue::new(format!("{s:?} is not a header line"))
        .help("write \"Name: value\", e.g. \"Authorization: Bearer TOKEN\""))
}
