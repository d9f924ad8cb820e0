//! Where a check looks, and what a check does to it (Sparrow6's contexts).
//!
//! - Default: every line, every time; a check never narrows it.
//! - Sequence (`begin:`): after each passing step, each stream's candidate
//!   is the line right after its last match; a failing step empties it.
//! - Range (`between:`) and within (`within:`): groups of lines, one stream
//!   each; a passing step keeps the streams it matched in, a failing one
//!   stops all narrowing. Within also "zooms": a regex is applied to the
//!   first capture the previous check took from that line.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use regex::Regex;

/// A line in a context.
#[derive(Debug, Clone)]
pub(crate) struct Item {
    /// 0-based line number in the data.
    pub index: usize,
    /// Stream id; 0 means none yet.
    pub sid: usize,
    /// What the last check captured from this line.
    pub caps: Vec<String>,
}

/// A capture record (`captures.json` entry).
#[derive(Debug, Clone)]
pub(crate) struct Capture {
    pub sid: usize,
    pub data: Vec<String>,
    pub index: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Default,
    Sequence,
    Range,
    Within,
}

impl Kind {
    /// The tag in the report (`stdout match (s) <..>`).
    pub fn tag(self) -> &'static str {
        match self {
            Kind::Default => "",
            Kind::Sequence => "(s) ",
            Kind::Range => "(r) ",
            Kind::Within => "(w) ",
        }
    }
}

/// What a check matches with.
pub(crate) enum Matcher {
    /// A trimmed, case-sensitive substring.
    Plain(String),
    /// `:any:`: every line.
    Any,
    /// `:N:`: the line with index N.
    Line(usize),
    /// A translated regex and its top-level positional groups.
    Regex { re: Regex, groups: Vec<usize> },
}

/// The evaluator's current context.
pub(crate) struct Ctx {
    pub kind: Kind,
    /// For Default, empty: the whole data is meant.
    pub items: Vec<Item>,
    pub streams: BTreeMap<usize, Vec<Item>>,
    pub just_started: bool,
    pub initial_streams: usize,
    /// Ranges stop narrowing after a failed check.
    pub narrowing: bool,
    next_sid: usize,
    /// Within's zoom: what the previous check captured, by line index
    /// (empty after a check that captured nothing: the whole line again).
    prev_caps: HashMap<usize, Vec<String>>,
}

/// What one check found.
pub(crate) struct Found {
    pub status: bool,
    pub matched: Vec<usize>,
    /// None when not taken yet: in the default context captures are only
    /// needed by code blocks, so they are made when one runs.
    pub captures: Option<Vec<Capture>>,
}

impl Ctx {
    pub fn default_ctx() -> Ctx {
        Ctx::with(Kind::Default, Vec::new())
    }

    fn with(kind: Kind, items: Vec<Item>) -> Ctx {
        let initial_streams = items.iter().map(|i| i.sid).collect::<BTreeSet<_>>().len();
        Ctx {
            kind,
            items,
            streams: BTreeMap::new(),
            just_started: true,
            initial_streams,
            narrowing: true,
            next_sid: 1,
            prev_caps: HashMap::new(),
        }
    }

    /// `begin:`: every line a candidate, no streams yet.
    pub fn sequence(len: usize) -> Ctx {
        let items = (0..len)
            .map(|index| Item {
                index,
                sid: 0,
                caps: Vec::new(),
            })
            .collect();
        let mut c = Ctx::with(Kind::Sequence, items);
        // Sparrow6 crashes on a negation right after `begin:`; here all
        // lines are one stream then, so a negation fails if found at all.
        c.initial_streams = 1;
        c
    }

