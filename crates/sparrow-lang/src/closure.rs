//! Closures kept for later: the function pointer and the script it lives in.

use std::fmt;
use std::rc::Rc;

use rhai::{FnPtr, ImmutableString, Shared, AST};

/// A closure from a definition (`|| ..` under a runtime key or a dynamic
/// property), with the AST that defines it, so that it can be called long
/// after the definition was evaluated (by the daemon, on its interval).
#[derive(Clone)]
pub struct Closure {
    /// The function pointer, with captured variables curried in.
    pub fn_ptr: FnPtr,
    /// The script (definition or module) that defines the function.
    pub ast: Rc<AST>,
    /// Parameters it takes when called (captured variables excluded).
    pub params: usize,
    /// Source name of that script, for diagnostics.
    pub source: String,
    /// The modules the definition imported at its top level (`import "h"
    /// as h;`), so that the closure can call `h::f()` when it is called on
    /// its own, long after the definition ran.
    pub imports: Vec<(ImmutableString, Shared<rhai::Module>)>,
}

impl Closure {
    /// Where the closure's body starts, `file:line:col`, for messages about
    /// what it returned.
    pub fn place(&self) -> String {
        let name = self.fn_ptr.fn_name();
        match self.ast.iter_fn_def().find(|f| f.name == name) {
            Some(def) => {
                let pos = def.body.start_position();
                format!(
                    "{}:{}:{}",
                    self.source,
                    pos.line().unwrap_or(0),
                    pos.position().unwrap_or(0)
                )
            }
            None => self.source.clone(),
        }
    }
}

impl fmt::Debug for Closure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Closure({} in {}, {} params)",
            self.fn_ptr.fn_name(),
            self.source,
            self.params
        )
    }
}
