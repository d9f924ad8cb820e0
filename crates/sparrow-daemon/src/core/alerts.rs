//! `alert()` calls of closures, as the core passes them on.

use super::{Action, Core, Millis, Now};
use crate::alert::Alert;

/// The same `alert()` of a unit is raised at most once per this long.
const ALERT_EVERY: Millis = 60_000;

impl Core {
    /// Raises each alert, unless the same (unit, message) was raised within
    /// [`ALERT_EVERY`]: a closure that alerts on every evaluation must not
    /// page someone every few seconds.
    pub(super) fn on_alerts(&mut self, alerts: Vec<Alert>, now: Now, out: &mut Vec<Action>) {
        for a in alerts {
            let key = (a.unit.clone(), a.message.clone());
            let recent = self
                .alerted
                .get(&key)
                .is_some_and(|at| now.mono < at + ALERT_EVERY);
            if !recent {
                self.alerted.insert(key, now.mono);
                out.push(Action::Alert(Box::new(a)));
            }
        }
        self.alerted.retain(|_, at| now.mono < *at + ALERT_EVERY);
    }
}
