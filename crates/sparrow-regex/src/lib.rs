//! Raku regexes, translated to the `regex` crate's syntax.
//!
//! Sparrow6's task checks (`regexp: ...` lines) and Raku definitions
//! (`body => /'ok'/`) are written in Raku's regex language. This crate
//! translates the part of it that such patterns use into an equivalent
//! Rust regex, and refuses the rest with an error that names the construct
//! and its column; nothing is guessed.
//!
//! Supported: whitespace and `#` comments are insignificant; quoted
//! literals (`'...'`, `"..."`); letters, digits and `_` as literals; `.`;
//! anchors `^ $ ^^ $$`, word boundaries `<< >> « » <wb> <ww>`; backslash
//! classes `\d \w \s \h \v \n \t \r \e \f \N` and their negations, `\x[..]`;
//! character classes `<[a..z]>`, `<-[...]>`, named classes (`<alpha>`,
//! `<digit>`, `<alnum>`, `<upper>`, `<lower>`, `<space>`, `<punct>`,
//! `<xdigit>`, `<cntrl>`, `<ws>`, `<ident>`) and their `+`/`-` combinations;
//! quantifiers `* + ?` (frugal with `?`), `** N`, `** N..M`, `** N..*`,
//! `** N^..^M`; `%` and `%%` separators; `|` and `||` alternation; groups
//! `( )` and `[ ]`; named captures `$<name>=`; `:i` / `:ignorecase`.
//!
//! Not supported (an error, with the construct): lookaround (`<?before>`,
//! `<!after>` ...), backreferences (`$0`, `$<x>` in a pattern), embedded
//! code and interpolation (`{ }`, `<{ }>`, `$var`, `<$var>`, `@list`),
//! conjunctions (`&`, `&&`), capture markers `<( )>`, the `~` goal
//! operator, `:sigspace`, `:ratchet` and other adverbs, and any other
//! unquoted punctuation (which Raku itself rejects).
#![deny(missing_docs)]

mod class;
mod quantifier;

use std::fmt::Write;

use quantifier::balanced_group;

/// A pattern that cannot be translated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {col}: {message}")]
pub struct Error {
    /// 1-based column (in characters) where the construct starts.
    pub col: usize,
    /// What is wrong, naming the construct.
    pub message: String,
}

/// Translates a Raku regex (the text between the slashes) into Rust
/// regex syntax.
pub fn translate(raku: &str) -> Result<String, Error> {
    let mut t = Translator {
        s: raku.chars().collect(),
        i: 0,
        captures: 0,
    };
    let out = t.alternation()?;
    t.skip_ws();
    if t.i < t.s.len() {
        return Err(t.err_here(format!("unexpected {:?}", t.s[t.i])));
    }
    Ok(out)
}

/// Translates and compiles a Raku regex.
pub fn compile(raku: &str) -> Result<regex::Regex, Error> {
    let rust = translate(raku)?;
    regex::Regex::new(&rust).map_err(|e| Error {
        col: 1,
        message: format!("the translated pattern {rust:?} is not valid: {e}"),
    })
}

struct Translator {
    s: Vec<char>,
    i: usize,
    /// Capture groups made so far.
    captures: usize,
}

/// Characters with a meaning in Rust regex syntax (escaped in literals).
fn rust_escape(c: char, out: &mut String) {
    if regex_syntax_meta(c) {
        out.push('\\');
    }
    out.push(c);
}

fn regex_syntax_meta(c: char) -> bool {
    matches!(
        c,
        '\\' | '.'
            | '+'
            | '*'
            | '?'
            | '('
            | ')'
            | '|'
            | '['
            | ']'
            | '{'
            | '}'
            | '^'
            | '$'
            | '#'
            | '&'
            | '-'
            | '~'
    )
}

fn literal(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\x{{{:X}}}", c as u32);
            }
            c => rust_escape(c, &mut out),
        }
    }
    out
}

