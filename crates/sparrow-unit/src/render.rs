//! Building and rendering unit files.
//!
//! Values are validated and escaped when they are pushed into a [`Section`],
//! so an error names the directive it belongs to and a [`UnitFile`] that
//! exists always renders. Escaping follows systemd 252:
//!
//! - specifiers: `%` is expanded in almost every directive, so a literal `%`
//!   becomes `%%`; [`Word::Raw`] and [`Value::Verbatim`] keep `%i` etc.
//! - command lines (`ExecStart=`): the whole line is specifier-expanded, then
//!   split into words with C-style unquoting, then `$VAR` is expanded at
//!   exec time; a literal argv word is therefore quoted with `"`, `\` and `"`
//!   backslash-escaped, `%` doubled and `$` doubled.
//! - `Environment=`: unquoted, then specifier-expanded; no `$` expansion.
//! - every value: no newline, no control character, no trailing backslash
//!   (which would continue the line).

use crate::ValueError;

/// One word of a command line (argv).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Word {
    /// Means exactly these characters: `%` and `$` are escaped.
    Literal(String),
    /// Keeps systemd's `%` specifiers and `$VAR` references; still quoted.
    Raw(String),
}

impl Word {
    /// The characters of the word, before escaping.
    pub fn text(&self) -> &str {
        match self {
            Word::Literal(s) | Word::Raw(s) => s,
        }
    }
}

/// A directive value, typed by how it must be escaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// Free text where `%` is literal (`Description=`); surrounding whitespace
    /// is dropped, as systemd does.
    Text(String),
    /// Already in systemd syntax (numbers, sizes, a command written as a
    /// string, raw pass-through); only checked, never changed.
    Verbatim(String),
    /// A command line from an argv.
    Argv(Vec<Word>),
    /// One `Environment=` assignment.
    Env(String, Word),
    /// Space-separated tokens such as unit names (`After=a.service b.target`).
    List(Vec<String>),
}

/// One `[Section]` of a unit file, with its directives in insertion order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    name: String,
    entries: Vec<(String, String)>,
}

/// A unit file: leading comment lines, then sections in insertion order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnitFile {
    comments: Vec<String>,
    sections: Vec<Section>,
}

impl UnitFile {
    /// An empty unit file.
    pub fn new() -> UnitFile {
        UnitFile::default()
    }

    /// Adds a `# ...` comment line to the header. Comments are ours (the
    /// generator's banner), so any control character is replaced, not an error.
    pub fn comment(&mut self, text: &str) {
        // Every unit gets the banner: copy it as it is when it is clean.
        let clean: String = if text.chars().any(char::is_control) {
            text.chars()
                .map(|c| if c.is_control() { '?' } else { c })
                .collect()
        } else {
            text.to_string()
        };
        self.comments.push(clean);
    }

    /// The section `name`, created at the end if it does not exist yet.
    pub fn section(&mut self, name: &str) -> Result<&mut Section, ValueError> {
        check_section_name(name)?;
        let idx = match self.sections.iter().position(|s| s.name == name) {
            Some(i) => i,
            None => {
                self.sections.push(Section {
                    name: name.to_string(),
                    entries: Vec::new(),
                });
                self.sections.len() - 1
            }
        };
        Ok(&mut self.sections[idx])
    }

    /// The sections, in order.
    pub fn sections(&self) -> &[Section] {
        &self.sections
    }

    /// The rendered text of every value of `key` in `section`.
    pub fn get(&self, section: &str, key: &str) -> Vec<&str> {
        self.sections
            .iter()
            .filter(|s| s.name == section)
            .flat_map(|s| s.entries.iter())
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The unit file's text. Deterministic: the same pushes give the same bytes.
    pub fn render(&self) -> String {
        // push_str rather than write!: this runs for every unit generated,
        // and formatting machinery was a measurable part of that.
        let size = self.comments.iter().map(|c| c.len() + 3).sum::<usize>()
            + self
                .sections
                .iter()
                .map(|s| {
                    s.name.len()
                        + 4
                        + s.entries
                            .iter()
                            .map(|(k, v)| k.len() + v.len() + 2)
                            .sum::<usize>()
                })
                .sum::<usize>();
        let mut out = String::with_capacity(size);
        for c in &self.comments {
            out.push_str("# ");
            out.push_str(c);
            out.push('\n');
        }
        for (i, s) in self
            .sections
            .iter()
            .filter(|s| !s.entries.is_empty())
            .enumerate()
        {
            if i > 0 || !self.comments.is_empty() {
                out.push('\n');
            }
            out.push('[');
            out.push_str(&s.name);
            out.push_str("]\n");
            for (k, v) in &s.entries {
                out.push_str(k);
                out.push('=');
                out.push_str(v);
                out.push('\n');
            }
        }
        out
    }
}

impl Section {
    /// The section's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The directives as `(key, rendered value)`.
    pub fn entries(&self) -> &[(String, String)] {
        &self.entries
    }

