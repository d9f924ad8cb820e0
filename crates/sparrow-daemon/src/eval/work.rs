//! One pool thread's loop: jobs in, its evaluator process driven, events
//! reported.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use super::{alerts_of, Evaluation, Job, PoolEvent, Proc, SEND};
use crate::worker::Request;

pub(super) fn work(
    index: usize,
    rx: mpsc::Receiver<Job>,
    p: &mut Proc,
    report: &(dyn Fn(PoolEvent) + Send + Sync),
    in_flight: &AtomicUsize,
) {
    let mut generation = 0;
    // The Raku worker's health as last reported: reported again on change
    // (calls are counted in it, so at most once per batch or call).
    let mut raku: Option<sparrow_raku::resident::Health> = None;
    let mut note_raku = |h: Option<sparrow_raku::resident::Health>| {
        if h.is_some() && h != raku {
            raku = h.clone();
            if let Some(health) = h {
                report(PoolEvent::Raku(crate::control::RakuWorker {
                    evaluator: index,
                    health,
                }));
            }
        }
    };
    while let Ok(job) = rx.recv() {
        match job {
            Job::Load(sources, gen) => {
                p.sources = sources;
                p.skip.clear();
                p.crashes.clear();
                p.child = None;
                generation = gen;
                let loaded = p.ensure().unwrap_or_default();
                if index == 0 {
                    report(PoolEvent::Loaded {
                        generation: gen,
                        specs: loaded.specs,
                        problems: loaded.problems,
                    });
                }
            }
            Job::Units(units) => {
                if let Some(w) = p.child.as_mut() {
                    if w.send(&Request::Units((*units).clone()), SEND).is_err() {
                        p.child = None;
                    }
                }
                p.units = Some(units);
            }
            Job::Call(call, limit) => {
                let mut r = p.call(&call, limit);
                in_flight.fetch_sub(1, Ordering::Relaxed);
                note_raku(r.raku.take());
                if !r.alerts.is_empty() {
                    let alerts = std::mem::take(&mut r.alerts);
                    report(PoolEvent::Alerts(alerts_of(call.unit(), alerts)));
                }
                let took = Duration::from_micros(r.took_us);
                report(PoolEvent::Called(call.done(took, r)));
            }
            Job::Eval { units, origin } => {
                let mut batch = Vec::with_capacity(units.len());
                let mut raised = Vec::new();
                let mut last_raku = None;
                p.evaluate(&units, &mut |unit, reply, killed, took| {
                    let ev = match reply {
                        Ok(mut e) => {
                            raised.extend(alerts_of(unit, std::mem::take(&mut e.alerts)));
                            if e.raku.is_some() {
                                last_raku = e.raku.take();
                            }
                            Evaluation {
                                unit: unit.to_string(),
                                generation,
                                result: e.result,
                                took,
                                timed_out: e.timed_out,
                                crashed: false,
                                logs: e.logs,
                                origin,
                            }
                        }
                        Err(msg) => Evaluation {
                            unit: unit.to_string(),
                            generation,
                            result: Err(msg),
                            took,
                            timed_out: killed,
                            crashed: true,
                            logs: Vec::new(),
                            origin,
                        },
                    };
                    batch.push(ev);
                });
                in_flight.fetch_sub(batch.len(), Ordering::Relaxed);
                if !raised.is_empty() {
                    report(PoolEvent::Alerts(raised));
                }
                note_raku(last_raku);
                // One report for the batch: one wake-up of the daemon.
                report(PoolEvent::Evaluated(batch));
            }
        }
    }
}
