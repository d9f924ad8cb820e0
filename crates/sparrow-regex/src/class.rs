//! Character classes: backslash classes (`\d`, `\w` ...), everything that
//! starts with `<`, and `<[...]>` sets.

use std::fmt::Write;

use super::{literal, Atom, Error, Translator};

impl Translator {
    pub(crate) fn backslash(&mut self) -> Result<Atom, Error> {
        let start = self.i;
        self.i += 1;
        let Some(c) = self.peek() else {
            return Err(self.err_at(start, "the pattern ends in a backslash"));
        };
        self.i += 1;
        let text = match c {
            'd' | 'D' | 'w' | 'W' | 's' | 'S' | 'n' | 't' | 'r' | 'f' => format!("\\{c}"),
            'N' => "[^\\n]".into(),
            'T' => "[^\\t]".into(),
            'R' => "[^\\r]".into(),
            'F' => "[^\\f]".into(),
            'e' => "\\x1B".into(),
            'E' => "[^\\x1B]".into(),
            'h' => "[\\t\\p{Zs}]".into(),
            'H' => "[^\\t\\p{Zs}]".into(),
            'v' => "[\\n\\x0B\\f\\r\\x{85}\\x{2028}\\x{2029}]".into(),
            'V' => "[^\\n\\x0B\\f\\r\\x{85}\\x{2028}\\x{2029}]".into(),
            'x' | 'X' | 'o' | 'O' => {
                let (radix, negate) = (
                    if c.eq_ignore_ascii_case(&'x') { 16 } else { 8 },
                    c.is_ascii_uppercase(),
                );
                let bracketed = self.peek() == Some('[');
                if bracketed {
                    self.i += 1;
                }
                let mut digits = String::new();
                while let Some(d) = self.peek().filter(|d| d.is_digit(radix)) {
                    digits.push(d);
                    self.i += 1;
                }
                if bracketed {
                    if self.peek() != Some(']') {
                        return Err(self.unsupported(
                            start,
                            &format!("\\{c}[...] with several characters"),
                            "write one character per escape",
                        ));
                    }
                    self.i += 1;
                }
                let ch = u32::from_str_radix(&digits, radix)
                    .ok()
                    .and_then(char::from_u32)
                    .ok_or_else(|| self.err_at(start, format!("\\{c} needs a character code")))?;
                let mut t = String::new();
                if negate {
                    t.push_str("[^");
                    class_char(ch, &mut t);
                    t.push(']');
                } else {
                    t = literal(&ch.to_string());
                }
                t
            }
            'c' | 'C' => {
                return Err(self.unsupported(
                    start,
                    "\\c[NAME]",
                    "write the character itself, quoted",
                ))
            }
            c if c.is_ascii_digit() => {
                return Err(self.unsupported(
                    start,
                    &format!("the backreference \\{c}"),
                    "Rust regexes cannot match what a group matched",
                ))
            }
            c if c.is_alphanumeric() => {
                return Err(self.err_at(start, format!("unknown escape \\{c}")))
            }
            c => literal(&c.to_string()),
        };
        Ok(Atom {
            text,
            single: true,
            has_capture: false,
        })
    }

