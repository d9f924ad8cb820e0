//! Raku sources through the bridge before evaluation: one Raku process
//! for all of them (none when the cache has every translation).

use sparrow_lang::{Diagnostic, Facts, Severity};
use sparrow_raku::{Input, Translation};
use sparrow_source::{read_listed, Refused, Source};

use crate::{Options, Outcome};

/// `sources` with each Raku source's translation set, and an outcome for
/// each source that cannot be evaluated (unreadable, untranslatable, no
/// `raku`); the others are `None`.
pub(crate) fn prepare(
    sources: &[Source],
    facts: &Facts,
    opts: &Options,
) -> (Vec<Source>, Vec<Option<Outcome>>) {
    let mut out: Vec<Source> = sources.to_vec();
    let mut pre: Vec<Option<Outcome>> = vec![None; sources.len()];
    let mut texts: Vec<(usize, String)> = Vec::new();
    for (i, src) in sources.iter().enumerate() {
        if !src.kind.is_raku() {
            continue;
        }
        match read_listed(&src.path, opts.owners, src.listed_regular) {
            Ok(t) => texts.push((i, t.text)),
            Err(e) => {
                pre[i] = Some(Outcome::Refused(Refused {
                    path: src.path.clone(),
                    reason: e.reason,
                }))
            }
        }
    }
    if texts.is_empty() {
        return (out, pre);
    }
    let inputs: Vec<Input<'_>> = texts
        .iter()
        .map(|(i, text)| Input {
            path: &sources[*i].path,
            text,
        })
        .collect();
    let env = |k: &str| std::env::var(k).ok();
    let (translations, _) = sparrow_raku::translate(&inputs, facts, &opts.raku, &env);
    let skipped: Vec<usize> = texts
        .iter()
        .zip(&translations)
        .filter(|(_, t)| **t == Translation::NoRaku)
        .map(|((i, _), _)| *i)
        .collect();
    for ((i, _), t) in texts.iter().zip(translations) {
        let path = &sources[*i].path;
        match t {
            Translation::Native(text) => out[*i].translation = Some(text),
            Translation::Failed { line, message } => {
                pre[*i] = Some(Outcome::Failed(vec![Diagnostic {
                    severity: Severity::Error,
                    file: path.clone(),
                    line,
                    col: usize::from(line > 0),
                    len: 1,
                    message: format!("Raku: {message}"),
                    help: Some(
                        "fix the Raku file; every other definition is generated as usual".into(),
                    ),
                }]))
            }
            // Said once, below.
            Translation::NoRaku => pre[*i] = Some(Outcome::Failed(Vec::new())),
        }
    }
    if let Some(first) = skipped.first() {
        let names: Vec<String> = skipped
            .iter()
            .map(|i| sources[*i].path.display().to_string())
            .collect();
        pre[*first] = Some(Outcome::Failed(vec![Diagnostic {
            severity: Severity::Error,
            file: sources[*first].path.clone(),
            line: 0,
            col: 0,
            len: 1,
            message: format!(
                "`raku` is not installed, so {} Raku definition{} {} skipped: {}",
                names.len(),
                if names.len() == 1 { "" } else { "s" },
                if names.len() == 1 { "was" } else { "were" },
                names.join(", ")
            ),
            help: Some(
                "install Raku (Debian: apt-get install rakudo) or set SYSTEMD_SPARROW_RAKU to its path; every other definition is generated as usual".into(),
            ),
        }]));
    }
    (out, pre)
}

/// Positions in a Raku source's diagnostics keep the line (declarations
/// sit on the line of their `task-run`) and point at its start: the
/// column is the translation's, not the Raku file's.
pub(crate) fn line_only(outcome: &mut Outcome, path: &std::path::Path) {
    let diags = match outcome {
        Outcome::Units(_, d) | Outcome::Failed(d) => d,
        Outcome::Refused(_) => return,
    };
    for d in diags.iter_mut().filter(|d| d.file == path && d.line > 0) {
        d.col = 1;
        d.len = 1;
    }
}
