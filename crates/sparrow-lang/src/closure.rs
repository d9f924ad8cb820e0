//! Closures kept for later: the function pointer and the script it lives in.

use std::fmt;
use std::rc::Rc;

use rhai::{FnPtr, AST};

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
