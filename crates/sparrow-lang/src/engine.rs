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
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rhai::{Dynamic, Engine, EvalAltResult, FnPtr, Map, NativeCallContext, Position};

use crate::checks::{not_acted_on, unit_file_problem};
use crate::closure::Closure;
use crate::declare::{declare, declare_dropin, resolve_closure};
use crate::diag::{self, Diagnostic, KeyIndex, ScriptError, Severity};
use crate::families::{family_params, task_run, Tasks};
use crate::host::ModuleSource;
use crate::host::{Host, RuntimeHost};
use crate::keys;
use crate::limits::{MAX_OPERATIONS, WALL_CLOCK};
use crate::lower::{self, UnitDecl, UnitKind};
use crate::modules::{strip_shebang, Resolver, ResolverHandle};
use crate::natives::{self, register_runtime};
use crate::state::{Shared2, State};
use crate::value::Raw;
use sparrow_unit::UnitName;

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

/// Why a call of a closure ([`Loader::call`]) failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    /// It was stopped by a limit: its wall-clock time or the operation count.
    #[error("{0}")]
    Limit(Diagnostic),
    /// It failed: an error it threw, or one the script ran into.
    #[error("{0}")]
    Failed(Diagnostic),
}

impl CallError {
    /// What went wrong, where.
    pub fn diagnostic(&self) -> &Diagnostic {
        match self {
            CallError::Limit(d) | CallError::Failed(d) => d,
        }
    }
}

/// Evaluates definition files. Reuse one loader for many files.
pub struct Loader {
    engine: Engine,
    state: Shared2,
    deadline: Rc<Cell<Instant>>,
    /// The unit a runtime call is about (for `log()`).
    current_unit: Rc<RefCell<String>>,
    host: Rc<dyn Host>,
    /// Where generated hook lines call `systemd-sparrow` (looked up once,
    /// when a definition first has hooks).
    hook_runner: std::cell::OnceCell<String>,
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
        natives::register_facts(&mut engine, host.clone());
        natives::register_stubs(&mut engine, runtime.is_some());

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
        for kind in [UnitKind::Socket, UnitKind::Path, UnitKind::Target] {
            let st = state.clone();
            let fname = kind.unit_type().suffix();
            engine.register_fn(
                fname,
                move |ctx: NativeCallContext, name: &str, map: Map| {
                    declare(&st, &ctx, kind, Some(name.to_string()), map)
                },
            );
        }
        for kind in [UnitKind::Mount, UnitKind::Automount] {
            let st = state.clone();
            engine.register_fn(
                kind.unit_type().suffix(),
                move |ctx: NativeCallContext, map: Map| declare(&st, &ctx, kind, None, map),
            );
        }
        let st = state.clone();
        engine.register_fn(
            "dropin",
            move |ctx: NativeCallContext, unit: &str, map: Map| {
                declare_dropin(&st, &ctx, unit, None, map)
            },
        );
        let st = state.clone();
        engine.register_fn(
            "dropin",
            move |ctx: NativeCallContext, unit: &str, name: &str, map: Map| {
                declare_dropin(&st, &ctx, unit, Some(name.to_string()), map)
            },
        );
        let tasks = Rc::new(Tasks {
            host: host.clone(),
            runtime: runtime.clone(),
            deadline: deadline.clone(),
            unit: current_unit.clone(),
        });
        let (st, res, t) = (state.clone(), resolver.clone(), tasks.clone());
        engine.register_fn(
            "task_run",
            move |ctx: NativeCallContext, desc: &str, plugin: &str, params: Map| {
                task_run(&st, &res, &t, &ctx, desc, plugin, params)
            },
        );
        let (st, res, t) = (state.clone(), resolver, tasks);
        engine.register_fn(
            "task_run",
            move |ctx: NativeCallContext, desc: &str, plugin: &str| {
                task_run(&st, &res, &t, &ctx, desc, plugin, Map::new())
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
            host,
            hook_runner: std::cell::OnceCell::new(),
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
    ) -> Result<Dynamic, CallError> {
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
            let limit_hit = matches!(
                *e,
                EvalAltResult::ErrorTerminated(..) | EvalAltResult::ErrorTooManyOperations(..)
            );
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
            if limit_hit {
                CallError::Limit(d)
            } else {
                CallError::Failed(d)
            }
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
                let runner = || {
                    self.hook_runner
                        .get_or_init(|| crate::host::hook_runner(self.host.as_ref()))
                        .clone()
                };
                lower::lower(d, &source, &|f: &FnPtr| resolve_closure(&st, f), &runner)
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
                if let Some(first) = units
                    .iter()
                    .find(|u| u.name == unit.name && u.dropin == unit.dropin)
                {
                    diagnostics.push(Diagnostic {
                        severity: Severity::Error,
                        file: PathBuf::from(&d.place.source),
                        line: d.place.pos.line().unwrap_or(0),
                        col: d.place.pos.position().unwrap_or(0),
                        len: 1,
                        message: match &unit.dropin {
                            Some(d) => format!(
                                "the drop-in {}.d/{d} is declared twice in this file",
                                unit.name
                            ),
                            None => format!("{} is declared twice in this file", unit.name),
                        },
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
