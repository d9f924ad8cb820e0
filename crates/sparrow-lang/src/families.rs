//! Service families: `task_run(desc, "systemd-NAME", params)` calls the
//! module NAME's `fn unit(params)` and declares what it returns;
//! `family_params` checks a family's parameters.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use rhai::{CallFnOptions, Dynamic, EvalAltResult, Map, NativeCallContext, Position, Scope};

use crate::declare::declare;
use crate::diag::err;
use crate::diag::ScriptError;
use crate::host::{Host, RuntimeHost, TaskFailure};
use crate::json::{from_json, to_json};
use crate::limits::{MAX_FAMILY_DEPTH, SYSTEMD_PLUGINS};
use crate::lower::UnitKind;
use crate::modules::Resolver;
use crate::state::Shared2;
use crate::value::Raw;
use crate::{keys, library};

/// What `task_run` needs besides the declaration state: the hosts, and
/// the running closure's deadline and unit.
pub(crate) struct Tasks {
    pub host: Rc<dyn Host>,
    pub runtime: Option<Arc<dyn RuntimeHost>>,
    pub deadline: Rc<Cell<Instant>>,
    pub unit: Rc<RefCell<String>>,
}

/// The one plugin a definition may run at generation time.
const FEATURE_FLAGS: &str = "feature-flags";

pub(crate) fn task_run(
    state: &Shared2,
    resolver: &Rc<Resolver>,
    tasks: &Tasks,
    ctx: &NativeCallContext,
    desc: &str,
    plugin: &str,
    params: Map,
) -> Result<Dynamic, Box<EvalAltResult>> {
    let pos = ctx.call_position();
    let (runtime, in_closure) = {
        let st = state.borrow();
        (st.runtime, st.closure_depth > 0)
    };
    if runtime && in_closure {
        let rt = tasks.runtime.as_ref().ok_or_else(|| {
            err(
                format!("task_run({desc:?}, {plugin:?}, ..): no runtime host"),
                None,
                pos,
            )
        })?;
        let params = to_json(&Dynamic::from_map(params)).map_err(|e| {
            err(
                format!("task_run({desc:?}, {plugin:?}, ..): {e}"),
                None,
                pos,
            )
        })?;
        let unit = tasks.unit.borrow().clone();
        return match rt.task_run(&unit, desc, plugin, params, tasks.deadline.get()) {
            Ok(state) => Ok(from_json(state)),
            Err(f) => Err(thrown_task(desc, plugin, f, pos)),
        };
    }
    if plugin == FEATURE_FLAGS {
        // As the built-in refuses what it does not read: a misspelled
        // `fiel:` must not silently read the default file.
        if let Some(k) = params.keys().find(|k| k.as_str() != "file") {
            return Err(err(
                format!("task_run({desc:?}, \"{FEATURE_FLAGS}\", ..) has no parameter `{k}`"),
                Some("its one parameter is file: the JSON file to read"),
                pos,
            ));
        }
        let file = match params.get("file") {
            None => None,
            Some(f) if f.is_string() => Some(f.to_string()),
            Some(_) => {
                return Err(err(
                    format!(
                        "task_run({desc:?}, \"{FEATURE_FLAGS}\", ..): file must be a string path"
                    ),
                    None,
                    pos,
                ))
            }
        };
        return match tasks.host.feature_flags(file.as_deref()) {
            Ok(flags) => Ok(from_json(flags)),
            Err(e) => Err(err(
                format!("task_run({desc:?}, \"{FEATURE_FLAGS}\"): {e}"),
                None,
                pos,
            )),
        };
    }
    if in_closure {
        return Err(err(
            format!("task_run({desc:?}, {plugin:?}, ..) cannot run at generation time"),
            Some("generators only read: the one plugin allowed here is feature-flags; run other task plugins inside a hook (hooks: #{ pre_start: || task_run(..) }), which the daemon runs"),
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
            Some("at the top level, task_run declares services (plugin \"systemd\" or a service family \"systemd-NAME\") or reads feature-flags; other plugins run inside hooks"),
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
pub(crate) fn family_params(
    family: &str,
    params: Map,
    defaults: Map,
    pos: Position,
) -> Result<Map, Box<EvalAltResult>> {
    // Every parameter is checked against the defaults before any is merged,
    // so the defaults map itself becomes the result (no copy per call).
    let mut merged = Vec::with_capacity(params.len());
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
        merged.push((key, value));
    }
    let mut out = defaults;
    for (key, value) in merged {
        out.insert(key.into(), value);
    }
    Ok(out)
}

/// A failed task as a catchable error: a map with `message`, `exit_code`,
/// `stderr` (its last lines), `task` and `plugin`.
fn thrown_task(desc: &str, plugin: &str, f: TaskFailure, pos: Position) -> Box<EvalAltResult> {
    let mut m = Map::new();
    let message = if f.stderr_tail.is_empty() {
        format!("task_run({desc:?}, {plugin:?}): {}", f.message)
    } else {
        format!(
            "task_run({desc:?}, {plugin:?}): {}; stderr: {}",
            f.message,
            f.stderr_tail.join(" | ")
        )
    };
    m.insert("message".into(), message.into());
    m.insert("exit_code".into(), Dynamic::from(i64::from(f.exit_code)));
    m.insert("stderr".into(), f.stderr_tail.join("\n").into());
    m.insert("task".into(), desc.into());
    m.insert("plugin".into(), plugin.into());
    Box::new(EvalAltResult::ErrorRuntime(Dynamic::from_map(m), pos))
}