    /// Whether `key` was pushed into this section.
    pub fn contains(&self, key: &str) -> bool {
        self.entries.iter().any(|(k, _)| k == key)
    }

    /// Validates, escapes and appends `key=value`.
    pub fn push(&mut self, key: &str, value: &Value) -> Result<(), ValueError> {
        check_key(key)?;
        let rendered = render_value(value)?;
        self.entries.push((key.to_string(), rendered));
        Ok(())
    }

    /// Like [`Section::push`], but ahead of the directives already pushed
    /// under `key` (for commands that must run before the ones a user wrote,
    /// such as a `pre_stop` hook ahead of `ExecStop=`).
    pub fn push_first(&mut self, key: &str, value: &Value) -> Result<(), ValueError> {
        check_key(key)?;
        let rendered = render_value(value)?;
        let at = self
            .entries
            .iter()
            .position(|(k, _)| k == key)
            .unwrap_or(self.entries.len());
        self.entries.insert(at, (key.to_string(), rendered));
        Ok(())
    }
}

fn check_key(key: &str) -> Result<(), ValueError> {
    let mut chars = key.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(ValueError::BadKey(key.to_string()))
    }
}

fn check_section_name(name: &str) -> Result<(), ValueError> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| (c.is_ascii_graphic() || c == ' ') && c != '[' && c != ']')
        && name.trim() == name;
    if ok {
        Ok(())
    } else {
        Err(ValueError::BadSection(name.to_string()))
    }
}

/// No newline, no control character: one value stays on one line.
fn check_chars(s: &str) -> Result<(), ValueError> {
    // Most values are printable ASCII: check bytes, decode only otherwise.
    if s.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Ok(());
    }
    for c in s.chars() {
        if c == '\n' || c == '\r' {
            return Err(ValueError::Newline);
        }
        if c.is_control() {
            return Err(ValueError::ControlChar(c as u32));
        }
    }
    Ok(())
}

/// Validates a value written as-is: one line, and no odd run of trailing
/// backslashes (systemd would join the next line).
fn check_line(s: &str) -> Result<(), ValueError> {
    check_chars(s)?;
    let trailing = s
        .trim_end_matches(' ')
        .chars()
        .rev()
        .take_while(|c| *c == '\\')
        .count();
    if trailing % 2 == 1 {
        return Err(ValueError::TrailingBackslash);
    }
    Ok(())
}

/// Escaped unit names carry `\xHH` (`mnt-a\x20b.mount`), which systemd
/// keeps as written in lists; any other backslash could join lines or be
/// read as another escape, so it is refused.
fn backslashes_are_hex_escapes(item: &str) -> bool {
    let b = item.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            let hex = b.len() > i + 3
                && b[i + 1] == b'x'
                && b[i + 2].is_ascii_hexdigit()
                && b[i + 3].is_ascii_hexdigit();
            if !hex {
                return false;
            }
            i += 4;
        } else {
            i += 1;
        }
    }
    true
}

fn render_value(value: &Value) -> Result<String, ValueError> {
    match value {
        Value::Text(s) => {
            check_line(s)?;
            let t = s.trim_matches(' ');
            Ok(if t.contains('%') {
                t.replace('%', "%%")
            } else {
                t.to_string()
            })
        }
        Value::Verbatim(s) => {
            check_line(s)?;
            Ok(s.trim_matches(' ').to_string())
        }
        Value::Argv(words) => render_argv(words),
        Value::Env(name, value) => render_env(name, value),
        Value::List(items) => {
            let mut out = String::new();
            for item in items {
                check_chars(item)?;
                if item.is_empty()
                    || item.chars().any(char::is_whitespace)
                    || !backslashes_are_hex_escapes(item)
                {
                    return Err(ValueError::BadListItem(item.clone()));
                }
                if !out.is_empty() {
                    out.push(' ');
                }
                out.push_str(item);
            }
            if out.is_empty() {
                return Err(ValueError::Empty);
            }
            Ok(out)
        }
    }
}