/// One translated piece, and whether a quantifier may follow it directly
/// (a single item) or it needs a group first.
struct Atom {
    text: String,
    single: bool,
    has_capture: bool,
}

impl Atom {
    fn grouped(&self) -> String {
        if self.single {
            self.text.clone()
        } else {
            format!("(?:{})", self.text)
        }
    }
}

impl Translator {
    fn peek(&self) -> Option<char> {
        self.s.get(self.i).copied()
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        self.s.get(self.i + n).copied()
    }

    fn starts_with(&self, text: &str) -> bool {
        text.chars()
            .enumerate()
            .all(|(k, c)| self.s.get(self.i + k) == Some(&c))
    }

    fn err_at(&self, at: usize, message: impl Into<String>) -> Error {
        Error {
            col: at + 1,
            message: message.into(),
        }
    }

    fn err_here(&self, message: impl Into<String>) -> Error {
        self.err_at(self.i, message)
    }

    fn unsupported(&self, at: usize, construct: &str, why: &str) -> Error {
        self.err_at(at, format!("{construct} is not supported: {why}"))
    }

    /// Skips whitespace and `#` comments.
    fn skip_ws(&mut self) {
        while let Some(c) = self.peek() {
            if c.is_whitespace() {
                self.i += 1;
            } else if c == '#' {
                while let Some(c) = self.peek() {
                    self.i += 1;
                    if c == '\n' {
                        break;
                    }
                }
            } else {
                break;
            }
        }
    }

    fn alternation(&mut self) -> Result<String, Error> {
        self.skip_ws();
        // A leading `|` or `||` is allowed (for layout).
        if self.starts_with("||") {
            self.i += 2;
        } else if self.peek() == Some('|') {
            self.i += 1;
        }
        let mut branches = vec![self.sequence()?];
        loop {
            self.skip_ws();
            if self.starts_with("||") {
                self.i += 2;
            } else if self.peek() == Some('|') {
                self.i += 1;
            } else {
                break;
            }
            branches.push(self.sequence()?);
        }
        Ok(branches.join("|"))
    }

    fn at_sequence_end(&self) -> bool {
        matches!(self.peek(), None | Some(')') | Some(']') | Some('|'))
    }

    fn sequence(&mut self) -> Result<String, Error> {
        let mut out = String::new();
        loop {
            self.skip_ws();
            if self.at_sequence_end() {
                return Ok(out);
            }
            if self.peek() == Some('&') {
                return Err(self.unsupported(
                    self.i,
                    "a conjunction (& or &&)",
                    "Rust regexes cannot require two patterns at once",
                ));
            }
            if self.peek() == Some(':') {
                let after_atom = !out.is_empty();
                out.push_str(&self.adverb(after_atom)?);
                continue;
            }
            let start = self.i;
            let atom = self.atom()?;
            let quantified = self.quantifier(start, atom)?;
            out.push_str(&quantified);
        }
    }

    /// `:i`, `:ignorecase`, `:!i`: case sensitivity from here on.
    /// `:i` and friends, or (after an atom) `:`, `::`, `:::`, Raku's
    /// backtracking controls.
    fn adverb(&mut self, after_atom: bool) -> Result<String, Error> {
        let start = self.i;
        self.i += 1;
        if after_atom && !matches!(self.peek(), Some(c) if c.is_alphanumeric() || c == '!') {
            // "Do not backtrack into what precedes". The regex crate has no
            // possessive matching, so the control is dropped: after a literal
            // (Sparrow6's own examples write `within: Colors:`) that changes
            // nothing; a pattern that relies on it to fail may match here.
            while self.peek() == Some(':') {
                self.i += 1;
            }
            return Ok(String::new());
        }
        let negated = self.peek() == Some('!');
        if negated {
            self.i += 1;
        }
        let mut name = String::new();
        while let Some(c) = self.peek().filter(|c| c.is_alphanumeric() || *c == '_') {
            name.push(c);
            self.i += 1;
        }
        match name.as_str() {
            "i" | "ignorecase" => Ok(if negated { "(?-i)" } else { "(?i)" }.into()),
            "" => Err(self.err_at(start, "a lone ':' (quote it to match a colon: ':')")),
            other => Err(self.unsupported(
                start,
                &format!("the adverb :{other}"),
                "only :i (:ignorecase) is translated",
            )),
        }
    }

