//! Evaluating definition scripts with Rhai.
//!
//! A [`Loader`] owns one configured Rhai engine and is reused for every file
//! (creating an engine costs far more than evaluating a small definition).
//! Scripts call the natives registered here (`service`, `timer`, `task_run`,
//! the facts) and those natives record raw declarations; validation and
//! lowering happen afterwards in `lower`. The loader reads nothing itself:
//! facts come from a [`Host`], modules from a [`ModuleSource`].
//!
//! Sandbox: an operation limit and a wall-clock limit per evaluation, no
//! `eval`, modules only from `lib/` and the built-in library, and no function
//! that writes or talks to the network.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rhai::{
    CallFnOptions, Dynamic, Engine, EvalAltResult, Expr, FnPtr, Map, Module, ModuleResolver,
    NativeCallContext, Position, Scope, Shared, AST,
};

use crate::closure::Closure;
use crate::diag::{self, Diagnostic, KeyIndex, Place, ScriptError, Severity};
use crate::host::{Host, RuntimeHost};
use crate::lower::{self, UnitDecl, UnitKind};
use crate::value::Raw;
use crate::{keys, library};
use sparrow_unit::UnitName;

/// Operations one evaluation (a definition, a module, a closure) may take.
pub const MAX_OPERATIONS: u64 = 2_000_000;
/// How deeply service families may expand one another.
const MAX_FAMILY_DEPTH: u32 = 8;
/// Wall-clock time one evaluation may take.
pub const WALL_CLOCK: Duration = Duration::from_secs(2);

/// Functions a definition can call at generation time (for "did you mean"
/// hints, together with the runtime ones in `RUNTIME_ONLY`).
const GENERATION_FUNCTIONS: &[&str] = &[
    "service",
    "timer",
    "task_run",
    "os",
    "os_version",
    "hostname",
    "arch",
    "kernel",
    "virtualization",
    "env",
    "memory_total",
    "cpu_count",
    "file_exists",
    "parse_size",
    "raw",
    "family_params",
];

/// Every function a definition can call.
pub fn function_names() -> impl Iterator<Item = &'static str> {
    GENERATION_FUNCTIONS
        .iter()
        .copied()
        .chain(RUNTIME_ONLY.iter().map(|(n, _)| *n))
}

/// Runtime-only functions and their arities: at generation time they raise
/// a clear error instead of "function not found"; with a [`RuntimeHost`]
/// the first nine are real and the rest say they are not available yet.
const RUNTIME_ONLY: &[(&str, usize)] = &[
    ("available_memory", 0),
    ("free_memory", 0),
    ("load", 0),
    ("psi", 1),
    ("service_memory", 1),
    ("service_state", 1),
    ("connections", 1),
    ("http_get", 1),
    ("read_file", 1),
    ("journal", 2),
    ("alert", 2),
    ("log", 1),
];

/// `task_run` plugins that declare a plain service (Sparrow6 spelling).
pub const SYSTEMD_PLUGINS: &[&str] = &[
    "systemd",
    "systemd-dynamic",
    "systemd-with-health",
    "systemd-pressure-aware",
    "systemd-adaptive",
    "systemd-pattern-monitor",
];

/// Where `import "name"` finds user modules.
pub trait ModuleSource {
    /// The user module `name` (from `lib/` beside the definition), `Ok(None)`
    /// when there is none, or an error message (unreadable, unsafe owner).
    fn module(&self, name: &str) -> Result<Option<ModuleText>, String>;
}

/// A module's text and where it came from.
#[derive(Debug, Clone)]
pub struct ModuleText {
    /// Its path, used in diagnostics.
    pub path: PathBuf,
    /// Its source.
    pub text: String,
}

/// No user modules: only the built-in library.
pub struct NoModules;

impl ModuleSource for NoModules {
    fn module(&self, _name: &str) -> Result<Option<ModuleText>, String> {
        Ok(None)
    }
}

/// What `service()`, `timer()` and `task_run()` recorded, before validation.
pub(crate) struct RawDecl {
    pub kind: UnitKind,
    pub name: Option<String>,
    pub map: Map,
    /// Keys whose value was a closure, evaluated now; the daemon re-evaluates.
    pub dynamic: Vec<(String, Closure)>,
    /// Where the declaring call is.
    pub place: Place,
}

#[derive(Default)]
struct State {
    lib: Option<Rc<dyn ModuleSource>>,
    decls: Vec<RawDecl>,
    /// Compiled modules by source name, kept across loads.
    modules: HashMap<String, (Rc<AST>, Shared<Module>)>,
    /// Source name and AST of the definition being evaluated.
    main: Option<(String, Rc<AST>)>,
    /// Modules being evaluated (import cycle detection; no declarations there).
    loading: Vec<String>,
    /// Source name of each module by the plain name it was imported as.
    module_sources: HashMap<String, String>,
    closure_depth: u32,
    /// Service families being expanded (a family's `unit()` may call
    /// `task_run` itself; each call starts Rhai's call-level count afresh).
    family_depth: u32,
    prints: Vec<String>,
    /// A daemon's loader (runtime functions are real).
    runtime: bool,
}