/// Characters that need no quoting in a command-line word.
fn bare_safe(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            '/' | '.' | '_' | '+' | '=' | ':' | ',' | '@' | '-' | '%' | '$'
        )
}

fn render_word(word: &Word, out: &mut String) -> Result<(), ValueError> {
    let (text, literal) = match word {
        Word::Literal(s) => (s.as_str(), true),
        Word::Raw(s) => (s.as_str(), false),
    };
    check_chars(text)?;
    // The common word (a path, a flag) needs neither escaping nor quotes.
    if !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii() && bare_safe(b as char) && b != b'%' && b != b'$')
    {
        out.push_str(text);
        return Ok(());
    }
    let mut esc = String::with_capacity(text.len() + 2);
    for c in text.chars() {
        match c {
            '%' if literal => esc.push_str("%%"),
            '$' if literal => esc.push_str("$$"),
            '\\' => esc.push_str("\\\\"),
            '"' => esc.push_str("\\\""),
            c => esc.push(c),
        }
    }
    if !text.is_empty() && text.chars().all(bare_safe) {
        out.push_str(&esc);
    } else {
        out.push('"');
        out.push_str(&esc);
        out.push('"');
    }
    Ok(())
}

fn render_argv(words: &[Word]) -> Result<String, ValueError> {
    let program = words.first().ok_or(ValueError::EmptyArgv)?;
    if program.text().is_empty() {
        return Err(ValueError::EmptyArgv);
    }
    // systemd reads these prefixes after unquoting, so quoting cannot protect them.
    if program.text().starts_with(['@', '-', ':', '+', '!']) {
        return Err(ValueError::ProgramPrefix(program.text().to_string()));
    }
    let mut out = String::with_capacity(words.iter().map(|w| w.text().len() + 3).sum());
    for (i, w) in words.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        render_word(w, &mut out)?;
    }
    Ok(out)
}

