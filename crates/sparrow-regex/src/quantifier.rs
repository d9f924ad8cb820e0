//! Quantifiers: `* + ?`, frugal forms, `** N..M` ranges and `%` separators.

use std::fmt::Write;

use super::{Atom, Error, Translator};

impl Translator {
    /// A quantifier after `atom` (which started at `start`), if any.
    pub(crate) fn quantifier(&mut self, start: usize, atom: Atom) -> Result<String, Error> {
        let save = self.i;
        self.skip_ws();
        let (q, at) = (self.peek(), self.i);
        let quant = match q {
            Some('*') if self.peek_at(1) == Some('*') => {
                self.i += 2;
                self.skip_ws();
                self.range_quantifier(at)?
            }
            Some('*') => {
                self.i += 1;
                "*".to_string()
            }
            Some('+') => {
                self.i += 1;
                "+".to_string()
            }
            Some('?') => {
                self.i += 1;
                "?".to_string()
            }
            _ => {
                self.i = save;
                return Ok(atom.text);
            }
        };
        if atom.text.is_empty()
            || atom.text.starts_with("\\b")
            || atom.text == "^"
            || atom.text == "$"
            || atom.text.starts_with("(?m:")
        {
            return Err(self.err_at(
                at,
                "a quantifier after something that matches no characters",
            ));
        }
        // Frugal (?), greedy (!) or ratchet (:) modifiers.
        let mut greedy = true;
        match self.peek() {
            Some('?') => {
                self.i += 1;
                greedy = false;
            }
            Some('!') => self.i += 1,
            Some(':') if !self.peek_at(1).is_some_and(char::is_alphabetic) => {
                return Err(self.unsupported(
                    self.i,
                    "the ratchet quantifier modifier :",
                    "Rust regexes have no possessive quantifiers; drop the ':' (the pattern may then match more)",
                ));
            }
            _ => {}
        }
        let mut out = atom.grouped();
        out.push_str(&quant);
        if !greedy {
            out.push('?');
        }
        // `X+ % ','` : separated by.
        self.skip_ws();
        if self.peek() == Some('%') {
            let pct = self.i;
            self.i += 1;
            let trailing = self.peek() == Some('%');
            if trailing {
                self.i += 1;
            }
            if quant != "+" && quant != "*" {
                return Err(self.unsupported(
                    pct,
                    "% after a quantifier other than + or *",
                    "write the repetition out",
                ));
            }
            if atom.has_capture {
                return Err(self.unsupported(
                    pct,
                    "% on an item with captures",
                    "the item would be repeated in the pattern",
                ));
            }
            self.skip_ws();
            if self.at_sequence_end() {
                return Err(self.err_at(pct, "% needs a separator after it"));
            }
            let sep_at = self.i;
            let sep = self.atom()?;
            if sep.has_capture {
                return Err(self.unsupported(
                    sep_at,
                    "a separator with captures",
                    "use [ ] instead of ( )",
                ));
            }
            let item = atom.grouped();
            let lazy = if greedy { "" } else { "?" };
            let mut rep = format!("{item}(?:{}{item})*{lazy}", sep.text);
            if trailing {
                let _ = write!(rep, "(?:{})?", sep.text);
            }
            out = if quant == "*" {
                format!("(?:{rep})?")
            } else {
                format!("(?:{rep})")
            };
        }
        let _ = start;
        Ok(out)
    }

    /// After `**`: `N`, `N..M`, `N..*`, `N^..^M`.
    fn range_quantifier(&mut self, at: usize) -> Result<String, Error> {
        if self.peek() == Some('{') {
            return Err(self.unsupported(at, "** { code }", "use a number or a range"));
        }
        let num = |t: &mut Self| -> Option<u64> {
            let mut d = String::new();
            while let Some(c) = t.peek().filter(char::is_ascii_digit) {
                d.push(c);
                t.i += 1;
            }
            d.parse().ok()
        };
        let Some(mut lo) = num(self) else {
            return Err(self.err_at(at, "** needs a count or a range (** 3, ** 2..5, ** 1..*)"));
        };
        let lo_excl = self.peek() == Some('^');
        if lo_excl {
            self.i += 1;
        }
        if !self.starts_with("..") {
            if lo_excl {
                return Err(self.err_at(at, "^ belongs to a range (** 1^..5)"));
            }
            return Ok(format!("{{{lo}}}"));
        }
        self.i += 2;
        let hi_excl = self.peek() == Some('^');
        if hi_excl {
            self.i += 1;
        }
        if lo_excl {
            lo += 1;
        }
        if self.peek() == Some('*') || self.peek() == Some('I') && self.starts_with("Inf") {
            self.i += if self.peek() == Some('*') { 1 } else { 3 };
            return Ok(format!("{{{lo},}}"));
        }
        let Some(mut hi) = num(self) else {
            return Err(self.err_at(
                at,
                "the range after ** needs an upper bound (a number or *)",
            ));
        };
        if hi_excl {
            hi = hi
                .checked_sub(1)
                .ok_or_else(|| self.err_at(at, "an empty range after **"))?;
        }
        if hi < lo {
            return Err(self.err_at(at, format!("the range {lo}..{hi} after ** is backwards")));
        }
        Ok(format!("{{{lo},{hi}}}"))
    }
}

/// Whether `g` is one group `( ... )` from its first to its last character.
pub(crate) fn balanced_group(g: &str) -> bool {
    let mut depth = 0i32;
    let mut escaped = false;
    let mut in_class = 0i32;
    let chars: Vec<char> = g.chars().collect();
    for (k, c) in chars.iter().enumerate() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '[' => in_class += 1,
            ']' if in_class > 0 => in_class -= 1,
            '(' if in_class == 0 => depth += 1,
            ')' if in_class == 0 => {
                depth -= 1;
                if depth == 0 && k != chars.len() - 1 {
                    return false;
                }
            }
            _ => {}
        }
    }
    depth == 0
}