    /// Everything that starts with `<`.
    pub(crate) fn angle(&mut self) -> Result<Atom, Error> {
        let start = self.i;
        let single = |text: &str| {
            Ok(Atom {
                text: text.into(),
                single: true,
                has_capture: false,
            })
        };
        if self.starts_with("<<") {
            self.i += 2;
            return single("\\b{start}");
        }
        if self.starts_with("<(") {
            return Err(self.unsupported(
                start,
                "the capture marker <(",
                "capture with ( ) instead",
            ));
        }
        self.i += 1;
        match self.peek() {
            Some('[') | Some('-') | Some('+') => {
                let class = self.class_expr(start)?;
                return single(&class);
            }
            Some('?') | Some('!') => {
                let negated = self.peek() == Some('!');
                self.i += 1;
                let name = self.ident();
                if name.is_empty() && self.peek() == Some('>') {
                    self.i += 1;
                    return if negated {
                        Err(self.unsupported(start, "<!>", "a pattern that never matches"))
                    } else {
                        single("")
                    };
                }
                return Err(self.unsupported(
                    start,
                    &format!(
                        "the assertion <{}{name}...>",
                        if negated { '!' } else { '?' }
                    ),
                    "Rust regexes have no lookahead or lookbehind",
                ));
            }
            Some('{') | Some('$') | Some('@') | Some('&') | Some('.') => {
                return Err(self.unsupported(
                    start,
                    &format!("<{}...>", self.peek().unwrap_or(' ')),
                    "patterns cannot interpolate code or variables",
                ));
            }
            _ => {}
        }
        let name = self.ident();
        if name.is_empty() {
            return Err(self.err_at(start, "unknown <...> construct"));
        }
        self.skip_ws();
        if matches!(self.peek(), Some('+') | Some('-')) {
            // <alpha + [_]>: a class combination starting with a name.
            self.i = start + 1;
            let class = self.class_expr(start)?;
            return single(&class);
        }
        if self.peek() != Some('>') {
            return Err(self.unsupported(
                start,
                &format!("<{name} ...> with arguments"),
                "only plain named rules are translated",
            ));
        }
        self.i += 1;
        let text = match name.as_str() {
            "wb" => "\\b",
            "ww" => "\\B",
            "ws" => "\\s*",
            "ident" => "[\\p{Alphabetic}_]\\w*",
            other => match named_class(other) {
                Some(_) => {
                    let mut t = String::from("[");
                    t.push_str(named_class(other).unwrap_or_default());
                    t.push(']');
                    return single(&t);
                }
                None => return Err(self.unsupported(start, &format!("<{other}>"), "it is not one of the built-in character classes (alpha, digit, alnum, upper, lower, space, punct, xdigit, cntrl, ws, ident, wb, ww)")),
            },
        };
        single(text)
    }

    fn ident(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self
            .peek()
            .filter(|c| c.is_alphanumeric() || *c == '_' || *c == '-')
        {
            name.push(c);
            self.i += 1;
        }
        name
    }

    /// `<[...]>`, `<-[...]>`, `<alpha + [_] - [x]>`: one Rust class.
    fn class_expr(&mut self, start: usize) -> Result<String, Error> {
        let mut negated = false;
        let mut plus: Vec<String> = Vec::new();
        let mut minus: Vec<String> = Vec::new();
        let mut sign = '+';
        let mut first = true;
        loop {
            self.skip_ws();
            match self.peek() {
                Some('>') if !first => {
                    self.i += 1;
                    break;
                }
                Some('+') => {
                    sign = '+';
                    self.i += 1;
                    continue;
                }
                Some('-') => {
                    if first {
                        negated = true;
                    }
                    sign = '-';
                    self.i += 1;
                    continue;
                }
                _ => {}
            }
            let term = match self.peek() {
                Some('[') => self.bracket_class()?,
                Some(c) if c.is_alphabetic() => {
                    let at = self.i;
                    let name = self.ident();
                    named_class(&name).map(str::to_string).ok_or_else(|| {
                        self.unsupported(
                            at,
                            &format!("<{name}> in a character class"),
                            "only built-in classes combine",
                        )
                    })?
                }
                _ => return Err(self.err_at(start, "the character class is not closed with ]>")),
            };
            if sign == '-' && !(first && negated) {
                minus.push(term);
            } else {
                plus.push(term);
            }
            first = false;
        }
        let mut out = String::from("[");
        if negated && plus.is_empty() {
            // <-[abc]> alone: everything but.
            out.push('^');
            for m in &minus {
                out.push_str(m);
            }
            out.push(']');
            return Ok(out);
        }
        if negated {
            out.push('^');
        }
        for p in &plus {
            out.push('[');
            out.push_str(p);
            out.push(']');
        }
        for m in &minus {
            out.push_str("--[");
            out.push_str(m);
            out.push(']');
        }
        out.push(']');
        Ok(out)
    }

