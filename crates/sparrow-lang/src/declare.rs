//! What `service()`, `timer()` and family expansion record, and closures:
//! finding the script a closure lives in (with its imports) and calling
//! closures under static keys at generation time.

use std::rc::Rc;

use rhai::{Dynamic, EvalAltResult, Expr, FnPtr, Map, Module, NativeCallContext, Shared, AST};

use crate::closure::Closure;
use crate::diag::{err, Place};
use crate::keys;
use crate::lower::{RawDecl, UnitKind};
use crate::state::{Shared2, State};

/// Finds the AST that defines closure `f` (the definition or a module).
pub(crate) fn owner_ast(state: &State, f: &FnPtr) -> Option<(String, Rc<AST>)> {
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
pub(crate) fn resolve_closure(state: &State, f: &FnPtr) -> Option<Closure> {
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
pub(crate) fn call_closure(
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

pub(crate) fn declare(
    state: &Shared2,
    ctx: &NativeCallContext,
    kind: UnitKind,
    name: Option<String>,
    map: Map,
) -> Result<Dynamic, Box<EvalAltResult>> {
    record(state, ctx, kind, name, None, map)
}

/// `dropin(unit, map)` / `dropin(unit, name, map)`: keys of the unit's
/// kind, written as `UNIT.d/50-sparrow-NAME.conf`.
pub(crate) fn declare_dropin(
    state: &Shared2,
    ctx: &NativeCallContext,
    unit: &str,
    name: Option<String>,
    map: Map,
) -> Result<Dynamic, Box<EvalAltResult>> {
    let pos = ctx.call_position();
    let parsed = sparrow_unit::UnitName::parse(unit).map_err(|e| {
        err(
            format!("dropin: {unit:?} is not a unit name: {e}"),
            Some("name the unit with its suffix, such as \"nginx.service\""),
            pos,
        )
    })?;
    let kind = UnitKind::of_type(parsed.unit_type()).ok_or_else(|| {
        err(
            format!(
                "dropin: .{} units cannot be adjusted by definitions",
                parsed.unit_type().suffix()
            ),
            Some(
                "drop-ins are for services, timers, sockets, paths, targets, mounts and automounts",
            ),
            pos,
        )
    })?;
    record(state, ctx, kind, Some(parsed.to_string()), Some(name), map)
}

fn record(
    state: &Shared2,
    ctx: &NativeCallContext,
    kind: UnitKind,
    name: Option<String>,
    dropin: Option<Option<String>>,
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
        let Some(spec) = keys::lookup_in(key, kind).or_else(|| keys::lookup(key)) else {
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
        .or_else(|| {
            // Mounts are named after their mount point.
            matches!(kind, UnitKind::Mount | UnitKind::Automount)
                .then(|| map.get("where").and_then(|w| w.clone().into_string().ok()))
                .flatten()
                .and_then(|w| sparrow_unit::escape_path(&w).ok())
        })
        .unwrap_or_default();
    let source = ctx.call_source().unwrap_or_default().to_string();
    state.borrow_mut().decls.push(RawDecl {
        kind,
        name,
        dropin,
        map,
        dynamic,
        place: Place { source, pos },
    });
    Ok(
        match sparrow_unit::UnitName::of_type(&shown, kind.unit_type()) {
            Ok(n) => n.to_string().into(),
            Err(_) => shown.into(),
        },
    )
}
