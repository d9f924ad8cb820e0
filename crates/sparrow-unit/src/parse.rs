//! Reading unit syntax with systemd's rules, as an independent check on the
//! renderer and for tools that compare units.
//!
//! This follows systemd 252's `config_parse()` for lines (comments, sections,
//! continuation lines ending in an unescaped backslash, surrounding whitespace
//! stripped) and `extract_first_word()` with `EXTRACT_UNQUOTE |
//! EXTRACT_CUNESCAPE` for command lines and `Environment=`. It does not know
//! which directives exist; that is `systemd-analyze verify`'s job.

use thiserror::Error;

/// A unit as systemd would read it: `(section, key, value)` in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedUnit {
    /// Every assignment, in order.
    pub entries: Vec<(String, String, String)>,
    /// Section names in order of first appearance.
    pub sections: Vec<String>,
}

/// A line systemd would reject.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    /// An assignment before any `[Section]` header.
    #[error("line {0}: assignment outside of a section")]
    NoSection(usize),
    /// A line that is neither a comment, a section header nor `Key=Value`.
    #[error("line {0}: missing '='")]
    NoEquals(usize),
    /// A `[` without its `]`.
    #[error("line {0}: invalid section header")]
    BadHeader(usize),
    /// Unbalanced quotes or a dangling backslash in a command line.
    #[error("unbalanced quoting or escape in {0:?}")]
    BadQuoting(String),
}

impl ParsedUnit {
    /// Every value of `key` in `section`, in order.
    pub fn get(&self, section: &str, key: &str) -> Vec<&str> {
        self.entries
            .iter()
            .filter(|(s, k, _)| s == section && k == key)
            .map(|(_, _, v)| v.as_str())
            .collect()
    }

    /// The last value of `key` in `section` (what a single-valued directive ends as).
    pub fn last(&self, section: &str, key: &str) -> Option<&str> {
        self.get(section, key).pop()
    }
}

/// Whether the line ends in a backslash that is not itself escaped.
fn ends_escaped(line: &str) -> bool {
    let mut escaped = false;
    for c in line.chars() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        }
    }
    escaped
}

/// Parses a unit file's text.
pub fn parse(text: &str) -> Result<ParsedUnit, ParseError> {
    let mut unit = ParsedUnit::default();
    let mut section: Option<String> = None;
    let mut pending: Option<(usize, String)> = None;
    for (i, raw) in text.split('\n').enumerate() {
        let lineno = i + 1;
        let trimmed = raw.trim_matches(is_ws);
        if pending.is_some() && (trimmed.starts_with('#') || trimmed.starts_with(';')) {
            // systemd skips comment lines inside a continued line.
            continue;
        }
        let (start, mut line) = match pending.take() {
            Some((start, mut acc)) => {
                acc.push_str(raw);
                (start, acc)
            }
            None => (lineno, raw.to_string()),
        };
        if ends_escaped(&line) {
            line.pop();
            line.push(' ');
            pending = Some((start, line));
            continue;
        }
        let l = line.trim_matches(is_ws);
        if l.is_empty() || l.starts_with('#') || l.starts_with(';') {
            continue;
        }
        if let Some(rest) = l.strip_prefix('[') {
            let name = rest.strip_suffix(']').ok_or(ParseError::BadHeader(start))?;
            if name.is_empty() || name.contains(['[', ']']) {
                return Err(ParseError::BadHeader(start));
            }
            if !unit.sections.iter().any(|s| s == name) {
                unit.sections.push(name.to_string());
            }
            section = Some(name.to_string());
            continue;
        }
        let (k, v) = l.split_once('=').ok_or(ParseError::NoEquals(start))?;
        let s = section.clone().ok_or(ParseError::NoSection(start))?;
        unit.entries.push((
            s,
            k.trim_matches(is_ws).to_string(),
            v.trim_matches(is_ws).to_string(),
        ));
    }
    if let Some((start, line)) = pending {
        // A continuation at end of file still ends the line.
        let l = line.trim_matches(is_ws);
        if !l.is_empty() {
            let (k, v) = l.split_once('=').ok_or(ParseError::NoEquals(start))?;
            let s = section.ok_or(ParseError::NoSection(start))?;
            unit.entries
                .push((s, k.trim().to_string(), v.trim().to_string()));
        }
    }
    Ok(unit)
}

