//! Sparrow6's text form of a startup sequence, parsed into task steps.
//!
//! ```text
//! begin:
//!   task-run "check storage", "storage-mount", %( path => "/data", min-free => "10G" )
//!   task-run "warm cache", "cache-warmer"
//! end:
//! ```
//!
//! Only `task-run` lines are accepted between `begin:` and `end:`; their
//! parameters are Raku values (strings, numbers, `True`/`False`, `%( )`
//! hashes, `[ ]`/`( )` lists and `:name<value>` pairs), read without
//! evaluating anything: a `$` or `{` in a double-quoted string, which Raku
//! would interpolate, is an error. Keys are kept exactly as written, since
//! Sparrow6 plugins read their parameters by their own names. Pure: no I/O.

use std::fmt;

use rhai::Map;

/// How deeply `%( )` hashes, lists and pairs may nest, the parameter hash
/// itself being the first level.
pub const MAX_DEPTH: usize = 32;

/// One `task-run "desc", "plugin", %( .. )` line.
#[derive(Debug, Clone)]
pub struct TextStep {
    /// The description.
    pub desc: String,
    /// The plugin.
    pub plugin: String,
    /// Its parameters (empty without a hash).
    pub params: Map,
}

/// Why a text block could not be read, and where (within the text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextError {
    /// 1-based line within the text.
    pub line: usize,
    /// 1-based column, in characters.
    pub col: usize,
    /// What was expected, and what was found.
    pub message: String,
}

impl fmt::Display for TextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.col, self.message
        )
    }
}

impl std::error::Error for TextError {}

/// Whether `text` is meant as a text block: its first line other than blank
/// and `#` comment lines starts with `begin:`.
pub fn is_text_form(text: &str) -> bool {
    let mut rest = text;
    loop {
        rest = rest.trim_start();
        if !rest.starts_with('#') {
            return rest.starts_with("begin:");
        }
        rest = rest.split_once('\n').map_or("", |(_, r)| r);
    }
}

/// Reads a whole text block: `begin:`, `task-run` lines, `end:`.
pub fn parse(text: &str) -> Result<Vec<TextStep>, TextError> {
    let mut c = Cursor {
        src: text,
        pos: 0,
        line: 1,
        col: 1,
    };
    c.space();
    if !c.eat("begin:") {
        return Err(c.err(format!(
            "expected `begin:` to open the block, found {}",
            c.found()
        )));
    }
    c.end_of_line("after `begin:`")?;
    let mut steps = Vec::new();
    loop {
        c.space();
        if c.peek().is_none() {
            return Err(c.err(
                "the block is not closed: expected a line `end:` after the last task-run line"
                    .into(),
            ));
        }
        if c.eat("end:") {
            c.end_of_line("after `end:`")?;
            c.space();
            if c.peek().is_some() {
                return Err(c.err(format!(
                    "nothing but blank lines and comments may follow `end:`, found {} \
                     (put every task-run line between `begin:` and `end:`)",
                    c.found()
                )));
            }
            return Ok(steps);
        }
        let word = c.word();
        if word != "task-run" {
            return Err(c.err(format!(
                "expected a task-run line or `end:`, found {} \
                 (only task-run \"desc\", \"plugin\", %( .. ) lines are accepted here)",
                c.found()
            )));
        }
        c.advance(word.len());
        steps.push(c.task()?);
    }
}

struct Cursor<'a> {
    src: &'a str,
    pos: usize,
    line: usize,
    col: usize,
}

fn ident_start(c: char) -> bool {
    c.is_alphabetic() || c == '_'
}

fn ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

