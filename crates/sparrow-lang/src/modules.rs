//! Modules: where `import "name"` looks (`lib/` beside the definition
//! through a [`ModuleSource`], then the built-in library), compiling and
//! evaluating each once per loader, and refusing cycles.

use std::rc::Rc;

use rhai::{Engine, EvalAltResult, Module, ModuleResolver, Position, Scope, Shared};

use crate::diag::err;
use crate::library;
use crate::state::Shared2;

/// Replaces a `#!...` first line with a comment of the same length, so that
/// shebang units parse and positions stay right.
pub(crate) fn strip_shebang(text: &str) -> std::borrow::Cow<'_, str> {
    match text.strip_prefix("#!") {
        Some(rest) => format!("//{rest}").into(),
        None => text.into(),
    }
}

pub(crate) struct Resolver {
    pub(crate) state: Shared2,
}

impl Resolver {
    fn lookup(&self, name: &str, pos: Position) -> Result<(String, String), Box<EvalAltResult>> {
        let valid = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid {
            return Err(err(
                format!("module name {name:?} is not a plain name"),
                Some("modules are files lib/NAME.sparrow beside the definition; paths are not allowed"),
                pos,
            ));
        }
        let lib = self.state.borrow().lib.clone();
        if let Some(lib) = lib {
            match lib.module(name) {
                Ok(Some(m)) => return Ok((m.path.display().to_string(), m.text)),
                Ok(None) => {}
                Err(e) => return Err(err(format!("module {name:?}: {e}"), None, pos)),
            }
        }
        match library::module(name) {
            Some((source, text)) => Ok((source, text.to_string())),
            None => Err(Box::new(EvalAltResult::ErrorModuleNotFound(
                name.to_string(),
                pos,
            ))),
        }
    }

    /// Compiles and evaluates module `name` once; returns its source name.
    pub(crate) fn load(
        &self,
        engine: &Engine,
        name: &str,
        pos: Position,
    ) -> Result<String, Box<EvalAltResult>> {
        let (source, text) = self.lookup(name, pos)?;
        self.state
            .borrow_mut()
            .module_sources
            .insert(name.to_string(), source.clone());
        if self.state.borrow().modules.contains_key(&source) {
            return Ok(source);
        }
        if self.state.borrow().loading.contains(&source) {
            return Err(err(
                format!("module {name:?} imports itself (an import cycle)"),
                None,
                pos,
            ));
        }
        let mut ast = engine.compile(strip_shebang(&text)).map_err(|e| {
            Box::new(EvalAltResult::ErrorInModule(
                source.clone(),
                Box::new(e.into()),
                pos,
            ))
        })?;
        ast.set_source(source.as_str());
        if source.starts_with(library::BUILTIN_PREFIX) {
            // Built-in families run for many definitions and their own key
            // positions are never shown (diagnostics point at the caller),
            // so their constant maps may be folded once, here.
            ast = engine.optimize_ast(&Scope::new(), ast, rhai::OptimizationLevel::Simple);
        }
        self.state.borrow_mut().loading.push(source.clone());
        let module = Module::eval_ast_as_new(Scope::new(), &ast, engine);
        self.state.borrow_mut().loading.pop();
        let module =
            module.map_err(|e| Box::new(EvalAltResult::ErrorInModule(source.clone(), e, pos)))?;
        self.state
            .borrow_mut()
            .modules
            .insert(source.clone(), (Rc::new(ast), Shared::new(module)));
        Ok(source)
    }
}

impl ModuleResolver for Resolver {
    fn resolve(
        &self,
        engine: &Engine,
        _source: Option<&str>,
        path: &str,
        pos: Position,
    ) -> Result<Shared<Module>, Box<EvalAltResult>> {
        let source = self.load(engine, path, pos)?;
        Ok(self.state.borrow().modules[&source].1.clone())
    }
}

/// `Engine::set_module_resolver` takes ownership; the loader keeps a handle
/// to the same resolver for `task_run` families.
pub(crate) struct ResolverHandle(pub(crate) Rc<Resolver>);

impl ModuleResolver for ResolverHandle {
    fn resolve(
        &self,
        engine: &Engine,
        source: Option<&str>,
        path: &str,
        pos: Position,
    ) -> Result<Shared<Module>, Box<EvalAltResult>> {
        self.0.resolve(engine, source, path, pos)
    }
}
