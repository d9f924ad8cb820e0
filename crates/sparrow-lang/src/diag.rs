//! Diagnostics: what went wrong, where (file:line:col), and what to do.
//!
//! Rhai reports positions but not for map keys, so key positions are
//! recovered from the AST (every `#{ key: .. }` literal) and matched to the
//! declaration that used them.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;

use rhai::{ASTNode, EvalAltResult, Expr, Position, AST};

/// How bad a diagnostic is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Severity {
    /// Something the user should know; nothing is wrong.
    Note,
    /// Probably a mistake; the unit is still written.
    Warning,
    /// The definition cannot be used; none of its units are written.
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Note => "note",
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// A message about a definition, tied to a place in a file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Diagnostic {
    /// How bad it is.
    pub severity: Severity,
    /// The file the position is in (a definition, a `lib/` module, or
    /// `<builtin>/NAME.sparrow` for the built-in library).
    pub file: PathBuf,
    /// 1-based line; 0 when unknown.
    pub line: usize,
    /// 1-based column (in characters); 0 when unknown.
    pub col: usize,
    /// Length of the offending text in characters (for underlining), at least 1.
    pub len: usize,
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    pub help: Option<String>,
}

impl Diagnostic {
    /// Whether this diagnostic makes the definition unusable.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    /// `file:line:col: error: message; help` on one line, for logs
    /// (`file: error: ..` when the place in the file is not known).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.col)?;
        }
        write!(f, ": {}: {}", self.severity, self.message)?;
        if let Some(help) = &self.help {
            write!(f, " ({help})")?;
        }
        Ok(())
    }
}

/// A structured error thrown by our native functions, so that diagnostics can
/// carry help text and point at a map key rather than at the call.
#[derive(Debug, Clone)]
pub struct ScriptError {
    /// What is wrong.
    pub message: String,
    /// What to do.
    pub help: Option<String>,
    /// A map key (as written) the error is about, looked up after the call.
    pub key: Option<String>,
}

impl fmt::Display for ScriptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl ScriptError {
    /// A Rhai error carrying this one, at `pos`.
    pub fn into_rhai(self, pos: Position) -> Box<EvalAltResult> {
        Box::new(EvalAltResult::ErrorRuntime(rhai::Dynamic::from(self), pos))
    }
}

/// A source position: which file, where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    /// Source name as set on the AST (a path, or `<builtin>/NAME.sparrow`).
    pub source: String,
    /// Position in it.
    pub pos: Position,
}

/// Positions of map-literal keys per source, built on demand.
#[derive(Default)]
pub struct KeyIndex {
    by_source: HashMap<String, HashMap<String, Vec<Position>>>,
}

impl KeyIndex {
    /// Indexes the map literals of `ast` under `source`, once.
    pub fn add(&mut self, source: &str, ast: &AST) {
        if self.by_source.contains_key(source) {
            return;
        }
        let mut keys: HashMap<String, Vec<Position>> = HashMap::new();
        ast.walk(&mut |path: &[ASTNode]| {
            if let Some(ASTNode::Expr(Expr::Map(m, _))) = path.last() {
                for (ident, _) in m.0.iter() {
                    keys.entry(ident.name.to_string())
                        .or_default()
                        .push(ident.pos);
                }
            }
            true
        });
        for v in keys.values_mut() {
            v.sort_by_key(|p| (p.line(), p.position()));
        }
        self.by_source.insert(source.to_string(), keys);
    }

    /// Where `key` is written in `source`: the first occurrence at or after
    /// `after` (the declaration that used it), else the last one before it.
    pub fn find(&self, source: &str, key: &str, after: Position) -> Option<Position> {
        let positions = self.by_source.get(source)?.get(key)?;
        let at = (after.line().unwrap_or(0), after.position().unwrap_or(0));
        positions
            .iter()
            .find(|p| (p.line().unwrap_or(0), p.position().unwrap_or(0)) >= at)
            .or_else(|| positions.last())
            .copied()
    }
}

/// One frame of a Rhai error: a place and what happened there.
struct Frame {
    place: Place,
}

