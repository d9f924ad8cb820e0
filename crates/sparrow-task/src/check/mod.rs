//! Task::Check: Sparrow6's language for checking a task's output.
//!
//! A `task.check` is read line by line and each line runs at once, in
//! order; every check is evaluated (a failure does not stop the rest) and
//! reported as `stdout match <PATTERN> True|False`. Line kinds, first match
//! wins: blank and `#` lines are skipped and `#` starts a comment anywhere;
//! `note:`; `within: RE`; `between: {A} {B}`; `begin:`; `end:`;
//! `source: FILE`; `assert: 0|1|true|false|True|False MESSAGE`;
//! `code:`/`generator:` (a Perl one-liner, or `<<MARK` ... `MARK` with an
//! optional `!bash|!perl|!python|!ruby|!raku` line); `regexp:`, `~regexp:`
//! (soft: never fails the task), `!regexp:` (must not match); anything else
//! is a plain, trimmed, case-sensitive substring, or `:any:`, or `:N:`
//! (the line with 0-based index N).
//!
//! Regexes are Raku's (translated by `sparrow-regex`); an unsupported
//! construct is an error naming `task.check:LINE:COL`. A code block's
//! output becomes notes, a generator's output more checks; a block that
//! exits non-zero ends the run with its exit code, as in Sparrow6.
//!
//! Deliberate departures from Sparrow6 (each a crash or a trap there):
//! `between:` boundaries are exclusive for regexes (as its documentation
//! says) and inclusive for `:N:` line numbers, which must be the whole
//! boundary (`{ :3: }`), and trailing spaces after `between:` are allowed;
//! a `!regexp:` right after `begin:` fails if the pattern is anywhere; a
//! heredoc still open at the end of the file is an error, not silence.

mod context;
mod files;
mod syntax;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use context::{Boundary, Capture, Ctx, Item, Kind, Matcher};
use syntax::{
    assert_line, between, block_lang, code_line, heredoc_marker, line_number, positional_groups,
};

use crate::layout::Lang;
use crate::limits::{self, MAX_BLOCKS, MAX_LINE};
use crate::TaskError;

/// Generators may produce generators, but not forever.
const MAX_GENERATOR_DEPTH: usize = 128;
/// Groups (`(`, `[`), named captures (`$<..>=`) and separators (`%`) in
/// one regex: each nests the translator one level deeper (on the stack).
const MAX_REGEX_GROUPS: usize = 256;

/// Runs `code:`/`generator:` blocks (the task runner does, with the task's
/// helpers, configuration and deadline).
pub trait Blocks {
    /// Runs `code` written in `lang`.
    fn run(&mut self, lang: Lang, code: &str) -> Result<BlockRun, TaskError>;

    /// When the evaluation must stop (the run's deadline), if ever.
    fn deadline(&self) -> Option<Instant> {
        None
    }
}

/// What a block did.
#[derive(Debug, Clone, Default)]
pub struct BlockRun {
    /// Exit code (non-zero ends the run).
    pub exit: i32,
    /// Its stdout lines.
    pub stdout: Vec<String>,
    /// Its stderr lines.
    pub stderr: Vec<String>,
}

/// What an evaluation needs from the run.
pub struct Context<'a> {
    /// The file's name, for error messages.
    pub file: &'a str,
    /// Where `matched.txt`, `captures.json`, `streams.json` and
    /// `streams-array.json` are written for blocks to read.
    pub cache_root: &'a Path,
    /// Runs code blocks.
    pub blocks: &'a mut dyn Blocks,
}

/// One line of the check report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportLine {
    /// A check and whether it passed.
    Check {
        /// `stdout match <P>`, `<assert message>` ...
        message: String,
        /// Passed. A soft check that did not match prints False but does
        /// not count as failed.
        ok: bool,
    },
    /// A note (`note:` or a `code:` block's output).
    Note(String),
}

/// A code block that failed, ending the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aborted {
    /// The block's exit code.
    pub code: i32,
    /// Its stderr.
    pub stderr: Vec<String>,
}

/// The result of a `task.check`.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// In order.
    pub lines: Vec<ReportLine>,
    /// Checks that failed (soft failures excluded).
    pub failed: usize,
    /// A block failed: the run ends with its code.
    pub aborted: Option<Aborted>,
    /// The deadline passed: the checks after it were not evaluated.
    pub timed_out: bool,
}