    /// `[a..z _ \d]` → the inside of a Rust class.
    fn bracket_class(&mut self) -> Result<String, Error> {
        let start = self.i;
        self.i += 1;
        let mut out = String::new();
        loop {
            self.skip_class_ws();
            let Some(c) = self.peek() else {
                return Err(self.err_at(start, "the character class [ is not closed with ]"));
            };
            if c == ']' {
                self.i += 1;
                if out.is_empty() {
                    return Err(self.err_at(start, "an empty character class"));
                }
                return Ok(out);
            }
            let lo = self.class_member(&mut out)?;
            self.skip_class_ws();
            if self.starts_with("..") {
                self.i += 2;
                self.skip_class_ws();
                let Some(lo) = lo else {
                    return Err(self.err_at(start, "a range must start with one character"));
                };
                let mut hi_text = String::new();
                let Some(hi) = self.class_member(&mut hi_text)? else {
                    return Err(self.err_at(start, "a range must end with one character"));
                };
                if hi < lo {
                    return Err(
                        self.err_at(start, format!("the range {lo:?}..{hi:?} is backwards"))
                    );
                }
                out.push('-');
                class_char(hi, &mut out);
            }
        }
    }

    fn skip_class_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.i += 1;
        }
    }

    /// One member of `[...]`: a character (returned, for ranges) or a
    /// backslash class.
    fn class_member(&mut self, out: &mut String) -> Result<Option<char>, Error> {
        let at = self.i;
        let c = self.s[self.i];
        self.i += 1;
        if c != '\\' {
            class_char(c, out);
            return Ok(Some(c));
        }
        let Some(e) = self.peek() else {
            return Err(self.err_at(at, "the class ends in a backslash"));
        };
        self.i += 1;
        let ch = match e {
            'd' | 'D' | 'w' | 'W' | 's' | 'S' => {
                out.push('\\');
                out.push(e);
                return Ok(None);
            }
            'h' => {
                out.push_str("\\t\\p{Zs}");
                return Ok(None);
            }
            'v' => {
                out.push_str("\\n\\x0B\\f\\r\\x{85}\\x{2028}\\x{2029}");
                return Ok(None);
            }
            'n' => '\n',
            't' => '\t',
            'r' => '\r',
            'f' => '\x0c',
            'e' => '\x1b',
            'x' => {
                let bracketed = self.peek() == Some('[');
                if bracketed {
                    self.i += 1;
                }
                let mut digits = String::new();
                while let Some(d) = self.peek().filter(char::is_ascii_hexdigit) {
                    digits.push(d);
                    self.i += 1;
                }
                if bracketed {
                    if self.peek() != Some(']') {
                        return Err(self.err_at(at, "\\x[ is not closed"));
                    }
                    self.i += 1;
                }
                u32::from_str_radix(&digits, 16)
                    .ok()
                    .and_then(char::from_u32)
                    .ok_or_else(|| self.err_at(at, "\\x needs a hex character code"))?
            }
            e if e.is_alphanumeric() => {
                return Err(self.err_at(at, format!("unknown escape \\{e} in a character class")))
            }
            e => e,
        };
        class_char(ch, out);
        Ok(Some(ch))
    }
}

/// A character as a member of a Rust character class.
fn class_char(c: char, out: &mut String) {
    if matches!(c, '\\' | '[' | ']' | '^' | '-' | '&' | '~' | '|') {
        out.push('\\');
    }
    match c {
        '\n' => out.push_str("\\n"),
        '\t' => out.push_str("\\t"),
        '\r' => out.push_str("\\r"),
        c if c.is_control() => {
            let _ = write!(out, "\\x{{{:X}}}", c as u32);
        }
        c => out.push(c),
    }
}

/// The inside of a Rust class for a Raku named class.
fn named_class(name: &str) -> Option<&'static str> {
    Some(match name {
        // Raku's alpha and alnum include the underscore.
        "alpha" => "\\p{Alphabetic}_",
        "digit" => "\\d",
        "alnum" => "\\p{Alphabetic}\\d_",
        "upper" => "\\p{Uppercase}",
        "lower" => "\\p{Lowercase}",
        "space" => "\\s",
        "punct" => "\\p{P}",
        "xdigit" => "0-9A-Fa-f",
        "cntrl" => "\\p{Cc}",
        "blank" => "\\t\\p{Zs}",
        _ => return None,
    })
}