fn render_env(name: &str, value: &Word) -> Result<String, ValueError> {
    let mut chars = name.chars();
    let ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !ok {
        return Err(ValueError::BadEnvName(name.to_string()));
    }
    let (text, literal) = match value {
        Word::Literal(s) => (s.as_str(), true),
        Word::Raw(s) => (s.as_str(), false),
    };
    check_chars(text)?;
    let mut out = String::with_capacity(name.len() + text.len() + 4);
    out.push('"');
    out.push_str(name);
    out.push('=');
    for c in text.chars() {
        match c {
            '%' if literal => out.push_str("%%"),
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out.push('"');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(v: Value) -> Result<String, ValueError> {
        render_value(&v)
    }

    fn lit(s: &str) -> Word {
        Word::Literal(s.to_string())
    }

    #[test]
    fn text_escapes_specifiers_and_refuses_new_lines() {
        assert_eq!(one(Value::Text("50% done".into())).unwrap(), "50%% done");
        assert_eq!(one(Value::Text("  padded ".into())).unwrap(), "padded");
        assert_eq!(
            one(Value::Text("a\nExecStart=/bin/evil".into())),
            Err(ValueError::Newline)
        );
        assert_eq!(one(Value::Text("a\rb".into())), Err(ValueError::Newline));
        assert_eq!(
            one(Value::Text("a\u{7}".into())),
            Err(ValueError::ControlChar(7))
        );
        assert_eq!(
            one(Value::Text("a\\".into())),
            Err(ValueError::TrailingBackslash)
        );
        assert_eq!(one(Value::Text("a\\\\".into())).unwrap(), "a\\\\");
    }

    #[test]
    fn argv_quotes_and_escapes() {
        let cases: &[(&[&str], &str)] = &[
            (&["/bin/echo", "hello"], "/bin/echo hello"),
            (&["/bin/echo", "a b"], "/bin/echo \"a b\""),
            (&["/bin/echo", "100%"], "/bin/echo 100%%"),
            (&["/bin/echo", "$HOME"], "/bin/echo $$HOME"),
            (&["/bin/echo", "say \"hi\""], "/bin/echo \"say \\\"hi\\\"\""),
            (&["/bin/echo", "back\\slash"], "/bin/echo \"back\\\\slash\""),
            (&["/bin/echo", ""], "/bin/echo \"\""),
            (&["/bin/echo", ";"], "/bin/echo \";\""),
            (&["/bin/echo", "daemon off;"], "/bin/echo \"daemon off;\""),
        ];
        for (argv, want) in cases {
            let words = argv.iter().map(|s| lit(s)).collect();
            assert_eq!(one(Value::Argv(words)).unwrap(), *want, "{argv:?}");
        }
        let raw = vec![
            lit("/bin/kill"),
            Word::Raw("$MAINPID".into()),
            Word::Raw("%i".into()),
        ];
        assert_eq!(one(Value::Argv(raw)).unwrap(), "/bin/kill $MAINPID %i");
        assert_eq!(one(Value::Argv(vec![])), Err(ValueError::EmptyArgv));
        assert_eq!(
            one(Value::Argv(vec![lit("-/bin/false")])),
            Err(ValueError::ProgramPrefix("-/bin/false".into()))
        );
        assert_eq!(
            one(Value::Argv(vec![lit("/bin/x"), lit("a\nb")])),
            Err(ValueError::Newline)
        );
    }

    #[test]
    fn environment_is_quoted() {
        assert_eq!(
            one(Value::Env("A".into(), lit("b c"))).unwrap(),
            "\"A=b c\""
        );
        assert_eq!(one(Value::Env("A".into(), lit("5%"))).unwrap(), "\"A=5%%\"");
        assert_eq!(one(Value::Env("A".into(), lit("$x"))).unwrap(), "\"A=$x\"");
        assert_eq!(
            one(Value::Env("A".into(), lit("q\"\\"))).unwrap(),
            "\"A=q\\\"\\\\\""
        );
        assert_eq!(
            one(Value::Env("1A".into(), lit("x"))),
            Err(ValueError::BadEnvName("1A".into()))
        );
        assert_eq!(
            one(Value::Env("A B".into(), lit("x"))),
            Err(ValueError::BadEnvName("A B".into()))
        );
    }

    #[test]
    fn lists_are_tokens() {
        let l = |v: &[&str]| Value::List(v.iter().map(|s| s.to_string()).collect());
        assert_eq!(
            one(l(&["a.service", "b.target"])).unwrap(),
            "a.service b.target"
        );
        assert_eq!(one(l(&["a b"])), Err(ValueError::BadListItem("a b".into())));
        assert_eq!(one(l(&["mnt-a\\x20b.mount"])).unwrap(), "mnt-a\\x20b.mount");
        for bad in ["a\\", "a\\nb", "a\\x2", "a\\xzz"] {
            assert_eq!(
                one(l(&[bad])),
                Err(ValueError::BadListItem(bad.into())),
                "{bad}"
            );
        }
        assert_eq!(one(l(&[])), Err(ValueError::Empty));
    }

    #[test]
    fn renders_sections_in_order_with_header() {
        let mut u = UnitFile::new();
        u.comment("generated");
        u.section("Unit")
            .unwrap()
            .push("Description", &Value::Text("x".into()))
            .unwrap();
        u.section("Service")
            .unwrap()
            .push("ExecStart", &Value::Argv(vec![lit("/bin/true")]))
            .unwrap();
        u.section("Unit")
            .unwrap()
            .push("After", &Value::List(vec!["a.service".into()]))
            .unwrap();
        u.section("Install").unwrap();
        assert_eq!(
            u.render(),
            "# generated\n\n[Unit]\nDescription=x\nAfter=a.service\n\n[Service]\nExecStart=/bin/true\n"
        );
        assert_eq!(u.get("Unit", "After"), vec!["a.service"]);
        assert!(u.section("Bad]").is_err());
        assert!(u
            .section("Unit")
            .unwrap()
            .push("Bad Key", &Value::Text("x".into()))
            .is_err());
        assert!(u
            .section("Unit")
            .unwrap()
            .push("X=Y", &Value::Text("x".into()))
            .is_err());
    }
}
