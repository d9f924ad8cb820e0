//! Raku values inside a `%( )` parameter hash: strings, numbers, booleans,
//! hashes, lists and pairs.

use rhai::{Array, Dynamic, Map};

use super::{ident_char, ident_start, Cursor, TextError, MAX_DEPTH};

impl Cursor<'_> {
    /// A double- or single-quoted string (the cursor is at its quote).
    pub(super) fn string(&mut self) -> Result<String, TextError> {
        let open = self.here();
        let quote = self.bump().unwrap_or('"');
        let mut out = String::new();
        loop {
            let at = self.here();
            let Some(c) = self.bump() else {
                return Err(self.err_at(
                    open,
                    format!("this string is not closed: expected a closing {quote}"),
                ));
            };
            match (quote, c) {
                (q, c) if q == c => return Ok(out),
                ('\'', '\\') => match self.peek() {
                    Some(e @ ('\\' | '\'')) => {
                        self.bump();
                        out.push(e);
                    }
                    _ => out.push('\\'),
                },
                ('"', '\\') => match self.bump() {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some('r') => out.push('\r'),
                    Some(e @ ('"' | '\\' | '$' | '{' | '}')) => out.push(e),
                    Some(e) => {
                        return Err(self.err_at(
                            at,
                            format!(
                                "unknown escape \\{e} in a double-quoted string: \
                                 accepted are \\\" \\\\ \\n \\t \\r \\$ \\{{ \\}}"
                            ),
                        ))
                    }
                    None => continue,
                },
                ('"', '$' | '{') => {
                    return Err(self.err_at(
                        at,
                        format!(
                            "{c:?} in a double-quoted string would interpolate in Raku, \
                             which is not supported here: write \\{c}, or use single quotes"
                        ),
                    ))
                }
                (_, c) => out.push(c),
            }
        }
    }

    /// The entries of a `%( )` hash (the cursor is after `%(`, opened at `open`).
    pub(super) fn hash(&mut self, open: (usize, usize), level: usize) -> Result<Map, TextError> {
        let mut map = Map::new();
        loop {
            self.space();
            if self.eat(")") {
                return Ok(map);
            }
            let at = self.here();
            let (key, value) = self.entry(level)?;
            if map.contains_key(key.as_str()) {
                return Err(self.err_at(at, format!("{key:?} is given twice in this hash")));
            }
            map.insert(key.into(), value);
            self.space();
            if self.eat(",") {
                continue;
            }
            if self.eat(")") {
                return Ok(map);
            }
            return Err(self.unclosed(open, "%( hash", ")"));
        }
    }

    /// The error after a value in a container: not closed, or a wrong token.
    pub(super) fn unclosed(
        &self,
        (line, col): (usize, usize),
        what: &str,
        close: &str,
    ) -> TextError {
        self.err(match self.peek() {
            None => format!("the {what} opened at line {line}, column {col} is not closed"),
            Some(_) => format!(
                "expected \",\" or {close:?} after the value, found {}",
                self.found()
            ),
        })
    }

    /// `name => value`, `"name" => value`, or a pair `:name<value>`.
    pub(super) fn entry(&mut self, level: usize) -> Result<(String, Dynamic), TextError> {
        let key = match self.peek() {
            Some(':') => return self.pair(level),
            Some('"' | '\'') => self.string()?,
            Some(c) if ident_start(c) => {
                let w = self.word().to_string();
                self.advance(w.len());
                w
            }
            _ => {
                return Err(self.err(format!(
                    "expected a name (such as path, or \"quoted\"), a pair :name<value>, \
                     or \")\", found {}",
                    self.found()
                )))
            }
        };
        self.space();
        if !self.eat("=>") {
            return Err(self.err(format!(
                "expected \"=>\" after the name {key:?}, found {}",
                self.found()
            )));
        }
        self.space();
        Ok((key, self.value(level + 1)?))
    }

    /// A value; a hash, list or pair opened here is at nesting `level`.
    pub(super) fn value(&mut self, level: usize) -> Result<Dynamic, TextError> {
        let open = self.here();
        let container = matches!(self.peek(), Some('%' | '[' | '(' | ':'));
        if container && level > MAX_DEPTH {
            return Err(self.err(format!(
                "values nested more than {MAX_DEPTH} levels deep are not accepted"
            )));
        }
        match self.peek() {
            Some('"' | '\'') => Ok(self.string()?.into()),
            Some('%') if self.eat("%(") => Ok(Dynamic::from_map(self.hash(open, level)?)),
            Some('[') => Ok(Dynamic::from_array(self.items(']', level)?.0)),
            Some('(') => self.parens(level),
            Some('<') => self.angle(),
            Some(':') => {
                let (k, v) = self.pair(level)?;
                Ok(Dynamic::from_map(Map::from([(k.into(), v)])))
            }
            Some(c) if c.is_ascii_digit() || c == '-' || c == '+' => self.number(),
            Some(c) if ident_start(c) => match self.word() {
                "True" => Ok(self.keyword(true)),
                "False" => Ok(self.keyword(false)),
                w => Err(self.err(format!(
                    "expected a value, found the bare word {w:?}: quote text (\"{w}\"), \
                     and write booleans True or False"
                ))),
            },
            _ => Err(self.err(format!(
                "expected a value (a quoted string, a number, True, False, %( .. ), [ .. ], \
                 ( .. ), <words> or :name<value>), found {}",
                self.found()
            ))),
        }
    }

    pub(super) fn keyword(&mut self, b: bool) -> Dynamic {
        self.advance(if b { 4 } else { 5 });
        b.into()
    }

    /// `( a, b )`: a list, except `( a )`, which is `a` as in Raku.
    pub(super) fn parens(&mut self, level: usize) -> Result<Dynamic, TextError> {
        let (mut items, comma) = self.items(')', level)?;
        Ok(if items.len() == 1 && !comma {
            items.remove(0)
        } else {
            Dynamic::from_array(items)
        })
    }

    /// Values up to `close` (the cursor is at the opening bracket); whether
    /// a comma was seen.
    pub(super) fn items(&mut self, close: char, level: usize) -> Result<(Array, bool), TextError> {
        let open = self.here();
        self.bump();
        let mut items = Array::new();
        let mut comma = false;
        loop {
            self.space();
            if self.peek() == Some(close) {
                self.bump();
                return Ok((items, comma));
            }
            items.push(self.value(level + 1)?);
            self.space();
            if self.eat(",") {
                comma = true;
                continue;
            }
            if self.peek() == Some(close) {
                self.bump();
                return Ok((items, comma));
            }
            let what = if close == ']' { "[ list" } else { "( list" };
            return Err(self.unclosed(open, what, &close.to_string()));
        }
    }

    /// `:name<value>`, `:name(value)`, `:name` (True), `:!name` (False).
    pub(super) fn pair(&mut self, level: usize) -> Result<(String, Dynamic), TextError> {
        self.bump();
        let not = self.eat("!");
        let name = self.word().to_string();
        if name.is_empty() {
            return Err(self.err(format!(
                "expected a name after \":\" (pairs are :name<value>, :name(value), :name \
                 and :!name), found {}",
                self.found()
            )));
        }
        self.advance(name.len());
        let value = match self.peek() {
            Some('<' | '(') if not => {
                return Err(self.err(format!(":!{name} is False and takes no value")))
            }
            Some('<') => self.angle()?,
            Some('(') => self.parens(level)?,
            _ => (!not).into(),
        };
        Ok((name, value))
    }

    /// `<word>` (a string, or a number when it reads as one) or
    /// `<a b c>` (a list of them), as Raku's word quoting.
    pub(super) fn angle(&mut self) -> Result<Dynamic, TextError> {
        let open = self.here();
        self.bump();
        let len = self
            .rest()
            .find('>')
            .ok_or_else(|| self.err_at(open, "this <..> is not closed: expected \">\"".into()))?;
        let inner = &self.rest()[..len];
        let mut words: Array = inner.split_whitespace().map(allomorph).collect();
        while self.peek() != Some('>') {
            self.bump();
        }
        self.bump();
        Ok(if words.len() == 1 {
            words.remove(0)
        } else {
            Dynamic::from_array(words)
        })
    }

    /// An integer (`-5`, `1_000`) or a decimal (`0.5`, `1e3`).
    pub(super) fn number(&mut self) -> Result<Dynamic, TextError> {
        let at = self.here();
        let len = number_len(self.rest());
        let text = &self.rest()[..len];
        let next = self.rest()[len..].chars().next();
        if len == 0 || next.is_some_and(|c| ident_char(c) || c == '.') {
            let token: String = self
                .rest()
                .chars()
                .take_while(|c| ident_char(*c) || matches!(c, '.' | '-' | '+'))
                .take(24)
                .collect();
            return Err(self.err(format!(
                "{token:?} is not a number: write text in quotes (\"{token}\")"
            )));
        }
        let value = number_value(text).ok_or_else(|| {
            self.err_at(at, format!("{text} is out of range for a 64-bit number"))
        })?;
        self.advance(len);
        Ok(value)
    }
}