type Shared2 = Rc<RefCell<State>>;

/// The result of loading one definition file.
#[derive(Debug)]
pub struct Loaded {
    /// The units it declares; empty when there are errors.
    pub units: Vec<UnitDecl>,
    /// Errors, warnings and notes, in file order.
    pub diagnostics: Vec<Diagnostic>,
}

impl Loaded {
    /// Whether the definition has an error (and so declares nothing).
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Evaluates definition files. Reuse one loader for many files.
pub struct Loader {
    engine: Engine,
    state: Shared2,
    deadline: Rc<Cell<Instant>>,
    /// The unit a runtime call is about (for `log()`).
    current_unit: Rc<RefCell<String>>,
}

fn err(msg: impl Into<String>, help: Option<&str>, pos: Position) -> Box<EvalAltResult> {
    ScriptError {
        message: msg.into(),
        help: help.map(str::to_string),
        key: None,
    }
    .into_rhai(pos)
}

/// Replaces a `#!...` first line with a comment of the same length, so that
/// shebang units parse and positions stay right.
fn strip_shebang(text: &str) -> std::borrow::Cow<'_, str> {
    match text.strip_prefix("#!") {
        Some(rest) => format!("//{rest}").into(),
        None => text.into(),
    }
}

struct Resolver {
    state: Shared2,
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
    fn load(
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

/// Finds the AST that defines closure `f` (the definition or a module).
fn owner_ast(state: &State, f: &FnPtr) -> Option<(String, Rc<AST>)> {
    let name = f.fn_name();
    let has = |ast: &AST| ast.iter_functions().any(|m| m.name == name);
    if let Some((src, ast)) = &state.main {
        if has(ast) {
            return Some((src.clone(), ast.clone()));
        }
    }
    state
        .modules
        .iter()
        .find(|(_, (ast, _))| has(ast))
        .map(|(src, (ast, _))| (src.clone(), ast.clone()))
}

/// The closure behind `f` with the script that defines it, or `None` if
/// its function is not found.
fn resolve_closure(state: &State, f: &FnPtr) -> Option<Closure> {
    let (source, ast) = owner_ast(state, f)?;
    let name = f.fn_name();
    let params = ast.iter_functions().find(|m| m.name == name)?.params.len();
    let imports = top_level_imports(state, &ast);
    Some(Closure {
        fn_ptr: f.clone(),
        params: params.saturating_sub(f.curry().len()),
        ast,
        source,
        imports,
    })
}

/// The modules `ast` imports at its top level, by alias, as loaded.
fn top_level_imports(state: &State, ast: &AST) -> Vec<(rhai::ImmutableString, Shared<Module>)> {
    ast.statements()
        .iter()
        .filter_map(|stmt| {
            let rhai::Stmt::Import(x, _) = stmt else {
                return None;
            };
            let (Expr::StringConstant(path, _), alias) = (&x.0, &x.1) else {
                return None;
            };
            let source = state.module_sources.get(path.as_str())?;
            let (_, module) = state.modules.get(source)?;
            Some((alias.name.clone(), module.clone()))
        })
        .collect()
}

/// Calls a zero-argument closure at generation time.
fn call_closure(
    state: &Shared2,
    ctx: &NativeCallContext,
    f: &FnPtr,
    what: &str,
) -> Result<Dynamic, Box<EvalAltResult>> {
    let owner = owner_ast(&state.borrow(), f);
    let main_src = state.borrow().main.as_ref().map(|(s, _)| s.clone());
    let pos = ctx.call_position();
    if let Some(n) = resolve_closure(&state.borrow(), f).map(|c| c.params) {
        if n != 0 {
            return Err(err(
                format!("the closure for {what} takes {n} parameter(s), but a dynamic property is called with none"),
                Some("write it as || expression"),
                pos,
            ));
        }
    }
    state.borrow_mut().closure_depth += 1;
    let result = match &owner {
        Some((src, _)) if Some(src) == main_src.as_ref() => {
            f.call_within_context::<Dynamic>(ctx, ())
        }
        Some((_, ast)) => f.call::<Dynamic>(ctx.engine(), ast, ()),
        None => f.call_within_context::<Dynamic>(ctx, ()),
    };
    state.borrow_mut().closure_depth -= 1;
    result.map_err(|e| {
        let src = owner.map(|(s, _)| s).unwrap_or_default();
        Box::new(EvalAltResult::ErrorInFunctionCall(
            format!("closure for {what}"),
            src,
            e,
            pos,
        ))
    })
}

fn declare(
    state: &Shared2,
    ctx: &NativeCallContext,
    kind: UnitKind,
    name: Option<String>,
    mut map: Map,
) -> Result<Dynamic, Box<EvalAltResult>> {
    let pos = ctx.call_position();
    {
        let s = state.borrow();
        if !s.loading.is_empty() {
            return Err(err(
                "units cannot be declared at the top level of a module",
                Some("a module exports functions (such as fn unit(params)); the definition that imports it declares the unit"),
                pos,
            ));
        }
        if s.closure_depth > 0 {
            return Err(err("units cannot be declared inside a closure", None, pos));
        }
    }
    let mut dynamic = Vec::new();
    for (key, value) in map.iter_mut() {
        let Some(spec) = keys::lookup(key) else {
            continue;
        };
        if let Some(f) = crate::value::closure(value) {
            // Closures under runtime keys belong to the daemon; under static
            // keys they are dynamic properties, evaluated once now.
            if !spec.is_runtime() && !matches!(spec.kind, keys::Kind::Name | keys::Kind::Raw) {
                *value = call_closure(state, ctx, &f, &format!("`{key}`"))?;
                if let Some(c) = resolve_closure(&state.borrow(), &f) {
                    dynamic.push((key.to_string(), c));
                }
            }
        } else if spec.name == "orchestration" {
            // `orchestration.requires` is computed at generation time.
            if let Some(mut orch) = value.read_lock::<Map>().map(|m| m.clone()) {
                if let Some((rk, f)) = orch
                    .iter()
                    .find(|(k, _)| keys::normalize(k) == "requires")
                    .and_then(|(k, v)| crate::value::closure(v).map(|f| (k.clone(), f)))
                {
                    let v = call_closure(state, ctx, &f, "`orchestration.requires`")?;
                    orch.insert(rk, v);
                    *value = Dynamic::from_map(orch);
                }
            }
        }
    }
    let shown = name
        .clone()
        .or_else(|| map.get("name").and_then(|n| n.clone().into_string().ok()))
        .unwrap_or_default();
    let source = ctx.call_source().unwrap_or_default().to_string();
    state.borrow_mut().decls.push(RawDecl {
        kind,
        name,
        map,
        dynamic,
        place: Place { source, pos },
    });
    let ty = match kind {
        UnitKind::Service => sparrow_unit::UnitType::Service,
        UnitKind::Timer => sparrow_unit::UnitType::Timer,
    };
    Ok(match sparrow_unit::UnitName::of_type(&shown, ty) {
        Ok(n) => n.to_string().into(),
        Err(_) => shown.into(),
    })
}

fn task_run(
    state: &Shared2,
    resolver: &Rc<Resolver>,
    ctx: &NativeCallContext,
    desc: &str,
    plugin: &str,
    params: Map,
) -> Result<Dynamic, Box<EvalAltResult>> {
    let pos = ctx.call_position();
    if state.borrow().runtime && state.borrow().closure_depth > 0 {
        return Err(err(
            format!("task_run({desc:?}, {plugin:?}, ..): task plugins are not available in this version of systemd-sparrowd"),
            None,
            pos,
        ));
    }
    if state.borrow().closure_depth > 0 {
        return Err(err(
            format!("task_run({desc:?}, {plugin:?}, ..) cannot run at generation time"),
            Some("generators only read; run task plugins inside a hook (hooks: #{ pre_start: || task_run(..) }), which the daemon runs"),
            pos,
        ));
    }
    if SYSTEMD_PLUGINS.contains(&plugin) {
        return declare(
            state,
            ctx,
            UnitKind::Service,
            Some(desc.to_string()),
            params,
        );
    }
    let Some(family) = plugin.strip_prefix("systemd-") else {
        return Err(err(
            format!("task plugin {plugin:?} cannot run at generation time"),
            Some("at the top level, task_run declares services: plugin \"systemd\" or a service family \"systemd-NAME\"; other plugins run inside hooks"),
            pos,
        ));
    };
    let source = resolver.load(ctx.engine(), family, pos).map_err(|e| match *e {
        EvalAltResult::ErrorModuleNotFound(..) => err(
            format!("no service family {family:?} for plugin {plugin:?}"),
            Some(&format!(
                "families are modules in lib/ or built in ({}); plain services use plugin \"systemd\"",
                library::names().join(", ")
            )),
            pos,
        ),
        _ => e,
    })?;
    let ast = state.borrow().modules[&source].0.clone();
    if !ast
        .iter_functions()
        .any(|f| f.name == "unit" && f.params.len() == 1)
    {
        return Err(err(
            format!("module {family:?} is not a service family: it has no fn unit(params)"),
            None,
            pos,
        ));
    }
    let name_override = params.get("name").cloned();
    if state.borrow().family_depth >= MAX_FAMILY_DEPTH {
        return Err(err(
            format!("service family {family:?} expands families {MAX_FAMILY_DEPTH} levels deep (does its unit() call task_run with itself?)"),
            Some("a family's unit(params) returns a map; it should not declare units itself"),
            pos,
        ));
    }
    state.borrow_mut().family_depth += 1;
    let result = ctx
        .engine()
        .call_fn_with_options::<Dynamic>(
            CallFnOptions::new().eval_ast(false),
            &mut Scope::new(),
            &ast,
            "unit",
            (Dynamic::from_map(params),),
        )
        .map_err(|e| {
            Box::new(EvalAltResult::ErrorInFunctionCall(
                format!("{family}::unit"),
                source.clone(),
                e,
                pos,
            ))
        });
    state.borrow_mut().family_depth -= 1;
    let result = result?;
    if !result.is_map() {
        return Err(err(
            format!(
                "{family}::unit() returned {}, not a map",
                crate::value::type_name(&result)
            ),
            None,
            pos,
        ));
    }
    let mut map = result.cast::<Map>();
    if let Some(n) = name_override {
        map.insert("name".into(), n);
    }
    declare(state, ctx, UnitKind::Service, None, map)
}

/// `family_params(family, params, defaults)`: merges `params` over
/// `defaults`, refusing unknown names and values of the wrong type.
fn family_params(
    family: &str,
    params: Map,
    defaults: Map,
    pos: Position,
) -> Result<Map, Box<EvalAltResult>> {
    let mut out = defaults.clone();
    for (raw_key, value) in params {
        let key = keys::normalize(&raw_key);
        let Some(default) = defaults.get(key.as_str()) else {
            let mut help = format!(
                "parameters of {family}: {}",
                defaults
                    .keys()
                    .map(|k| k.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            if let Some(c) = keys::closest(&key, defaults.keys().map(|k| k.as_str())) {
                help = format!("did you mean {c:?}? ({help})");
            }
            return Err(ScriptError {
                message: format!(
                    "unknown parameter {:?} for service family {family}",
                    raw_key.as_str()
                ),
                help: Some(help),
                key: Some(raw_key.to_string()),
            }
            .into_rhai(pos));
        };
        let compatible = default.is_unit()
            || default.type_id() == value.type_id()
            || ((default.is_int() || default.is_float()) && (value.is_int() || value.is_float()))
            || (default.is_string() && value.is::<Raw>());
        if !compatible {
            return Err(ScriptError {
                message: format!(
                    "parameter {:?} of {family} expects {}, found {}",
                    raw_key.as_str(),
                    crate::value::type_name(default),
                    crate::value::type_name(&value)
                ),
                help: None,
                key: Some(raw_key.to_string()),
            }
            .into_rhai(pos));
        }
        out.insert(key.into(), value);
    }
    Ok(out)
}

fn size_getter(engine: &mut Engine, name: &'static str, shift: u32) {
    engine.register_get(
        name,
        move |x: &mut i64| -> Result<i64, Box<EvalAltResult>> {
            x.checked_mul(1i64 << shift)
                .filter(|v| *v >= 0)
                .ok_or_else(|| {
                    err(
                        format!("{x}.{name} does not fit in a size"),
                        None,
                        Position::NONE,
                    )
                })
        },
    );
    engine.register_get(
        name,
        move |x: &mut f64| -> Result<i64, Box<EvalAltResult>> {
            let v = *x * (1u64 << shift) as f64;
            if v.is_finite() && v >= 0.0 && v < i64::MAX as f64 {
                Ok(v.round() as i64)
            } else {
                Err(err(
                    format!("{x}.{name} does not fit in a size"),
                    None,
                    Position::NONE,
                ))
            }
        },
    );
}

impl Loader {
    /// A loader whose facts and environment come from `host`, for
    /// generation time: runtime functions raise an error.
    pub fn new(host: Rc<dyn Host>) -> Loader {
        Loader::build(host, None)
    }

    /// A loader for the daemon: runtime functions read `runtime`, and
    /// closures are called with [`Loader::call`].
    pub fn with_runtime(host: Rc<dyn Host>, runtime: Arc<dyn RuntimeHost>) -> Loader {
        Loader::build(host, Some(runtime))
    }

    fn build(host: Rc<dyn Host>, runtime: Option<Arc<dyn RuntimeHost>>) -> Loader {
        let current_unit = Rc::new(RefCell::new(String::new()));
        let state: Shared2 = Rc::new(RefCell::new(State {
            runtime: runtime.is_some(),
            ..State::default()
        }));
        let deadline = Rc::new(Cell::new(Instant::now() + WALL_CLOCK));
        let mut engine = Engine::new();
        // Constant folding would turn map literals into constants and lose the
        // key positions diagnostics need; definitions run once, so it buys nothing.
        engine.set_optimization_level(rhai::OptimizationLevel::None);
        // The interner's cache (256 strings by default) is evicted over and
        // over as every definition brings new names: a measurable share of
        // the generator's time, for allocations that are cheap anyway.
        engine.set_max_strings_interned(0);
        engine.set_max_operations(MAX_OPERATIONS);
        engine.set_max_call_levels(64);
        engine.set_max_expr_depths(128, 64);
        engine.set_max_string_size(1 << 20);
        engine.set_max_array_size(100_000);
        engine.set_max_map_size(10_000);
        engine.set_max_modules(64);
        engine.set_strict_variables(true);
        engine.disable_symbol("eval");
        {
            let deadline = deadline.clone();
            engine.on_progress(move |ops| {
                // Every 16 operations: a clock read costs about as much as one
                // operation, and an operation can be a native call over
                // 100,000 elements (milliseconds), so checking rarely would
                // let such loops overrun the limit many times over.
                (ops % 16 == 0 && Instant::now() > deadline.get())
                    .then(|| Dynamic::from("wall-clock limit"))
            });
        }
        {
            let st = state.clone();
            engine.on_print(move |s| st.borrow_mut().prints.push(s.to_string()));
            let st = state.clone();
            engine.on_debug(move |s, _, _| st.borrow_mut().prints.push(s.to_string()));
        }
        let resolver = Rc::new(Resolver {
            state: state.clone(),
        });
        engine.set_module_resolver(ResolverHandle(resolver.clone()));

        engine.register_type_with_name::<Raw>("raw");
        engine.register_fn("raw", |s: &str| Raw(s.to_string()));
        engine.register_fn("to_string", |r: &mut Raw| r.0.clone());
        engine.register_type_with_name::<ScriptError>("error");

        let h = host.clone();
        engine.register_fn("os", move || h.facts().os.clone());
        let h = host.clone();
        engine.register_fn("os_version", move || h.facts().os_version.clone());
        let h = host.clone();
        engine.register_fn("hostname", move || h.facts().hostname.clone());
        let h = host.clone();
        engine.register_fn("arch", move || h.facts().arch.clone());
        let h = host.clone();
        engine.register_fn("kernel", move || h.facts().kernel.clone());
        let h = host.clone();
        engine.register_fn("virtualization", move || h.facts().virtualization.clone());
        let h = host.clone();
        engine.register_fn("memory_total", move || h.facts().memory_total as i64);
        let h = host.clone();
        engine.register_fn("cpu_count", move || h.facts().cpu_count as i64);
        let h = host.clone();
        engine.register_fn("env", move |name: &str| h.env(name).unwrap_or_default());
        let h = host.clone();
        engine.register_fn("env", move |name: &str, default: Dynamic| {
            h.env(name).map(Dynamic::from).unwrap_or(default)
        });
        let h = host.clone();
        engine.register_fn("file_exists", move |path: &str| h.file_exists(path));
        engine.register_fn(
            "parse_size",
            |ctx: NativeCallContext, s: &str| -> Result<i64, Box<EvalAltResult>> {
                crate::value::parse_size(s)
                    .map_err(|i| err(i.message, i.help.as_deref(), ctx.call_position()))
                    .and_then(|b| {
                        i64::try_from(b)
                            .map_err(|_| err("size too large", None, ctx.call_position()))
                    })
            },
        );
        for (name, shift) in [("KB", 10), ("MB", 20), ("GB", 30), ("TB", 40)] {
            size_getter(&mut engine, name, shift);
        }
        for (name, shift) in [("KiB", 10), ("MiB", 20), ("GiB", 30), ("TiB", 40)] {
            size_getter(&mut engine, name, shift);
        }
        for (name, arity) in RUNTIME_ONLY {
            let name = *name;
            if runtime.is_some() && RUNTIME_PROVIDED.contains(&name) {
                continue;
            }
            let later = runtime.is_some();
            let msg = move |pos| {
                if later {
                    return err(
                        format!("{name}() is not available in this version of systemd-sparrowd"),
                        None,
                        pos,
                    );
                }
                err(
                    format!("{name}() is a runtime function and cannot be called at generation time"),
                    Some("call it inside a hook or monitor closure, which systemd-sparrowd evaluates while the service runs; generation time has facts such as memory_total() and cpu_count()"),
                    pos,
                )
            };
            match arity {
                0 => {
                    engine.register_fn(name, move |ctx: NativeCallContext| -> Result<(), _> {
                        Err(msg(ctx.call_position()))
                    });
                }
                1 => {
                    engine.register_fn(
                        name,
                        move |ctx: NativeCallContext, _: Dynamic| -> Result<(), _> {
                            Err(msg(ctx.call_position()))
                        },
                    );
                }
                _ => {
                    engine.register_fn(
                        name,
                        move |ctx: NativeCallContext, _: Dynamic, _: Dynamic| -> Result<(), _> {
                            Err(msg(ctx.call_position()))
                        },
                    );
                }
            }
        }

        let st = state.clone();
        engine.register_fn(
            "service",
            move |ctx: NativeCallContext, name: &str, map: Map| {
                declare(&st, &ctx, UnitKind::Service, Some(name.to_string()), map)
            },
        );
        if let Some(rt) = &runtime {
            register_runtime(&mut engine, rt.clone(), current_unit.clone());
        }
        let st = state.clone();
        engine.register_fn("service", move |ctx: NativeCallContext, map: Map| {
            declare(&st, &ctx, UnitKind::Service, None, map)
        });
        let st = state.clone();
        engine.register_fn(
            "timer",
            move |ctx: NativeCallContext, name: &str, map: Map| {
                declare(&st, &ctx, UnitKind::Timer, Some(name.to_string()), map)
            },
        );
        let (st, res) = (state.clone(), resolver.clone());
        engine.register_fn(
            "task_run",
            move |ctx: NativeCallContext, desc: &str, plugin: &str, params: Map| {
                task_run(&st, &res, &ctx, desc, plugin, params)
            },
        );
        let (st, res) = (state.clone(), resolver);
        engine.register_fn(
            "task_run",
            move |ctx: NativeCallContext, desc: &str, plugin: &str| {
                task_run(&st, &res, &ctx, desc, plugin, Map::new())
            },
        );
        engine.register_fn(
            "family_params",
            |ctx: NativeCallContext, family: &str, params: Map, defaults: Map| {
                family_params(family, params, defaults, ctx.call_position())
            },
        );

        Loader {
            engine,
            state,
            deadline,
            current_unit,
        }
    }

    /// Calls a closure with `args`, about `unit`, within `limit` of wall
    /// clock (and the operation limit). Errors point into the definition.
    pub fn call(
        &self,
        c: &Closure,
        args: Vec<Dynamic>,
        unit: &str,
        limit: Duration,
    ) -> Result<Dynamic, Diagnostic> {
        *self.current_unit.borrow_mut() = unit.to_string();
        self.deadline.set(Instant::now() + limit);
        // A closure runs "inside a closure": no declarations from it.
        self.state.borrow_mut().closure_depth += 1;
        // As FnPtr::call does, plus the definition's imports, which a bare
        // call would not see (`h::f()` would be "no module h").
        let mut global = self.engine.new_global_runtime_state();
        global.lib.push(c.ast.shared_lib().clone());
        for (alias, module) in &c.imports {
            global.push_import(alias.clone(), module.clone());
        }
        let ctx: NativeCallContext = (
            &self.engine,
            c.fn_ptr.fn_name(),
            None,
            &global,
            Position::NONE,
        )
            .into();
        let mut args = args;
        let result = c.fn_ptr.call_raw(&ctx, None, &mut args[..]);
        self.state.borrow_mut().closure_depth -= 1;
        result.map_err(|e| {
            let mut d = diag::from_rhai(&e, &c.source, &KeyIndex::default());
            if matches!(*e, EvalAltResult::ErrorTerminated(..)) {
                d.message = format!(
                    "the closure ran longer than its limit of {} ms",
                    limit.as_millis()
                );
            }
            if d.line == 0 {
                // Limits stop a closure without a position: point at its body.
                let name = c.fn_ptr.fn_name();
                if let Some(def) = c.ast.iter_fn_def().find(|f| f.name == name) {
                    let pos = def.body.start_position();
                    (d.line, d.col) = (pos.line().unwrap_or(0), pos.position().unwrap_or(0));
                }
            }
            d
        })
    }

    /// Evaluates one definition. `path` is what diagnostics and `SourcePath=`
    /// name; `lib` finds its `import`ed modules.
    pub fn load(&self, path: &Path, text: &str, lib: Rc<dyn ModuleSource>) -> Loaded {
        self.load_inner(path, text, lib, None)
    }

    /// Evaluates a shebang unit file: it must declare exactly one unit, named
    /// like the file; a declaration without a name gets the file's name
    /// (`service(#{ .. })`).
    pub fn load_unit_file(
        &self,
        path: &Path,
        text: &str,
        name: &UnitName,
        lib: Rc<dyn ModuleSource>,
    ) -> Loaded {
        self.load_inner(path, text, lib, Some(name))
    }

    fn load_inner(
        &self,
        path: &Path,
        text: &str,
        lib: Rc<dyn ModuleSource>,
        as_unit: Option<&UnitName>,
    ) -> Loaded {
        let source = path.display().to_string();
        let mut diagnostics = Vec::new();
        let ast = match self.engine.compile(strip_shebang(text)) {
            Ok(mut ast) => {
                ast.set_source(source.as_str());
                Rc::new(ast)
            }
            Err(e) => {
                diagnostics.push(diag::from_parse(&e, &source));
                return Loaded {
                    units: Vec::new(),
                    diagnostics,
                };
            }
        };
        {
            let mut s = self.state.borrow_mut();
            s.lib = Some(lib);
            s.decls.clear();
            s.prints.clear();
            s.loading.clear();
            s.closure_depth = 0;
            s.family_depth = 0;
            s.main = Some((source.clone(), ast.clone()));
        }
        self.deadline.set(Instant::now() + WALL_CLOCK);
        let run = self.engine.run_ast(&ast);

        let mut index = KeyIndex::default();
        let mut indexed = false;
        let mut ensure_index = |index: &mut KeyIndex| {
            if !indexed {
                index.add(&source, &ast);
                for (src, (m, _)) in &self.state.borrow().modules {
                    index.add(src, m);
                }
                indexed = true;
            }
        };
        if let Err(e) = run {
            ensure_index(&mut index);
            diagnostics.push(diag::from_rhai(&e, &source, &index));
            self.finish();
            return Loaded {
                units: Vec::new(),
                diagnostics,
            };
        }

        let mut decls = std::mem::take(&mut self.state.borrow_mut().decls);
        if let Some(unit_name) = as_unit {
            if let Some(d) = unit_file_problem(&mut decls, unit_name, &source) {
                diagnostics.push(d);
                self.finish();
                return Loaded {
                    units: Vec::new(),
                    diagnostics,
                };
            }
        }
        let mut units: Vec<UnitDecl> = Vec::new();
        for d in &decls {
            let lowered = {
                let st = self.state.borrow();
                lower::lower(d, &source, &|f: &FnPtr| resolve_closure(&st, f))
            };
            if !lowered.problems.is_empty() {
                ensure_index(&mut index);
            }
            for p in lowered.problems {
                let key_pos = p
                    .key_path
                    .last()
                    .and_then(|k| index.find(&d.place.source, k, d.place.pos));
                let pos = key_pos.unwrap_or(d.place.pos);
                diagnostics.push(Diagnostic {
                    severity: p.severity,
                    file: PathBuf::from(&d.place.source),
                    line: pos.line().unwrap_or(0),
                    col: pos.position().unwrap_or(0),
                    len: match (key_pos, p.key_path.last()) {
                        (Some(_), Some(k)) => k.chars().count().max(1),
                        _ => 1,
                    },
                    message: p.issue.message,
                    help: p.issue.help,
                });
            }
            if let Some(unit) = lowered.unit {
                let pending = not_acted_on(&unit);
                if !pending.is_empty() {
                    ensure_index(&mut index);
                }
                for (canonical, message) in pending {
                    let raw = d
                        .map
                        .keys()
                        .find(|k| keys::lookup(k).is_some_and(|s| s.name == canonical));
                    let pos = raw
                        .and_then(|k| index.find(&d.place.source, k, d.place.pos))
                        .unwrap_or(d.place.pos);
                    diagnostics.push(Diagnostic {
                        severity: Severity::Note,
                        file: PathBuf::from(&d.place.source),
                        line: pos.line().unwrap_or(0),
                        col: pos.position().unwrap_or(0),
                        len: raw.map_or(1, |k| k.chars().count()),
                        message,
                        help: None,
                    });
                }
                if let Some(first) = units.iter().find(|u| u.name == unit.name) {
                    diagnostics.push(Diagnostic {
                        severity: Severity::Error,
                        file: PathBuf::from(&d.place.source),
                        line: d.place.pos.line().unwrap_or(0),
                        col: d.place.pos.position().unwrap_or(0),
                        len: 1,
                        message: format!("{} is declared twice in this file", unit.name),
                        help: Some(format!("the first declaration is at line {}", first.line)),
                    });
                } else {
                    units.push(unit);
                }
            }
        }
        for p in &self.state.borrow().prints {
            diagnostics.push(Diagnostic {
                severity: Severity::Note,
                file: PathBuf::from(&source),
                line: 0,
                col: 0,
                len: 1,
                message: format!("print: {p}"),
                help: None,
            });
        }
        self.finish();
        diagnostics.sort_by_key(|d| (d.line, d.col));
        if diagnostics.iter().any(Diagnostic::is_error) {
            units.clear();
        }
        Loaded { units, diagnostics }
    }

    fn finish(&self) {
        let mut s = self.state.borrow_mut();
        s.main = None;
        s.lib = None;
        s.decls.clear();
    }
}

/// `Engine::set_module_resolver` takes ownership; the loader keeps a handle
/// to the same resolver for `task_run` families.
struct ResolverHandle(Rc<Resolver>);

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

/// Keys of `unit` this version checks but does not act on, with a note for
/// each. systemd-sparrowd acts on `monitor` (its `resources` closure and
/// hysteresis settings), `hooks.resources`, dynamic resource properties and
/// `orchestration.requires` (at generation time); the rest waits for later
/// parts of runtime mode.
fn not_acted_on(unit: &UnitDecl) -> Vec<(String, String)> {
    const LATER: &str = "is checked but not acted on yet: this version of systemd-sparrowd applies `monitor.resources` and dynamic resource properties only";
    let mut out = Vec::new();
    for (key, value) in &unit.runtime {
        let parts: Vec<String> = match key.as_str() {
            "orchestration" => value
                .get("startup_sequence")
                .map(|_| "`orchestration.startup_sequence`".to_string())
                .into_iter()
                .collect(),
            "monitor" => value
                .get("pattern_check")
                .map(|_| "`monitor.pattern_check`".to_string())
                .into_iter()
                .collect(),
            "hooks" => ["pre_start", "post_start", "pre_stop", "post_stop"]
                .iter()
                .filter(|h| value.get(h).is_some())
                .map(|h| format!("`hooks.{h}`"))
                .collect(),
            other => vec![format!("`{other}`")],
        };
        for what in parts {
            out.push((key.clone(), format!("{what} {LATER}")));
        }
    }
    for (key, _) in &unit.dynamic {
        let live = keys::lookup(key).is_some_and(crate::schema::is_resource);
        if !live {
            out.push((
                key.clone(),
                format!("`{key}` is a dynamic property that is evaluated once, by the generator; only resource keys are re-evaluated while the service runs"),
            ));
        }
    }
    out
}

/// Checks the declarations of a shebang unit file named `name`, filling in
/// the name where the script left it out.
fn unit_file_problem(decls: &mut [RawDecl], name: &UnitName, source: &str) -> Option<Diagnostic> {
    let problem = |line: usize, col: usize, message: String| {
        Diagnostic {
        severity: Severity::Error,
        file: PathBuf::from(source),
        line,
        col,
        len: 1,
        message,
        help: Some(format!("a shebang unit declares exactly one unit, {name}; service(#{{ .. }}) takes the file's name")),
    }
    };
    let [d] = decls else {
        return Some(problem(
            1,
            1,
            format!("{} declares {} units", name, decls.len()),
        ));
    };
    let kind_ok = matches!(
        (d.kind, name.unit_type()),
        (UnitKind::Service, sparrow_unit::UnitType::Service)
            | (UnitKind::Timer, sparrow_unit::UnitType::Timer)
    );
    let (line, col) = (
        d.place.pos.line().unwrap_or(1),
        d.place.pos.position().unwrap_or(1),
    );
    if !kind_ok {
        return Some(problem(
            line,
            col,
            format!(
                "the file {name} must declare a .{} unit",
                name.unit_type().suffix()
            ),
        ));
    }
    let given = d
        .name
        .clone()
        .or_else(|| d.map.get("name").and_then(|n| n.clone().into_string().ok()));
    match given {
        None => d.name = Some(name.to_string()),
        Some(g) => {
            let same = UnitName::of_type(&g, name.unit_type()).is_ok_and(|n| &n == name);
            if !same {
                return Some(problem(
                    line,
                    col,
                    format!("the file is named {name} but declares {g:?}"),
                ));
            }
        }
    }
    None
}

/// The runtime functions the daemon provides (the rest of `RUNTIME_ONLY`
/// comes with later parts of runtime mode).
const RUNTIME_PROVIDED: &[&str] = &[
    "available_memory",
    "free_memory",
    "load",
    "psi",
    "service_memory",
    "service_state",
    "connections",
    "read_file",
    "log",
];

fn host_err(name: &str, e: String, pos: Position) -> Box<EvalAltResult> {
    err(format!("{name}(): {e}"), None, pos)
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A unit name as closures write it: `"web"` means `web.service`.
fn service_name(unit: &str) -> String {
    if unit.contains('.') {
        unit.to_string()
    } else {
        format!("{unit}.service")
    }
}

fn psi_map(line: &crate::host::PsiLine) -> Map {
    let mut m = Map::new();
    m.insert("avg10".into(), line.avg10.into());
    m.insert("avg60".into(), line.avg60.into());
    m.insert("avg300".into(), line.avg300.into());
    m.insert("total".into(), to_i64(line.total).into());
    m
}

/// Registers the runtime functions backed by `rt`.
fn register_runtime(engine: &mut Engine, rt: Arc<dyn RuntimeHost>, unit: Rc<RefCell<String>>) {
    let r = rt.clone();
    engine.register_fn("available_memory", move |ctx: NativeCallContext| {
        r.available_memory()
            .map(to_i64)
            .map_err(|e| host_err("available_memory", e, ctx.call_position()))
    });
    let r = rt.clone();
    engine.register_fn("free_memory", move |ctx: NativeCallContext| {
        r.free_memory()
            .map(to_i64)
            .map_err(|e| host_err("free_memory", e, ctx.call_position()))
    });
    let r = rt.clone();
    engine.register_fn("load", move |ctx: NativeCallContext| {
        r.load()
            .map_err(|e| host_err("load", e, ctx.call_position()))
    });
    let r = rt.clone();
    engine.register_fn("psi", move |ctx: NativeCallContext, resource: &str| {
        let p = r
            .psi(resource)
            .map_err(|e| host_err("psi", e, ctx.call_position()))?;
        let mut m = Map::new();
        m.insert("some".into(), Dynamic::from_map(psi_map(&p.some)));
        if let Some(full) = &p.full {
            m.insert("full".into(), Dynamic::from_map(psi_map(full)));
        }
        Ok::<_, Box<EvalAltResult>>(m)
    });
    let r = rt.clone();
    engine.register_fn(
        "service_memory",
        move |ctx: NativeCallContext, unit: &str| {
            r.service_memory(&service_name(unit))
                .map(to_i64)
                .map_err(|e| host_err("service_memory", e, ctx.call_position()))
        },
    );
    let r = rt.clone();
    engine.register_fn("service_state", move |unit: &str| {
        r.service_state(&service_name(unit))
    });
    let r = rt.clone();
    engine.register_fn("connections", move |ctx: NativeCallContext, port: i64| {
        let port = u16::try_from(port).map_err(|_| {
            err(
                format!("connections(): {port} is not a port"),
                None,
                ctx.call_position(),
            )
        })?;
        r.connections(port)
            .map(to_i64)
            .map_err(|e| host_err("connections", e, ctx.call_position()))
    });
    let r = rt.clone();
    engine.register_fn("read_file", move |ctx: NativeCallContext, path: &str| {
        r.read_file(path)
            .map_err(|e| host_err("read_file", e, ctx.call_position()))
    });
    engine.register_fn("log", move |msg: Dynamic| {
        rt.log(&unit.borrow(), &msg.to_string())
    });
}
