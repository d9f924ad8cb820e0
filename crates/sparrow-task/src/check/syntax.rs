//! The syntax of `task.check` lines that is pure text: line numbers,
//! `between:` boundaries, `assert:`, `code:`/`generator:` heads, heredoc
//! markers and languages, and which groups of a regex Sparrow6 reports.

use crate::layout::Lang;

/// `:N:` (a line number).
pub(super) fn line_number(pat: &str) -> Option<usize> {
    pat.strip_prefix(':')?.strip_suffix(':')?.parse().ok()
}

/// `between: {A} {B}`: A ends at the first `}` followed by spaces and `{`
/// (Sparrow6's non-greedy match).
pub(super) fn between(t: &str) -> Option<(&str, &str)> {
    let rest = t.strip_prefix("between:")?;
    if !rest.starts_with(char::is_whitespace) {
        return None;
    }
    let rest = rest.trim().strip_prefix('{')?.strip_suffix('}')?;
    let mut from = 0;
    while let Some(k) = rest[from..].find('}') {
        let close = from + k;
        let after = &rest[close + 1..];
        let b = after.trim_start();
        if after.len() > b.len() && b.starts_with('{') {
            return Some((&rest[..close], &b[1..]));
        }
        from = close + 1;
    }
    None
}

/// `assert: VALUE MESSAGE`.
pub(super) fn assert_line(t: &str) -> Option<(bool, &str)> {
    let rest = t.strip_prefix("assert:")?;
    let rest = rest.strip_prefix(char::is_whitespace)?.trim_start();
    let (value, msg) = rest.split_once(char::is_whitespace)?;
    let ok = match value {
        "1" | "true" | "True" => true,
        "0" | "false" | "False" => false,
        _ => return None,
    };
    Some((ok, msg.trim_start()))
}

/// `code: ...` / `generator: ...`: (is a generator, the rest).
pub(super) fn code_line(t: &str) -> Option<(bool, &str)> {
    if let Some(r) = t.strip_prefix("code:") {
        return Some((false, r.trim_start()));
    }
    t.strip_prefix("generator:").map(|r| (true, r.trim_start()))
}

/// `<<MARK` in a code line.
pub(super) fn heredoc_marker(rest: &str) -> Option<&str> {
    let k = rest.find("<<")?;
    let m = rest[k + 2..].split(char::is_whitespace).next()?;
    (!m.is_empty()).then_some(m)
}

/// A heredoc's language (`!lang` on a line of its own, Perl by default)
/// and its code without that line.
pub(super) fn block_lang(body: &str) -> (Option<Lang>, String) {
    let mut lang = Some(Lang::Perl);
    let mut out = Vec::new();
    let mut seen = false;
    for l in body.split('\n') {
        let t = l.trim();
        if !seen {
            if let Some(name) = t.strip_prefix('!') {
                if !name.is_empty() && name.chars().all(|c| c.is_alphanumeric() || c == '_') {
                    seen = true;
                    lang = Lang::from_name(name);
                    // The line stays as an empty one, so line numbers hold.
                    out.push("");
                    continue;
                }
            }
        }
        out.push(l);
    }
    (lang, out.join("\n"))
}

/// The numbers of the capture groups of a Rust regex that are positional
/// (unnamed) and not inside another capturing group: Sparrow6 reports
/// those of a Raku match.
pub(super) fn positional_groups(rust: &str) -> Vec<usize> {
    let c: Vec<char> = rust.chars().collect();
    let mut out = Vec::new();
    // For each open group: whether it captures.
    let mut stack: Vec<bool> = Vec::new();
    let mut class = 0usize;
    let mut count = 0;
    let mut i = 0;
    while i < c.len() {
        match c[i] {
            '\\' => i += 1,
            '[' => class += 1,
            ']' if class > 0 => class -= 1,
            '(' if class == 0 => {
                let named = c.get(i + 1) == Some(&'?')
                    && (c.get(i + 2) == Some(&'P')
                        || (c.get(i + 2) == Some(&'<')
                            && !matches!(c.get(i + 3), Some('=') | Some('!'))));
                let capturing = c.get(i + 1) != Some(&'?') || named;
                if capturing {
                    count += 1;
                    if !named && !stack.iter().any(|&s| s) {
                        out.push(count);
                    }
                }
                stack.push(capturing);
            }
            ')' if class == 0 => {
                stack.pop();
            }
            _ => {}
        }
        i += 1;
    }
    out
}
