//! The loader's mutable state, shared by the natives of one engine (they
//! are closures registered once and run for every definition).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use rhai::{Module, Shared, AST};

use crate::host::ModuleSource;
use crate::lower::RawDecl;

#[derive(Default)]
pub(crate) struct State {
    pub(crate) lib: Option<Rc<dyn ModuleSource>>,
    pub(crate) decls: Vec<RawDecl>,
    /// Compiled modules by source name, kept across loads.
    pub(crate) modules: HashMap<String, (Rc<AST>, Shared<Module>)>,
    /// Source name and AST of the definition being evaluated.
    pub(crate) main: Option<(String, Rc<AST>)>,
    /// Modules being evaluated (import cycle detection; no declarations there).
    pub(crate) loading: Vec<String>,
    /// Source name of each module by the plain name it was imported as.
    pub(crate) module_sources: HashMap<String, String>,
    pub(crate) closure_depth: u32,
    /// Service families being expanded (a family's `unit()` may call
    /// `task_run` itself; each call starts Rhai's call-level count afresh).
    pub(crate) family_depth: u32,
    pub(crate) prints: Vec<String>,
    /// A daemon's loader (runtime functions are real).
    pub(crate) runtime: bool,
}

pub(crate) type Shared2 = Rc<RefCell<State>>;