    /// `between: {A} {B}`: the lines strictly between a line matching
    /// `start` and the next one matching `end`, one stream per group; a
    /// line-number boundary (`:N:`) is itself included. A group without an
    /// end is dropped.
    pub fn range(data: &[String], start: &Boundary, end: &Boundary) -> Ctx {
        let mut items = Vec::new();
        let mut group: Option<Vec<Item>> = None;
        let mut sid = 0;
        for (index, line) in data.iter().enumerate() {
            match group.as_mut() {
                None => {
                    if start.hits(index, line) {
                        sid += 1;
                        let mut g = Vec::new();
                        if start.inclusive() {
                            g.push(Item {
                                index,
                                sid,
                                caps: Vec::new(),
                            });
                            if end.hits(index, line) && end.inclusive() {
                                items.extend(g);
                                continue;
                            }
                        }
                        group = Some(g);
                    }
                }
                Some(g) => {
                    if end.hits(index, line) {
                        if end.inclusive() {
                            g.push(Item {
                                index,
                                sid,
                                caps: Vec::new(),
                            });
                        }
                        items.append(g);
                        group = None;
                    } else {
                        g.push(Item {
                            index,
                            sid,
                            caps: Vec::new(),
                        });
                    }
                }
            }
        }
        Ctx::with(Kind::Range, items)
    }

    /// `within: RE`: each line matching RE is its own stream; `:N:` is
    /// line N alone.
    pub fn within(data: &[String], start: &Boundary) -> Ctx {
        let mut items = Vec::new();
        for (index, line) in data.iter().enumerate() {
            if start.hits(index, line) {
                let sid = items.len() + 1;
                items.push(Item {
                    index,
                    sid,
                    caps: Vec::new(),
                });
            }
        }
        Ctx::with(Kind::Within, items)
    }

    /// Runs one check over the context.
    pub fn check(&mut self, data: &[String], m: &Matcher, negate: bool) -> Found {
        if self.kind == Kind::Default {
            return check_all(data, m, negate);
        }
        let mut found = Found {
            status: negate,
            matched: Vec::new(),
            captures: Some(Vec::new()),
        };
        let captures = found.captures.get_or_insert_with(Vec::new);
        let zoom = self.kind == Kind::Within && !self.just_started;
        let prev_caps = std::mem::take(&mut self.prev_caps);
        let mut new_items: Vec<Item> = Vec::new();
        let mut neg_streams = BTreeSet::new();
        let mut visit = |item: Item, line: &str| {
            let subject = match (&m, zoom) {
                (Matcher::Regex { .. }, true) => prev_caps
                    .get(&item.index)
                    .and_then(|c| c.first())
                    .map(String::as_str)
                    .unwrap_or(line),
                _ => line,
            };
            let caps = match m {
                Matcher::Plain(p) => line.contains(p.as_str()).then(|| vec![line.to_string()]),
                Matcher::Any => Some(vec![line.to_string()]),
                Matcher::Line(n) => (item.index == *n).then(|| vec![line.to_string()]),
                Matcher::Regex { re, groups } => regex_caps(re, groups, subject, line, negate),
            };
            let Some(caps) = caps else { return };
            if negate {
                found.status = false;
                neg_streams.insert(item.sid);
                return;
            }
            found.status = true;
            found.matched.push(item.index);
            captures.push(Capture {
                sid: item.sid,
                data: caps.clone(),
                index: item.index,
            });
            new_items.push(Item { caps, ..item });
        };
        for item in &self.items {
            let line = data.get(item.index).map(String::as_str).unwrap_or("");
            visit(item.clone(), line);
        }
        if negate && self.kind != Kind::Default {
            // Inside a block a negation fails only when the pattern is in
            // every live stream (Sparrow6's rule).
            let all = if self.just_started {
                self.initial_streams
            } else {
                self.streams.len()
            };
            found.status = neg_streams.is_empty() || neg_streams.len() < all;
        }
        if !found.status {
            match self.kind {
                Kind::Default => {}
                Kind::Sequence => {
                    self.items.clear();
                    self.streams.clear();
                }
                Kind::Range | Kind::Within => {
                    self.narrowing = false;
                    self.streams.clear();
                }
            }
        }
        if self.kind == Kind::Within {
            self.prev_caps = captures.iter().map(|c| (c.index, c.data.clone())).collect();
        }
        if !new_items.is_empty() {
            self.narrow(data.len(), new_items);
        }
        found
    }

