//! Diagnostics for people: the source line, a pointer, and help, via miette.

use std::path::Path;

use miette::{
    Diagnostic as MietteDiagnostic, GraphicalReportHandler, GraphicalTheme, LabeledSpan,
    NamedSource, SourceSpan,
};
use sparrow_lang::{Diagnostic, Severity};

#[derive(Debug, thiserror::Error)]
#[error("{message}")]
struct Pretty {
    message: String,
    help: Option<String>,
    severity: Severity,
    src: Option<NamedSource<String>>,
    span: Option<SourceSpan>,
}

impl MietteDiagnostic for Pretty {
    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
            Severity::Note => miette::Severity::Advice,
        })
    }
    fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn std::fmt::Display>)
    }
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.src.as_ref().map(|s| s as &dyn miette::SourceCode)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let span = self.span?;
        Some(Box::new(std::iter::once(LabeledSpan::new_with_span(
            Some("here".into()),
            span,
        ))))
    }
}

fn source_text(file: &Path) -> Option<String> {
    let name = file.to_string_lossy();
    if let Some(t) = sparrow_lang::library::source_text(&name) {
        return Some(t.to_string());
    }
    std::fs::read_to_string(file).ok()
}

/// Byte span of `len` characters at 1-based `line`:`col` (columns count characters).
fn span(text: &str, line: usize, col: usize, len: usize) -> Option<SourceSpan> {
    if line == 0 {
        return None;
    }
    let mut offset = 0;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            let start = l
                .char_indices()
                .nth(col.saturating_sub(1))
                .map_or(l.len(), |(b, _)| b);
            let end = l[start..]
                .char_indices()
                .nth(len)
                .map_or(l.trim_end_matches('\n').len(), |(b, _)| start + b);
            return Some(SourceSpan::new(
                (offset + start).into(),
                end.saturating_sub(start).max(1),
            ));
        }
        offset += l.len();
    }
    None
}

/// Renders a diagnostic with its source context.
pub fn render(d: &Diagnostic) -> String {
    let text = source_text(&d.file);
    let span = text.as_deref().and_then(|t| span(t, d.line, d.col, d.len));
    let location = if d.line > 0 {
        format!("{}:{}:{}: ", d.file.display(), d.line, d.col)
    } else {
        format!("{}: ", d.file.display())
    };
    let pretty = Pretty {
        message: format!("{location}{}", d.message),
        help: d.help.clone(),
        severity: d.severity,
        src: text.map(|t| NamedSource::new(d.file.display().to_string(), t)),
        span,
    };
    let theme = if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let mut out = String::new();
    let _ = GraphicalReportHandler::new_themed(theme).render_report(&mut out, &pretty);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_count_characters() {
        let t = "ab\nxé yz\n";
        assert_eq!(span(t, 2, 4, 2), Some(SourceSpan::new(7.into(), 2)));
        assert_eq!(span(t, 1, 1, 1), Some(SourceSpan::new(0.into(), 1)));
        assert_eq!(span(t, 9, 1, 1), None);
    }
}
