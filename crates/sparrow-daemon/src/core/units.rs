//! What the core knows of each unit's state in systemd: changes from
//! signals and reads, the features told when a unit starts or stops, and
//! reads that failed tried again (with a growing wait) rather than never.

use sparrow_host::runtime::UnitSnapshot;

use super::{Action, Core, Level, Millis, Now};

/// The first wait before reading a unit's state again, and the longest.
const REREAD_FIRST: Millis = 1_000;
const REREAD_MAX: Millis = 60_000;

impl Core {
    /// A unit's state in systemd changed (or was read).
    pub(super) fn unit_state(
        &mut self,
        unit: &str,
        state: Option<String>,
        cgroup: Option<String>,
        now: Now,
        out: &mut Vec<Action>,
    ) {
        let Some(u) = self.units.get_mut(unit) else {
            return;
        };
        let was = u.active();
        if let Some(s) = state {
            u.active_state = Some(s);
        }
        let fresh = cgroup.is_some();
        if let Some(c) = cgroup {
            u.control_group = c;
        }
        let is = u.active();
        match (was, is) {
            (false, true) => self.active += 1,
            (true, false) => self.active -= 1,
            _ => {}
        }
        let snap = UnitSnapshot {
            active_state: u.active_state.clone().unwrap_or_default(),
            control_group: u.control_group.clone(),
        };
        if self.snapshot.get(unit) != Some(&snap) {
            self.snapshot.insert(unit.to_string(), snap);
            self.snapshot_dirty = true;
        }
        if is && !was {
            // A (re)started unit, or one first seen running: its cgroup is
            // new, what was read of it is stale (unless this was the read).
            if !fresh {
                out.push(Action::ReadInfo(unit.to_string()));
            }
            self.with_features(now, out, &mut |f, _, cx| f.started(unit, cx));
        } else if was && !is {
            self.with_features(now, out, &mut |f, _, cx| f.stopped(unit, cx));
        }
    }

    /// Reading `unit`'s state failed: read it again later, not never (its
    /// state is unknown until then).
    pub(super) fn unread(&mut self, unit: String, e: &str, now: Now, out: &mut Vec<Action>) {
        if !self.units.contains_key(&unit) {
            return;
        }
        let wait = self
            .reread
            .get(&unit)
            .map_or(REREAD_FIRST, |(_, w)| (w * 2).min(REREAD_MAX));
        let msg = format!("cannot read the state of {unit}: {e}; again in {wait} ms");
        out.push(Action::log(Level::Warn, Some(&unit), msg));
        self.reread.insert(unit, (now.mono + wait, wait));
    }

    /// Reads again the states that are due.
    pub(super) fn reread_due(&mut self, now: Now, out: &mut Vec<Action>) {
        if !self.connected() {
            return;
        }
        for (unit, (at, _)) in &mut self.reread {
            if *at <= now.mono {
                *at = Millis::MAX; // until this read answers
                out.push(Action::ReadInfo(unit.clone()));
            }
        }
    }

    /// When a state is next to be read again.
    pub(super) fn reread_at(&self) -> Option<Millis> {
        let t = self.reread.values().map(|(t, _)| *t).min()?;
        (t != Millis::MAX && self.connected()).then_some(t)
    }
}