    fn atom(&mut self) -> Result<Atom, Error> {
        let before = self.captures;
        let mut atom = self.atom_inner()?;
        atom.has_capture = self.captures > before;
        Ok(atom)
    }

    fn atom_inner(&mut self) -> Result<Atom, Error> {
        let start = self.i;
        let c = self.peek().expect("not at the end");
        let single = |text: String| {
            Ok(Atom {
                text,
                single: true,
                has_capture: false,
            })
        };
        match c {
            '\'' | '"' | '‘' | '“' | '「' => {
                let text = self.quoted()?;
                let n = text.chars().count();
                Ok(Atom {
                    text: literal(&text),
                    single: n == 1,
                    has_capture: false,
                })
            }
            '(' => {
                // Perl's (?=...), (?!...), (?<=...), (?:...), (?i): common
                // habits; Raku writes them differently.
                if self.peek_at(1) == Some('?') {
                    return Err(self.unsupported(
                        start,
                        "Perl's (?...) group syntax",
                        "lookahead and lookbehind have no Rust equivalent; a group without a capture is [ ... ], ignoring case is :i",
                    ));
                }
                self.i += 1;
                self.captures += 1;
                let inner = self.alternation()?;
                self.expect(')', start, "(")?;
                Ok(Atom {
                    text: format!("({inner})"),
                    single: true,
                    has_capture: true,
                })
            }
            '[' => {
                self.i += 1;
                let inner = self.alternation()?;
                self.expect(']', start, "[")?;
                Ok(Atom {
                    text: format!("(?:{inner})"),
                    single: true,
                    has_capture: false,
                })
            }
            '.' => {
                self.i += 1;
                single("(?s:.)".into())
            }
            '^' => {
                self.i += 1;
                if self.peek() == Some('^') {
                    self.i += 1;
                    return single("(?m:^)".into());
                }
                single("^".into())
            }
            '$' => self.dollar(),
            '\\' => self.backslash(),
            '<' => self.angle(),
            '«' => {
                self.i += 1;
                single("\\b{start}".into())
            }
            '»' => {
                self.i += 1;
                single("\\b{end}".into())
            }
            '>' if self.peek_at(1) == Some('>') => {
                self.i += 2;
                single("\\b{end}".into())
            }
            '{' => {
                let inner: String = self.s[self.i + 1..]
                    .iter()
                    .take_while(|c| **c != '}')
                    .collect();
                if !inner.is_empty() && inner.chars().all(|c| c.is_ascii_digit() || c == ',') {
                    let raku = inner.replace(',', "..");
                    return Err(self.err_at(
                        start,
                        format!("{{{inner}}} is Perl's repetition; in Raku write ** {raku}"),
                    ));
                }
                Err(self.unsupported(start, "a code block { }", "patterns cannot run code"))
            }
            '@' => Err(self.unsupported(
                start,
                "an array interpolation (@...)",
                "quote the text to match",
            )),
            '~' => Err(self.unsupported(start, "the ~ goal operator", "write the brackets out")),
            '*' | '+' | '?' => {
                Err(self.err_here(format!("quantifier {c:?} with nothing before it")))
            }
            c if c.is_alphanumeric() || c == '_' => {
                self.i += 1;
                single(literal(&c.to_string()))
            }
            c => Err(self.err_here(format!(
                "unrecognized regex metacharacter {c:?} (must be quoted to match literally: '{c}')"
            ))),
        }
    }

