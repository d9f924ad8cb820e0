//! Calls of health closures (`check`, `on_failure`) in the evaluator
//! processes: one closure per request, its result an event for the core.

use std::time::{Duration, Instant};

use super::{Proc, SEND};
use crate::core::{Event, Origin};
use crate::eval::Evaluation;
use crate::worker::{CallReply, CallWhat, Request};

/// A call of a health closure: a unit's `check` (for the probe `seq`), or
/// its `on_failure` with the event.
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    /// `health.check`.
    Check {
        /// The unit.
        unit: String,
        /// The probe it answers.
        seq: u64,
    },
    /// `health.on_failure`.
    OnFailure {
        /// The unit.
        unit: String,
        /// What the closure receives.
        event: serde_json::Value,
    },
    /// `monitor.pattern_check`.
    Pattern {
        /// The unit.
        unit: String,
    },
    /// `pressure_response` and/or the adaptive strategy.
    Kernel {
        /// The unit.
        unit: String,
        /// What they receive.
        event: serde_json::Value,
        /// The kernel wake-up it answers (monotonic µs).
        woke_us: Option<u64>,
    },
}

impl Call {
    /// The unit.
    pub fn unit(&self) -> &str {
        match self {
            Call::Check { unit, .. }
            | Call::OnFailure { unit, .. }
            | Call::Kernel { unit, .. }
            | Call::Pattern { unit } => unit,
        }
    }

    /// The event for a call that no evaluator could take: a check is tried
    /// again shortly (a busy daemon is not the unit's failure).
    pub fn refused(self, why: &str) -> Event {
        match self {
            Call::Check { unit, seq } => Event::NotProbed {
                unit,
                seq,
                why: why.to_string(),
                crashed: false,
            },
            Call::OnFailure { unit, .. } => Event::OnFailureDone {
                unit,
                result: Err(why.to_string()),
                logs: Vec::new(),
                action: None,
            },
            Call::Kernel { unit, .. } => Event::Responded {
                unit,
                result: Err(why.to_string()),
                logs: Vec::new(),
            },
            Call::Pattern { unit } => Event::PatternDone {
                unit,
                result: Err(why.to_string()),
                logs: Vec::new(),
            },
        }
    }

    /// The events for a call that ran (`took` is the closure's time); with
    /// `crashed`, it took its evaluator process down (`result` says how). A
    /// kernel response's properties come as an evaluation of origin
    /// [`Origin::Kernel`], decided and applied as the resources feature's.
    pub fn done(self, took: Duration, reply: CallReply) -> Vec<Event> {
        let CallReply {
            result,
            logs,
            props,
            environment,
            crashed,
            action,
            ..
        } = reply;
        let evaluated = |unit: String, props: Vec<_>, woke_us: Option<u64>| {
            Event::Evaluated(Evaluation {
                unit,
                generation: 0,
                result: Ok(props),
                took,
                timed_out: false,
                crashed: false,
                logs: Vec::new(),
                origin: Origin::Kernel(woke_us),
            })
        };
        match (self, result) {
            (Call::Check { unit, seq }, Err(why)) if crashed => vec![Event::NotProbed {
                unit,
                seq,
                why,
                crashed,
            }],
            (Call::Kernel { unit, woke_us, .. }, result) => {
                let n = props.len();
                let mut out = vec![Event::Responded {
                    unit: unit.clone(),
                    result: result.map(|()| n),
                    logs,
                }];
                if n > 0 {
                    out.push(evaluated(unit, props, woke_us));
                }
                out
            }
            (Call::Pattern { unit }, result) => {
                let n = props.len();
                let mut out = vec![Event::PatternDone {
                    unit: unit.clone(),
                    result: result.map(|()| crate::core::pattern::Outcome {
                        props: n,
                        environment,
                    }),
                    logs,
                }];
                if n > 0 {
                    out.push(evaluated(unit, props, None));
                }
                out
            }
            (call, result) => vec![call.ran(took, result, logs, action)],
        }
    }

    fn ran(
        self,
        took: Duration,
        result: Result<(), String>,
        logs: Vec<String>,
        action: Option<String>,
    ) -> Event {
        match self {
            Call::Check { unit, seq } => Event::Probed {
                unit,
                seq,
                outcome: crate::core::outcome(took.as_millis() as u64, result),
            },
            Call::OnFailure { unit, .. } => Event::OnFailureDone {
                unit,
                result,
                logs,
                action,
            },
            Call::Kernel { unit, .. } => Event::Responded {
                unit,
                result: result.map(|()| 0),
                logs,
            },
            Call::Pattern { unit } => Event::PatternDone {
                unit,
                result: result.map(|()| crate::core::pattern::Outcome::default()),
                logs,
            },
        }
    }
}

impl Proc {
    /// Calls a health closure in the process. A call that takes the
    /// process down fails with the reason; the process is started afresh
    /// for the next one.
    pub(super) fn call(&mut self, call: &Call, limit: Duration) -> CallReply {
        let start = Instant::now();
        let failed = |why: String, took: Duration| CallReply {
            result: Err(why),
            logs: Vec::new(),
            took_us: took.as_micros() as u64,
            alerts: Vec::new(),
            props: Vec::new(),
            environment: None,
            action: None,
            raku: None,
            crashed: true,
        };
        self.ensure();
        let Some(w) = self.child.as_mut() else {
            return failed(
                "no evaluator process could be started".into(),
                Duration::ZERO,
            );
        };
        let (unit, what, arg) = match call {
            Call::Check { unit, .. } => (unit.clone(), CallWhat::Check, None),
            Call::OnFailure { unit, event } => {
                (unit.clone(), CallWhat::OnFailure, Some(event.clone()))
            }
            Call::Kernel { unit, event, .. } => {
                (unit.clone(), CallWhat::Kernel, Some(event.clone()))
            }
            Call::Pattern { unit } => (unit.clone(), CallWhat::Pattern, None),
        };
        let req = Request::Call {
            unit,
            what,
            arg,
            limit_ms: limit.as_millis() as u64,
        };
        let hard = sparrow_isolate::hard_limit(limit).max(Duration::from_millis(500));
        match w.send(&req, SEND).and_then(|()| w.recv::<CallReply>(hard)) {
            Ok(r) => r,
            Err(f) => {
                self.child = None;
                failed(
                    format!("the closure's evaluator process {f}"),
                    start.elapsed(),
                )
            }
        }
    }
}
