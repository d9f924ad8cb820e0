//! The evaluator process's side: load one definition, find the unit's
//! stage, call its closures on request.

use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rhai::Dynamic;
use sparrow_host::runtime::{RealRuntime, Units};
use sparrow_host::RealHost;
use sparrow_isolate::Channel;
use sparrow_lang::runtime::Step;
use sparrow_lang::{from_json, to_json, CallError, Closure, Loader, UnitDecl};
use sparrow_source::LibCache;

use crate::protocol::{Called, Loaded, Plan, PlannedStep, Request};
use crate::Stage;

/// `log()` lines kept per call, and characters per line.
const MAX_LOGS: usize = 100;
const MAX_LOG_LEN: usize = 1000;

/// Serves the runner until stdin closes.
pub fn serve() -> u8 {
    let Ok(mut chan) = Channel::take() else {
        return 2;
    };
    let logs: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = logs.clone();
    let runtime = Arc::new(RealRuntime::new(
        Units::default(),
        Arc::new(move |_unit: &str, msg: &str| {
            let mut l = sink.lock().unwrap_or_else(|p| p.into_inner());
            if l.len() < MAX_LOGS {
                l.push(msg.chars().take(MAX_LOG_LEN).collect());
            }
        }),
    ));
    let mut loaded: Option<(Loader, String, Vec<Option<Closure>>)> = None;
    loop {
        let req: Request = match chan.recv() {
            Ok(Some(r)) => r,
            Ok(None) => return 0,
            Err(e) => {
                eprintln!("sparrow-evaluator: {e}");
                return 2;
            }
        };
        let sent = match req {
            Request::Load {
                facts,
                owners,
                source,
                text,
                unit,
                stage,
            } => {
                let loader =
                    Loader::with_runtime(Rc::new(RealHost::from_facts(facts)), runtime.clone());
                let result = sparrow_source::load_text(
                    &loader,
                    &mut LibCache::default(),
                    &source,
                    &text,
                    owners,
                )
                .map_err(|r| format!("{}: {}", r.path.display(), r.reason))
                .and_then(|l| {
                    if let Some(d) = l.diagnostics.iter().find(|d| d.is_error()) {
                        return Err(d.to_string());
                    }
                    // The unit itself when declared, else its template.
                    let decl = l
                        .units
                        .iter()
                        .filter(|d| d.dropin.is_none())
                        .find(|d| d.name.as_str() == unit)
                        .or_else(|| {
                            l.units
                                .iter()
                                .filter(|d| d.dropin.is_none())
                                .find(|d| template_of(d, &unit))
                        })
                        .ok_or_else(|| {
                            format!("{} does not declare {unit}", source.path.display())
                        })?;
                    plan(decl, stage)
                });
                let reply = match result {
                    Ok((plan, closures)) => {
                        loaded = Some((loader, unit, closures));
                        Loaded { result: Ok(plan) }
                    }
                    Err(e) => Loaded { result: Err(e) },
                };
                chan.send(&reply)
            }
            Request::Call {
                step,
                context,
                limit_ms,
            } => {
                let Some((loader, unit, closures)) = &loaded else {
                    return 2;
                };
                let result = closures
                    .get(step.unwrap_or(0))
                    .and_then(Option::as_ref)
                    .ok_or_else(|| "no such closure step".to_string())
                    .and_then(|c| call(loader, c, unit, context, limit_ms));
                let logs = std::mem::take(&mut *logs.lock().unwrap_or_else(|p| p.into_inner()));
                chan.send(&Called { result, logs })
            }
        };
        if sent.is_err() {
            return 2;
        }
    }
}

/// `decl` is the template `unit` is an instance of.
fn template_of(decl: &UnitDecl, unit: &str) -> bool {
    sparrow_unit::UnitName::parse(unit)
        .ok()
        .and_then(|u| u.template())
        .is_some_and(|t| t == decl.name)
}

/// The stage of `decl`: what the runner runs, and the closures it may ask
/// for by index (the hook's, or each closure step's in order of the steps).
fn plan(decl: &UnitDecl, stage: Stage) -> Result<(Plan, Vec<Option<Closure>>), String> {
    let hooks = &decl.runtime.hooks;
    let hook = match stage {
        Stage::PreStart => &hooks.pre_start,
        Stage::PostStart => &hooks.post_start,
        Stage::PreStop => &hooks.pre_stop,
        Stage::PostStop => &hooks.post_stop,
        Stage::StartupSequence => {
            let steps = &decl.runtime.startup_sequence;
            if steps.is_empty() {
                return Err(format!("{} has no startup_sequence", decl.name));
            }
            // The runner asks for closure steps by their index among the
            // steps: one slot per step.
            let mut closures = Vec::with_capacity(steps.len());
            let mut planned = Vec::with_capacity(steps.len());
            for s in steps {
                planned.push(match s {
                    Step::Task {
                        desc,
                        plugin,
                        params,
                    } => PlannedStep::Task {
                        desc: desc.clone(),
                        plugin: plugin.clone(),
                        params: to_json(&Dynamic::from_map(params.clone()))?,
                    },
                    Step::Command(argv) => PlannedStep::Command(argv.clone()),
                    Step::Closure(c) => PlannedStep::Closure { place: c.place() },
                });
                closures.push(match s {
                    Step::Closure(c) => Some(c.clone()),
                    _ => None,
                });
            }
            return Ok((Plan::Steps(planned), closures));
        }
    };
    match hook {
        Some(c) => Ok((Plan::Hook, vec![Some(c.clone())])),
        None => Err(format!("{} has no {} hook", decl.name, stage.name())),
    }
}

/// Calls a hook closure with the context (when it takes an argument); a
/// thrown error or `false` fails it.
fn call(
    loader: &Loader,
    c: &Closure,
    unit: &str,
    context: serde_json::Value,
    limit_ms: u64,
) -> Result<(), String> {
    let args = if c.params > 0 {
        vec![from_json(context)]
    } else {
        Vec::new()
    };
    match loader.call(c, args, unit, Duration::from_millis(limit_ms)) {
        Ok(v) if v.as_bool() == Ok(false) => Err(format!("{}: the hook returned false", c.place())),
        Ok(_) => Ok(()),
        Err(CallError::Limit(d)) => Err(format!("{d} (a sandbox limit: the hook was stopped)")),
        Err(CallError::Failed(d)) => Err(d.to_string()),
    }
}