    fn expect(&mut self, close: char, open_at: usize, open: &str) -> Result<(), Error> {
        self.skip_ws();
        if self.peek() == Some(close) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.err_at(open_at, format!("{open} is not closed with {close}")))
        }
    }

    /// `'...'` or `"..."` (and the typographic quotes Raku accepts).
    fn quoted(&mut self) -> Result<String, Error> {
        let start = self.i;
        let open = self.s[self.i];
        let close = match open {
            '‘' => '’',
            '“' => '”',
            '「' => '」',
            c => c,
        };
        self.i += 1;
        let double = open == '"' || open == '“';
        let mut text = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(self.err_at(
                    start,
                    format!("the quoted text starting with {open} is not closed"),
                ));
            };
            self.i += 1;
            if c == close {
                return Ok(text);
            }
            if double && c == '$' {
                return Err(self.unsupported(
                    self.i - 1,
                    "interpolation of a variable in \"...\"",
                    "use single quotes, or escape the $ as \\$",
                ));
            }
            if double && (c == '{') {
                return Err(self.unsupported(
                    self.i - 1,
                    "a code block in \"...\"",
                    "use single quotes",
                ));
            }
            if c == '\\' && open != '「' {
                let Some(n) = self.peek() else {
                    return Err(self.err_at(start, "the quoted text ends in a backslash"));
                };
                self.i += 1;
                if double {
                    match n {
                        'n' => text.push('\n'),
                        't' => text.push('\t'),
                        'r' => text.push('\r'),
                        'e' => text.push('\x1b'),
                        '0' => text.push('\0'),
                        other => text.push(other),
                    }
                } else if n == close || n == '\\' {
                    text.push(n);
                } else {
                    text.push('\\');
                    text.push(n);
                }
                continue;
            }
            text.push(c);
        }
    }

    fn dollar(&mut self) -> Result<Atom, Error> {
        let start = self.i;
        self.i += 1;
        match self.peek() {
            Some('$') => {
                self.i += 1;
                Ok(Atom {
                    text: "(?m:$)".into(),
                    single: true,
                    has_capture: false,
                })
            }
            Some('<') => {
                // $<name>= ...: a named capture.
                self.i += 1;
                let mut name = String::new();
                while let Some(c) = self.peek().filter(|c| *c != '>') {
                    name.push(c);
                    self.i += 1;
                }
                if self.peek() != Some('>') {
                    return Err(self.err_at(start, "$<name is not closed with >"));
                }
                self.i += 1;
                self.skip_ws();
                if self.peek() != Some('=') {
                    return Err(self.unsupported(
                        start,
                        &format!("the backreference $<{name}>"),
                        "Rust regexes have no backreferences",
                    ));
                }
                self.i += 1;
                if name.is_empty()
                    || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    || name.starts_with(|c: char| c.is_ascii_digit())
                {
                    return Err(self.err_at(
                        start,
                        format!("capture name {name:?} must be letters, digits and _"),
                    ));
                }
                self.skip_ws();
                if self.at_sequence_end() {
                    return Err(self.err_at(start, format!("$<{name}>= captures nothing")));
                }
                let at = self.i;
                self.captures += 1;
                let inner = self.atom()?;
                let inner = self.quantifier(at, inner)?;
                // A capture group of its own: name that one.
                let text = match inner.strip_prefix('(').filter(|_| {
                    inner.ends_with(')') && !inner.starts_with("(?") && balanced_group(&inner)
                }) {
                    Some(rest) => format!("(?P<{name}>{}", rest),
                    None => format!("(?P<{name}>{inner})"),
                };
                Ok(Atom {
                    text,
                    single: true,
                    has_capture: true,
                })
            }
            Some(c) if c.is_ascii_digit() => Err(self.unsupported(
                start,
                &format!("the backreference ${c}"),
                "Rust regexes have no backreferences",
            )),
            Some(c) if c.is_alphabetic() || c == '_' || c == '!' || c == '*' || c == '/' => {
                Err(self.unsupported(
                    start,
                    "variable interpolation ($...)",
                    "quote the text to match",
                ))
            }
            _ => Ok(Atom {
                text: "$".into(),
                single: true,
                has_capture: false,
            }),
        }
    }
}

#[cfg(test)]
mod tests;