/// The length of the number at the start of `s` (0 if none): a sign,
/// digits with `_` between them, an optional fraction and exponent.
fn number_len(s: &str) -> usize {
    let b = s.as_bytes();
    let digits = |mut i: usize| -> usize {
        let from = i;
        while i < b.len() {
            if b[i].is_ascii_digit()
                || (b[i] == b'_' && i > from && b.get(i + 1).is_some_and(u8::is_ascii_digit))
            {
                i += 1;
            } else {
                break;
            }
        }
        i
    };
    let mut i = usize::from(matches!(b.first(), Some(b'-' | b'+')));
    let end = digits(i);
    if end == i {
        return 0;
    }
    i = end;
    if b.get(i) == Some(&b'.') && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
        i = digits(i + 1);
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        let sign = usize::from(matches!(b.get(i + 1), Some(b'-' | b'+')));
        if b.get(i + 1 + sign).is_some_and(u8::is_ascii_digit) {
            i = digits(i + 1 + sign);
        }
    }
    i
}

/// The value of a number `number_len` accepted; `None` when out of range.
fn number_value(text: &str) -> Option<Dynamic> {
    let clean: String = text.chars().filter(|c| *c != '_').collect();
    if clean.contains(['.', 'e', 'E']) {
        clean
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(Dynamic::from_float)
    } else {
        clean.parse::<i64>().ok().map(Dynamic::from_int)
    }
}

/// A word of `<..>`: a number when the whole word reads as one.
fn allomorph(word: &str) -> Dynamic {
    match number_len(word) {
        n if n == word.len() => number_value(word).unwrap_or_else(|| word.into()),
        _ => word.into(),
    }
}
