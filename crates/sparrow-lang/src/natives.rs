//! Native functions a definition can call: facts, sizes, and the runtime
//! functions (real in the daemon, an error at generation time).

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use rhai::{Dynamic, Engine, EvalAltResult, Map, NativeCallContext, Position};

use crate::diag::err;
use crate::host::{Host, RuntimeHost};
use crate::limits::{RUNTIME_ONLY, RUNTIME_PROVIDED};

/// Registers the facts and the generation-time functions backed by `host`.
pub(crate) fn register_facts(engine: &mut Engine, host: Rc<dyn Host>) {
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
                    i64::try_from(b).map_err(|_| err("size too large", None, ctx.call_position()))
                })
        },
    );
    for (name, shift) in [("KB", 10), ("MB", 20), ("GB", 30), ("TB", 40)] {
        size_getter(engine, name, shift);
    }
    for (name, shift) in [("KiB", 10), ("MiB", 20), ("GiB", 30), ("TiB", 40)] {
        size_getter(engine, name, shift);
    }
}

/// Registers the runtime-only functions that are not real in this loader:
/// at generation time all of them, in the daemon those still to come.
pub(crate) fn register_stubs(engine: &mut Engine, runtime: bool) {
    for (name, arity) in RUNTIME_ONLY {
        let name = *name;
        if runtime && RUNTIME_PROVIDED.contains(&name) {
            continue;
        }
        let later = runtime;
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
pub(crate) fn register_runtime(
    engine: &mut Engine,
    rt: Arc<dyn RuntimeHost>,
    unit: Rc<RefCell<String>>,
) {
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
    let r = rt.clone();
    engine.register_fn(
        "read_file_tail",
        move |ctx: NativeCallContext, path: &str, bytes: i64| {
            let bytes = u64::try_from(bytes).map_err(|_| {
                err(
                    format!("read_file_tail(): {bytes} is not a byte count"),
                    None,
                    ctx.call_position(),
                )
            })?;
            r.read_file_tail(path, bytes)
                .map_err(|e| host_err("read_file_tail", e, ctx.call_position()))
        },
    );
    engine.register_fn(
        "matches",
        |ctx: NativeCallContext,
         text: &str,
         pattern: &str|
         -> Result<rhai::Array, Box<EvalAltResult>> {
            // Bounded like `body_regex`: a pattern cannot make a huge automaton.
            let re = regex::RegexBuilder::new(pattern)
                .size_limit(1 << 20)
                .build()
                .map_err(|e| err(format!("matches(): {e}"), None, ctx.call_position()))?;
            Ok(re
                .find_iter(text)
                .map(|m| Dynamic::from(m.as_str().to_string()))
                .collect())
        },
    );
    let (r, u) = (rt.clone(), unit.clone());
    engine.register_fn(
        "alert",
        move |ctx: NativeCallContext, msg: Dynamic, severity: &str| {
            let severity = match severity {
                "info" => "info",
                "warning" | "warn" => "warning",
                "critical" => "critical",
                other => {
                    return Err(err(
                        format!(
                            "alert(): severity {other:?} is not one of info, warning, critical"
                        ),
                        None,
                        ctx.call_position(),
                    ))
                }
            };
            r.alert(&u.borrow(), &msg.to_string(), severity);
            Ok(())
        },
    );
    let r = rt.clone();
    engine.register_fn(
        "raku_sub",
        move |ctx: NativeCallContext,
              file: &str,
              desc: &str,
              keys: rhai::Array,
              args: rhai::Array|
              -> Result<Dynamic, Box<EvalAltResult>> {
            let keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
            let place = format!("the Raku sub {} of {desc}", keys.join("."));
            let args = args
                .iter()
                .map(crate::json::to_json)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| err(format!("{place}: {e}"), None, ctx.call_position()))?;
            let mut native = |name: &str, args: Vec<serde_json::Value>| {
                // What a native closure may call at runtime, and no more.
                if !(crate::limits::RUNTIME_PROVIDED.contains(&name) || name == "task_run") {
                    return Err(format!("{name}() is not available while a service runs"));
                }
                let args: Vec<Dynamic> = args.into_iter().map(crate::json::from_json).collect();
                let v: Dynamic = ctx.call_fn(name, args).map_err(|e| e.to_string())?;
                crate::json::to_json(&v)
            };
            // No position: the call's is in the translation, not the Raku
            // file (Raku's own line is in the message).
            r.raku_call(file, desc, &keys, args, &mut native)
                .map(crate::json::from_json)
                .map_err(|e| err(format!("{place}: {e}"), None, rhai::Position::NONE))
        },
    );
    engine.register_fn("log", move |msg: Dynamic| {
        rt.log(&unit.borrow(), &msg.to_string())
    });
}