/// Evaluates `text` (a task.check) over `data` (the output lines).
pub fn evaluate(text: &str, data: &[String], cx: &mut Context) -> Result<Report, TaskError> {
    let mut e = Eval {
        data: Cow::Borrowed(data),
        ctx: Ctx::default_ctx(),
        report: Report::default(),
        last: None,
        dirty: false,
        blocks: 0,
        dry: false,
        cx,
    };
    let lines: Vec<&str> = text.lines().collect();
    e.validate(&lines, &Origin::File, 0)?;
    Ok(e.report)
}

/// Checks `text` (a task.check) without running it: what can be known
/// before the task runs (syntax, regexes, blocks' languages and ends,
/// nesting) is an error now, before a task with side effects runs. Lines
/// that generators would print are not seen, and no block runs.
///
/// It stops at `deadline` (a huge file must not hold the run past it).
/// Returns whether it ran out of time (then the run has too).
pub fn precheck(text: &str, file: &str, deadline: Option<Instant>) -> Result<bool, TaskError> {
    struct NoBlocks(Option<Instant>);
    impl Blocks for NoBlocks {
        fn run(&mut self, _: Lang, _: &str) -> Result<BlockRun, TaskError> {
            Ok(BlockRun::default())
        }
        fn deadline(&self) -> Option<Instant> {
            self.0
        }
    }
    let mut blocks = NoBlocks(deadline);
    let mut cx = Context {
        file,
        cache_root: Path::new("/nonexistent"),
        blocks: &mut blocks,
    };
    let mut e = Eval {
        data: Cow::Owned(Vec::new()),
        ctx: Ctx::default_ctx(),
        report: Report::default(),
        last: None,
        dirty: false,
        blocks: 0,
        dry: true,
        cx: &mut cx,
    };
    let lines: Vec<&str> = text.lines().collect();
    e.validate(&lines, &Origin::File, 0)?;
    Ok(e.report.timed_out)
}

/// Where a line comes from, for error messages.
enum Origin {
    File,
    Generator { line: usize },
}

struct Heredoc<'a> {
    marker: String,
    generator: bool,
    body: Vec<&'a str>,
    line: usize,
}

/// The state the files describe: the last check's captures and matches
/// (captures made from the matcher when first needed).
struct Last {
    captures: Option<Vec<Capture>>,
    matched: Vec<usize>,
    matcher: Matcher,
    /// The context's streams after the check (`end:` forgets them, the
    /// files do not).
    streams: BTreeMap<usize, Vec<Item>>,
}

struct Eval<'d, 'c, 'x> {
    data: Cow<'d, [String]>,
    ctx: Ctx,
    report: Report,
    last: Option<Last>,
    /// The files are older than `last`/the streams.
    dirty: bool,
    /// Code and generator blocks run so far.
    blocks: usize,
    /// Checking the file only: no block runs, no file is read or written.
    dry: bool,
    cx: &'c mut Context<'x>,
}

fn location(cx: &Context, origin: &Origin, line: usize, col: usize) -> String {
    match origin {
        Origin::File => format!("{}:{line}:{col}", cx.file),
        Origin::Generator { line: g } => {
            format!(
                "{}:{g}: generator output line {line}, column {col}",
                cx.file
            )
        }
    }
}