impl Cursor<'_> {
    fn rest(&self) -> &str {
        &self.src[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        if c == '\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        Some(c)
    }

    /// Skips `bytes` bytes of one line.
    fn advance(&mut self, bytes: usize) {
        let end = self.pos + bytes;
        while self.pos < end && self.bump().is_some() {}
    }

    fn eat(&mut self, s: &str) -> bool {
        let yes = self.rest().starts_with(s);
        if yes {
            self.advance(s.len());
        }
        yes
    }

    fn here(&self) -> (usize, usize) {
        (self.line, self.col)
    }

    fn err(&self, message: String) -> TextError {
        self.err_at(self.here(), message)
    }

    fn err_at(&self, (line, col): (usize, usize), message: String) -> TextError {
        TextError { line, col, message }
    }

    /// An identifier with Raku's dashes (`min-free`), or "".
    fn word(&self) -> &str {
        let rest = self.rest();
        let mut end = 0;
        let mut chars = rest.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            let ok = if i == 0 {
                ident_start(c)
            } else if c == '-' {
                chars.peek().is_some_and(|(_, n)| ident_start(*n))
            } else {
                ident_char(c)
            };
            if !ok {
                break;
            }
            end = i + c.len_utf8();
        }
        &rest[..end]
    }

    /// What is at the cursor, for messages.
    fn found(&self) -> String {
        let rest = self.rest();
        match self.peek() {
            None => "the end of the text".into(),
            Some('\n') => "the end of the line".into(),
            Some(c) if ident_char(c) || c == '-' => {
                let token: String = rest
                    .chars()
                    .take_while(|c| ident_char(*c) || matches!(c, '-' | '.' | ':'))
                    .take(24)
                    .collect();
                format!("{token:?}")
            }
            Some(c) => format!("{:?}", c.to_string()),
        }
    }

    /// Skips spaces and a `#` comment, not the end of the line.
    fn blank(&mut self) {
        while let Some(c) = self.peek() {
            match c {
                ' ' | '\t' | '\r' => {
                    self.bump();
                }
                '#' => {
                    let len = self.rest().find('\n').unwrap_or(self.rest().len());
                    self.col += self.rest()[..len].chars().count();
                    self.pos += len;
                }
                _ => break,
            }
        }
    }

    /// Skips spaces, comments and line ends.
    fn space(&mut self) {
        loop {
            self.blank();
            if self.peek() != Some('\n') {
                break;
            }
            self.bump();
        }
    }

    fn end_of_line(&mut self, after: &str) -> Result<(), TextError> {
        self.blank();
        match self.peek() {
            None => Ok(()),
            Some('\n') => {
                self.bump();
                Ok(())
            }
            Some(_) => Err(self.err(format!(
                "expected the end of the line {after}, found {}",
                self.found()
            ))),
        }
    }

    /// The rest of a `task-run` line (the cursor is after `task-run`).
    fn task(&mut self) -> Result<TextStep, TextError> {
        if !matches!(self.peek(), Some(' ' | '\t')) {
            return Err(self.err(format!(
                "expected a space and the description after task-run, found {} \
                 (write task-run \"desc\", \"plugin\", %( .. ) without parentheses)",
                self.found()
            )));
        }
        self.blank();
        let desc = self.string_arg("the description")?;
        self.blank();
        if !self.eat(",") {
            return Err(self.err(format!(
                "expected \",\" and the plugin name after the description, found {}",
                self.found()
            )));
        }
        self.space();
        let plugin = self.string_arg("the plugin name")?;
        self.blank();
        let mut params = Map::new();
        if self.eat(",") {
            self.space();
            let at = self.here();
            if !self.eat("%(") {
                return Err(self.err(format!(
                    "expected a parameter hash %( name => value, .. ) after the comma, found {}",
                    self.found()
                )));
            }
            params = self.hash(at, 1)?;
            self.blank();
        } else if self.peek().is_some_and(|c| c != '\n' && c != ';') {
            return Err(self.err(format!(
                "expected \",\" and a parameter hash %( .. ), or the end of the line, \
                 after the plugin name, found {}",
                self.found()
            )));
        }
        self.eat(";");
        self.end_of_line("after the task-run step")?;
        Ok(TextStep {
            desc,
            plugin,
            params,
        })
    }

    fn string_arg(&mut self, what: &str) -> Result<String, TextError> {
        match self.peek() {
            Some('"' | '\'') => self.string(),
            _ => Err(self.err(format!(
                "expected {what} as a quoted string, found {}",
                self.found()
            ))),
        }
    }
}

mod values;

#[cfg(test)]
mod tests;
