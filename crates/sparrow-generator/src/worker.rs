//! The evaluator process: the child side of `supervise`.
//!
//! Started as `sparrow-evaluator generate` (the same binary, re-executed),
//! it reads an [`Request::Init`], then batches of sources, and answers each
//! source with one [`Outcome`] line as soon as it is done, so the parent
//! always knows which source was running if this process dies.

use serde::{Deserialize, Serialize};
use sparrow_isolate::Channel;
use sparrow_lang::Facts;

use crate::eval::Evaluator;
use sparrow_source::{Owners, Source};

/// The role name an entry point passes to [`serve`].
pub const ROLE: &str = "generate";

/// What the parent sends.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Request {
    /// Sent once, first: the host's facts and the owner rule.
    Init {
        /// Facts, gathered once by the parent.
        facts: Facts,
        /// Who may own definitions and modules.
        owners: Owners,
    },
    /// Sources to evaluate, answered one [`Outcome`](crate::eval::Outcome) each, in order.
    Batch(Vec<Source>),
}

/// Serves requests on stdin until it closes; the exit status is for the
/// parent's logs only.
pub fn serve() -> u8 {
    let Ok(mut chan) = Channel::take() else {
        return 2;
    };
    let mut evaluator = None;
    loop {
        let req: Request = match chan.recv() {
            Ok(Some(r)) => r,
            Ok(None) => return 0,
            Err(e) => {
                eprintln!("sparrow-evaluator: {e}");
                return 2;
            }
        };
        match req {
            Request::Init { facts, owners } => evaluator = Some(Evaluator::new(facts, owners)),
            Request::Batch(sources) => {
                let Some(ev) = evaluator.as_mut() else {
                    eprintln!("sparrow-evaluator: a batch before init");
                    return 2;
                };
                for src in &sources {
                    if chan.send(&ev.source(src)).is_err() {
                        return 2;
                    }
                }
            }
        }
    }
}