fn is_ws(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// Replaces `%%` with `%`, leaving other specifiers (`%i`) as they are.
pub fn unescape_specifiers(s: &str) -> String {
    s.replace("%%", "%")
}

/// Splits a value into words as `extract_first_word(UNQUOTE|CUNESCAPE)` does.
pub fn split_words(s: &str) -> Result<Vec<String>, ParseError> {
    let bad = || ParseError::BadQuoting(s.to_string());
    let mut words = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| is_ws(*c)) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(words);
        }
        let mut word = String::new();
        let mut quote: Option<char> = None;
        while let Some(c) = chars.next() {
            match (quote, c) {
                (_, '\\') => {
                    let e = chars.next().ok_or_else(bad)?;
                    word.push(match e {
                        'n' => '\n',
                        't' => '\t',
                        'r' => '\r',
                        's' => ' ',
                        'a' => '\u{7}',
                        'b' => '\u{8}',
                        'f' => '\u{c}',
                        'v' => '\u{b}',
                        '0' => '\0',
                        other => other,
                    });
                }
                (None, '"' | '\'') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                (None, c) if is_ws(c) => break,
                (_, c) => word.push(c),
            }
        }
        if quote.is_some() {
            return Err(bad());
        }
        words.push(word);
    }
}

/// The argv systemd runs for an `ExecStart=`-style value, with `$$` undone.
/// `$VAR` references are left in place, as they depend on the environment.
pub fn exec_argv(value: &str) -> Result<Vec<String>, ParseError> {
    Ok(split_words(&unescape_specifiers(value))?
        .into_iter()
        .map(|w| w.replace("$$", "$"))
        .collect())
}

/// The `NAME=value` assignments of one `Environment=` value.
pub fn environment(value: &str) -> Result<Vec<(String, String)>, ParseError> {
    split_words(value)?
        .into_iter()
        .map(|w| {
            let w = unescape_specifiers(&w);
            w.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| ParseError::BadQuoting(value.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_sections_comments_continuations() {
        let u = parse(
            "# c\n[Unit]\nDescription = hi there \n; other\n[Service]\nExecStart=/bin/a \\\n# skipped\n  b\nX=1\\\\\n",
        )
        .unwrap();
        assert_eq!(u.sections, vec!["Unit", "Service"]);
        assert_eq!(u.get("Unit", "Description"), vec!["hi there"]);
        assert_eq!(u.get("Service", "ExecStart"), vec!["/bin/a    b"]);
        assert_eq!(u.get("Service", "X"), vec!["1\\\\"]);
        assert_eq!(parse("X=1\n"), Err(ParseError::NoSection(1)));
        assert_eq!(parse("[A]\nnonsense\n"), Err(ParseError::NoEquals(2)));
        assert_eq!(parse("[A\n"), Err(ParseError::BadHeader(1)));
    }

    #[test]
    fn words_unquote_and_unescape() {
        assert_eq!(
            split_words("a \"b c\" 'd e' f\\ g").unwrap(),
            vec!["a", "b c", "d e", "f g"]
        );
        assert_eq!(split_words("\"x\\\"y\\\\\"").unwrap(), vec!["x\"y\\"]);
        assert!(split_words("\"open").is_err());
        assert_eq!(
            exec_argv("/bin/echo 100%% $$HOME $X").unwrap(),
            vec!["/bin/echo", "100%", "$HOME", "$X"]
        );
        assert_eq!(
            environment("\"A=b c\" D=e").unwrap(),
            vec![("A".into(), "b c".into()), ("D".into(), "e".into())]
        );
    }
}