/// Turns a Rhai evaluation error into a diagnostic. `main` is the source name
/// of the definition being loaded; the diagnostic points at the innermost
/// place that is not built-in library code, so users see their own line.
pub fn from_rhai(err: &EvalAltResult, main: &str, index: &KeyIndex) -> Diagnostic {
    let mut frames: Vec<Frame> = Vec::new();
    let mut source = main.to_string();
    let mut cur = err;
    loop {
        match cur {
            EvalAltResult::ErrorInFunctionCall(_, callee_src, inner, pos) => {
                frames.push(Frame {
                    place: Place {
                        source: source.clone(),
                        pos: *pos,
                    },
                });
                if !callee_src.is_empty() {
                    source = callee_src.clone();
                }
                cur = inner;
            }
            EvalAltResult::ErrorInModule(name, inner, pos) => {
                frames.push(Frame {
                    place: Place {
                        source: source.clone(),
                        pos: *pos,
                    },
                });
                source = name.clone();
                cur = inner;
            }
            _ => {
                frames.push(Frame {
                    place: Place {
                        source: source.clone(),
                        pos: cur.position(),
                    },
                });
                break;
            }
        }
    }
    let (message, help, key) = describe(cur);
    let primary = frames
        .iter()
        .rev()
        .find(|f| {
            !f.place.source.starts_with(crate::library::BUILTIN_PREFIX) && !f.place.pos.is_none()
        })
        .or(frames.last())
        .map(|f| f.place.clone())
        .unwrap_or(Place {
            source: main.to_string(),
            pos: Position::NONE,
        });
    let pos = key
        .as_deref()
        .and_then(|k| index.find(&primary.source, k, primary.pos))
        .unwrap_or(primary.pos);
    Diagnostic {
        severity: Severity::Error,
        file: PathBuf::from(&primary.source),
        line: pos.line().unwrap_or(0),
        col: pos.position().unwrap_or(0),
        len: key.map_or(1, |k| k.chars().count().max(1)),
        message,
        help,
    }
}

/// Message, help and key for the innermost error.
fn describe(err: &EvalAltResult) -> (String, Option<String>, Option<String>) {
    use EvalAltResult as E;
    match err {
        E::ErrorRuntime(value, _) => {
            if let Some(se) = value.read_lock::<ScriptError>() {
                return (se.message.clone(), se.help.clone(), se.key.clone());
            }
            // A failed task_run (a map, so scripts can catch and read it).
            if let Some(m) = value.read_lock::<rhai::Map>() {
                if let (Some(msg), true) = (m.get("message"), m.contains_key("exit_code")) {
                    return (msg.to_string(), None, None);
                }
            }
            (format!("thrown: {value}"), None, None)
        }
        E::ErrorParsing(kind, _) => (format!("syntax error: {kind}"), None, None),
        E::ErrorTooManyOperations(_) => (
            format!("evaluation exceeded {} operations", crate::limits::MAX_OPERATIONS),
            Some("definitions run at every boot and must be quick; is there an endless loop?".into()),
            None,
        ),
        E::ErrorTerminated(_, _) => (
            format!("evaluation exceeded the wall-clock limit of {} ms", crate::limits::WALL_CLOCK.as_millis()),
            Some("definitions run at every boot and must be quick; is there an endless loop?".into()),
            None,
        ),
        E::ErrorFunctionNotFound(sig, _) => {
            let name = sig.split([' ', '(']).next().unwrap_or(sig);
            let help = crate::names::closest(name, crate::limits::function_names())
                .filter(|c| *c != name)
                .map(|c| format!("did you mean {c}()?"))
                .or_else(|| Some("see the functions in the definitions reference (docs/language.md)".into()));
            (format!("no function {sig}"), help, None)
        }
        E::ErrorModuleNotFound(name, _) => (
            format!("no module {name:?}"),
            Some(format!(
                "modules are looked up in lib/ beside the definition, then in the built-in library ({})",
                crate::library::names().join(", ")
            )),
            None,
        ),
        E::ErrorVariableNotFound(name, _) => (format!("no variable {name:?}"), None, None),
        other => {
            let text = other.to_string();
            let suffix = format!(" ({})", other.position());
            (text.strip_suffix(&suffix).unwrap_or(&text).to_string(), None, None)
        }
    }
}

/// A diagnostic from a parse error in `source`.
pub fn from_parse(err: &rhai::ParseError, source: &str) -> Diagnostic {
    Diagnostic {
        severity: Severity::Error,
        file: PathBuf::from(source),
        line: err.1.line().unwrap_or(0),
        col: err.1.position().unwrap_or(0),
        len: 1,
        message: format!("syntax error: {}", err.0),
        help: None,
    }
}
pub(crate) fn err(msg: impl Into<String>, help: Option<&str>, pos: Position) -> Box<EvalAltResult> {
    ScriptError {
        message: msg.into(),
        help: help.map(str::to_string),
        key: None,
    }
    .into_rhai(pos)
}
