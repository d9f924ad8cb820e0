//! The evaluator process: the child side of `supervise`.
//!
//! Started as `sparrow-evaluator generate` (the same binary, re-executed),
//! it reads an [`Request::Init`], then batches of sources, and answers each
//! source with one [`Outcome`] line as soon as it is done, so the parent
//! always knows which source was running if this process dies.

use serde::{Deserialize, Serialize};
use sparrow_isolate::Channel;
use sparrow_lang::Facts;

use crate::eval::{Evaluator, Outcome};
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
                    let mut outcome = ev.source(src);
                    let (lengths, texts) = detach(&mut outcome);
                    if chan.send_with(&(outcome, lengths), &texts).is_err() {
                        return 2;
                    }
                }
            }
        }
    }
}

/// What an evaluator process answers for one source: the outcome with its
/// units' texts taken out, and their lengths; the texts travel as the
/// reply's attachment, as they are (see [`detach`]).
pub(crate) type Reply = (Outcome, Vec<usize>);

/// Takes the units' texts out of `outcome`: their lengths, and the texts
/// one after the other. Unit texts are most of a reply, and as JSON strings
/// every newline and quote in them would be escaped here and unescaped by
/// the parent.
pub(crate) fn detach(outcome: &mut Outcome) -> (Vec<usize>, Vec<u8>) {
    let Outcome::Units(units, _) = outcome else {
        return (Vec::new(), Vec::new());
    };
    let mut texts = Vec::with_capacity(units.iter().map(|u| u.text.len()).sum());
    let lengths = units
        .iter_mut()
        .map(|u| {
            let text = std::mem::take(&mut u.text);
            texts.extend_from_slice(text.as_bytes());
            text.len()
        })
        .collect();
    (lengths, texts)
}

/// Puts the texts [`detach`] took out back into the units.
pub(crate) fn attach(reply: Reply, texts: Vec<u8>) -> Result<Outcome, String> {
    let (mut outcome, lengths) = reply;
    let units = match &mut outcome {
        Outcome::Units(units, _) => units.as_mut_slice(),
        _ => &mut [],
    };
    let total = lengths.iter().try_fold(0usize, |a, l| a.checked_add(*l));
    if lengths.len() != units.len() || total != Some(texts.len()) {
        return Err(format!(
            "{} unit text lengths do not match {} units and {} bytes",
            lengths.len(),
            units.len(),
            texts.len()
        ));
    }
    let mut texts = String::from_utf8(texts).map_err(|_| "unit texts are not UTF-8".to_string())?;
    // From the end, so that each text is split off without moving the rest.
    for (u, len) in units.iter_mut().zip(&lengths).rev() {
        let at = texts.len() - len;
        if !texts.is_char_boundary(at) {
            return Err("a unit text ends inside a character".into());
        }
        u.text = texts.split_off(at);
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Generated;
    use sparrow_unit::UnitName;

    fn unit(name: &str, text: &str) -> Generated {
        Generated {
            name: UnitName::parse(name).unwrap(),
            text: text.into(),
            install: Default::default(),
            early: false,
            source: "/defs/a.sparrow".into(),
            line: 1,
            dropin: None,
        }
    }

    fn texts(o: &Outcome) -> Vec<String> {
        match o {
            Outcome::Units(units, _) => units.iter().map(|u| u.text.clone()).collect(),
            _ => panic!("not units"),
        }
    }

    #[test]
    fn texts_travel_apart_and_come_back_in_place() {
        let original = Outcome::Units(
            vec![
                unit("a.service", "[Unit]\nDescription=\"é\" \\ %%\n"),
                unit("b.timer", ""),
                unit("c.service", "[Service]\nExecStart=/bin/true\n"),
            ],
            Vec::new(),
        );
        let mut sent = original.clone();
        let (lengths, bytes) = detach(&mut sent);
        assert_eq!(texts(&sent), vec![String::new(); 3]);
        let back = attach((sent, lengths), bytes).unwrap();
        assert_eq!(texts(&back), texts(&original));
    }

    #[test]
    fn texts_that_do_not_add_up_are_refused() {
        let mut sent = Outcome::Units(vec![unit("a.service", "abc")], Vec::new());
        let (_, bytes) = detach(&mut sent);
        assert!(attach((sent.clone(), vec![2]), bytes.clone()).is_err());
        assert!(attach((sent.clone(), vec![3, 0]), bytes.clone()).is_err());
        // Lengths whose sum overflows are refused, not a panic.
        assert!(attach((sent.clone(), vec![usize::MAX, 4]), bytes).is_err());
        // A length that splits a character.
        let mut sent = Outcome::Units(
            vec![unit("a.service", "é"), unit("b.service", "x")],
            Vec::new(),
        );
        let (_, bytes) = detach(&mut sent);
        assert!(attach((sent, vec![1, 2]), bytes).is_err());
    }
}