impl Eval<'_, '_, '_> {
    fn err(&self, origin: &Origin, line: usize, col: usize, msg: impl AsRef<str>) -> TaskError {
        TaskError::Check(format!(
            "{}: {}",
            location(self.cx, origin, line, col),
            msg.as_ref()
        ))
    }

    fn validate(&mut self, lines: &[&str], origin: &Origin, depth: usize) -> Result<(), TaskError> {
        let mut heredoc: Option<Heredoc> = None;
        let deadline = self.cx.blocks.deadline();
        for (i, raw) in lines.iter().enumerate() {
            if self.report.aborted.is_some() || self.report.timed_out {
                return Ok(());
            }
            // The checks run here, not in a process the deadline kills.
            if deadline.is_some_and(|d| Instant::now() >= d) {
                self.report.timed_out = true;
                return Ok(());
            }
            let n = i + 1;
            if let Some(h) = heredoc.as_mut() {
                if raw.trim() == h.marker {
                    let h = heredoc.take().expect("open heredoc");
                    self.block(&h.body.join("\n"), h.generator, true, origin, h.line, depth)?;
                } else {
                    h.body.push(raw);
                }
                continue;
            }
            let t = raw.trim_start();
            if t.trim_end().is_empty() || t.starts_with('#') {
                continue;
            }
            let l = match raw.find('#') {
                Some(k) => &raw[..k],
                None => raw,
            };
            let t = l.trim_start();
            let col = |s: &str| s.as_ptr() as usize - raw.as_ptr() as usize + 1;
            if let Some(rest) = t.strip_prefix("note:") {
                self.report
                    .lines
                    .push(ReportLine::Note(rest.trim_start().to_string()));
                continue;
            }
            if let Some(rest) = t.strip_prefix("within:") {
                if rest.starts_with(char::is_whitespace) {
                    let pat = rest.trim();
                    self.open(origin, n)?;
                    match line_number(pat) {
                        Some(k) => self.ctx = Ctx::within(&self.data, &Boundary::Line(k)),
                        None => {
                            let (re, groups) = self.regex(pat, origin, n, col(pat))?;
                            self.ctx = Ctx::within(&self.data, &Boundary::Regex(re.clone()));
                            self.check(pat, Matcher::Regex { re, groups }, false, false);
                        }
                    }
                    continue;
                }
            }
            if let Some((a, b)) = between(t) {
                self.open(origin, n)?;
                let a = self.boundary(a, origin, n, col(a))?;
                let b = self.boundary(b, origin, n, col(b))?;
                self.ctx = Ctx::range(&self.data, &a, &b);
                continue;
            }
            if t.trim_end() == "begin:" {
                self.open(origin, n)?;
                self.ctx = Ctx::sequence(self.data.len());
                continue;
            }
            if t.trim_end() == "end:" {
                self.ctx = Ctx::default_ctx();
                continue;
            }
            if let Some(rest) = t.strip_prefix("source:") {
                let path = rest.trim();
                if rest.starts_with(char::is_whitespace)
                    && !path.is_empty()
                    && !path.contains(char::is_whitespace)
                {
                    if self.dry {
                        // The task may write it: read when the checks run.
                        continue;
                    }
                    self.flush()?;
                    // Read as output is kept: bounded, bad bytes replaced.
                    let text = limits::read_text(Path::new(path), limits::MAX_OUTPUT as u64)
                        .map_err(|e| {
                            self.err(origin, n, col(path), format!("source: {path}: {e}"))
                        })?;
                    self.data = Cow::Owned(text.lines().map(str::to_string).collect());
                    self.ctx = Ctx::default_ctx();
                    continue;
                }
            }
            if let Some((ok, msg)) = assert_line(t) {
                if !ok {
                    self.report.failed += 1;
                }
                self.report.lines.push(ReportLine::Check {
                    message: format!("<{msg}>"),
                    ok,
                });
                continue;
            }
            if let Some((generator, rest)) = code_line(t) {
                match heredoc_marker(rest) {
                    Some(marker) => {
                        heredoc = Some(Heredoc {
                            marker: marker.to_string(),
                            generator,
                            body: Vec::new(),
                            line: n,
                        })
                    }
                    None => self.block(rest, generator, false, origin, n, depth)?,
                }
                continue;
            }
            let regexp = [
                ("regexp:", false, false),
                ("~regexp:", false, true),
                ("!regexp:", true, false),
            ]
            .into_iter()
            .find_map(|(p, neg, soft)| t.strip_prefix(p).map(|r| (r.trim(), neg, soft)));
            if let Some((pat, negate, soft)) = regexp {
                let (re, groups) = self.regex(pat, origin, n, col(pat))?;
                self.check(pat, Matcher::Regex { re, groups }, negate, soft);
                continue;
            }
            let pat = t.trim();
            let m = if pat == ":any:" {
                Matcher::Any
            } else if let Some(k) = line_number(pat) {
                Matcher::Line(k)
            } else {
                Matcher::Plain(pat.to_string())
            };
            self.check(pat, m, false, false);
        }
        if let Some(h) = heredoc {
            return Err(self.err(
                origin,
                h.line,
                1,
                format!(
                    "the block opened here with <<{} is never closed (a line with just {} ends it)",
                    h.marker, h.marker
                ),
            ));
        }
        Ok(())
    }

    /// A new block context; Sparrow6 forbids opening one inside another.
    fn open(&mut self, origin: &Origin, n: usize) -> Result<(), TaskError> {
        if self.ctx.kind != Kind::Default {
            return Err(self.err(
                origin,
                n,
                1,
                "a block (within:, between:, begin:) cannot start inside another; close the first with end:",
            ));
        }
        Ok(())
    }

    fn regex(
        &self,
        pat: &str,
        origin: &Origin,
        n: usize,
        col: usize,
    ) -> Result<(regex::Regex, Vec<usize>), TaskError> {
        // The translator recurses once per group: too many could overflow
        // the stack (an abort, not an error). Counted, not matched: a
        // quoted or escaped bracket counts too, which errs on the safe side.
        if pat.len() > MAX_LINE {
            return Err(self.err(origin, n, col, "regexp: longer than 64 KiB"));
        }
        let groups = pat.matches(['(', '[', '%']).count() + pat.matches("$<").count();
        if groups > MAX_REGEX_GROUPS {
            return Err(self.err(
                origin,
                n,
                col,
                format!(
                    "regexp: too complex: more than {MAX_REGEX_GROUPS} groups ( ) [ ], captures $<..>= and separators %"
                ),
            ));
        }
        let rust = sparrow_regex::translate(pat)
            .map_err(|e| self.err(origin, n, col + e.col - 1, format!("regexp: {}", e.message)))?;
        let re = regex::Regex::new(&rust)
            .map_err(|e| self.err(origin, n, col, format!("regexp: {e}")))?;
        Ok((re, positional_groups(&rust)))
    }

    fn boundary(
        &self,
        pat: &str,
        origin: &Origin,
        n: usize,
        col: usize,
    ) -> Result<Boundary, TaskError> {
        let pat = pat.trim();
        Ok(match line_number(pat) {
            Some(k) => Boundary::Line(k),
            None => Boundary::Regex(self.regex(pat, origin, n, col)?.0),
        })
    }

    fn check(&mut self, pat: &str, m: Matcher, negate: bool, soft: bool) {
        let found = self.ctx.check(&self.data, &m, negate);
        let message = format!(
            "stdout match {}<{}{pat}>",
            self.ctx.kind.tag(),
            if negate { "!" } else { "" }
        );
        if !found.status && !soft {
            self.report.failed += 1;
        }
        self.report.lines.push(ReportLine::Check {
            message,
            ok: found.status,
        });
        self.last = Some(Last {
            captures: found.captures,
            matched: found.matched,
            matcher: m,
            streams: self.ctx.streams.clone(),
        });
        self.dirty = true;
    }

    /// Brings the files blocks read up to date.
    fn flush(&mut self) -> Result<(), TaskError> {
        if !self.dirty {
            return Ok(());
        }
        self.dirty = false;
        let Some(last) = &mut self.last else {
            return Ok(());
        };
        let data = &self.data;
        let captures = last
            .captures
            .get_or_insert_with(|| context::captures_of(data, &last.matcher, &last.matched));
        files::write(
            self.cx.cache_root,
            data,
            captures,
            &last.matched,
            &last.streams,
        )
    }

    fn block(
        &mut self,
        body: &str,
        generator: bool,
        heredoc: bool,
        origin: &Origin,
        n: usize,
        depth: usize,
    ) -> Result<(), TaskError> {
        let (lang, code) = if heredoc {
            block_lang(body)
        } else {
            (Some(Lang::Perl), body.to_string())
        };
        let Some(lang) = lang else {
            return Err(self.err(
                origin,
                n,
                1,
                "this block's language is not supported; start it with a line !bash, !perl, !python, !ruby or !raku",
            ));
        };
        self.blocks += 1;
        if self.blocks > MAX_BLOCKS {
            return Err(self.err(
                origin,
                n,
                1,
                format!("more than {MAX_BLOCKS} code and generator blocks (does a generator print itself?)"),
            ));
        }
        if self.dry {
            return Ok(());
        }
        self.flush()?;
        let ran = self.cx.blocks.run(lang, &code)?;
        if ran.exit != 0 {
            self.report.aborted = Some(Aborted {
                code: ran.exit,
                stderr: ran.stderr,
            });
            return Ok(());
        }
        if !generator {
            self.report
                .lines
                .extend(ran.stdout.into_iter().map(ReportLine::Note));
            return Ok(());
        }
        if depth >= MAX_GENERATOR_DEPTH {
            return Err(self.err(
                origin,
                n,
                1,
                format!("generators nest more than {MAX_GENERATOR_DEPTH} deep (does a generator print itself?)"),
            ));
        }
        let lines: Vec<&str> = ran.stdout.iter().map(String::as_str).collect();
        let inner = Origin::Generator {
            line: match origin {
                Origin::File => n,
                Origin::Generator { line } => *line,
            },
        };
        self.validate(&lines, &inner, depth + 1)
    }
}

#[cfg(test)]
mod tests;