    fn narrow(&mut self, len: usize, matched: Vec<Item>) {
        match self.kind {
            Kind::Default => {}
            Kind::Sequence => {
                self.just_started = false;
                let mut streams = BTreeMap::new();
                let mut next = Vec::new();
                for mut item in matched {
                    if item.sid == 0 {
                        item.sid = self.next_sid;
                        self.next_sid += 1;
                    }
                    let mut history = self.streams.remove(&item.sid).unwrap_or_default();
                    if item.index + 1 < len {
                        next.push(Item {
                            index: item.index + 1,
                            sid: item.sid,
                            caps: Vec::new(),
                        });
                    }
                    history.push(item.clone());
                    streams.insert(item.sid, history);
                }
                self.streams = streams;
                self.items = next;
            }
            Kind::Range | Kind::Within => {
                if !self.narrowing {
                    return;
                }
                self.just_started = false;
                let hit: BTreeSet<usize> = matched.iter().map(|i| i.sid).collect();
                let mut by_index: BTreeMap<usize, Item> = BTreeMap::new();
                for item in matched {
                    self.streams.entry(item.sid).or_default().push(item.clone());
                    by_index.insert(item.index, item);
                }
                self.streams.retain(|sid, _| hit.contains(sid));
                let items = std::mem::take(&mut self.items);
                self.items = items
                    .into_iter()
                    .filter(|i| hit.contains(&i.sid))
                    .map(|i| by_index.remove(&i.index).unwrap_or(i))
                    .collect();
            }
        }
    }
}

/// A check over every line, matching only: no captures are taken.
fn check_all(data: &[String], m: &Matcher, negate: bool) -> Found {
    let mut matched = Vec::new();
    for (i, line) in data.iter().enumerate() {
        let hit = match m {
            Matcher::Plain(p) => line.contains(p.as_str()),
            Matcher::Any => true,
            Matcher::Line(n) => i == *n,
            Matcher::Regex { re, .. } => re.is_match(line),
        };
        if hit {
            matched.push(i);
        }
    }
    let status = matched.is_empty() == negate;
    if negate {
        // A negation records nothing.
        matched.clear();
    }
    Found {
        status,
        matched,
        captures: Some(Vec::new()).filter(|_| negate),
    }
}

/// The captures of lines a check over every line matched.
pub(crate) fn captures_of(data: &[String], m: &Matcher, matched: &[usize]) -> Vec<Capture> {
    matched
        .iter()
        .map(|&index| {
            let line = data.get(index).map(String::as_str).unwrap_or("");
            let data = match m {
                Matcher::Regex { re, groups } => {
                    regex_caps(re, groups, line, line, false).unwrap_or_default()
                }
                _ => vec![line.to_string()],
            };
            Capture {
                sid: 0,
                data,
                index,
            }
        })
        .collect()
}

/// What a regex captured from `subject`, or None when it does not match.
/// Captures are the top-level positional groups of every match, or the
/// whole line when the pattern has none (Sparrow6's rule).
fn regex_caps(
    re: &Regex,
    groups: &[usize],
    subject: &str,
    line: &str,
    negate: bool,
) -> Option<Vec<String>> {
    if negate || groups.is_empty() {
        return re.is_match(subject).then(|| vec![line.to_string()]);
    }
    let mut caps = Vec::new();
    let mut any = false;
    for c in re.captures_iter(subject) {
        any = true;
        for &g in groups {
            caps.push(c.get(g).map(|m| m.as_str().to_string()).unwrap_or_default());
        }
    }
    any.then_some(caps)
}

/// A `between:`/`within:` boundary.
pub(crate) enum Boundary {
    Line(usize),
    Regex(Regex),
}

impl Boundary {
    fn hits(&self, index: usize, line: &str) -> bool {
        match self {
            Boundary::Line(n) => *n == index,
            Boundary::Regex(re) => re.is_match(line),
        }
    }

    fn inclusive(&self) -> bool {
        matches!(self, Boundary::Line(_))
    }
}
