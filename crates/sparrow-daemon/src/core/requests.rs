//! Control requests (`status`, `eval`, `reload`) and the status report.

use super::{Action, Core, Link, Now};
use crate::control::{DaemonStatus, Request, Response, Status, UnitStatus};

impl Core {
    pub(super) fn on_control(&mut self, id: u64, req: Request, now: Now, out: &mut Vec<Action>) {
        match &req {
            Request::Status { unit } => {
                if let Some(u) = unit {
                    if !self.units.contains_key(u) {
                        out.push(Action::reply(
                            id,
                            Response::error(format!(
                                "{u} is not managed by systemd-sparrowd (its definition asks for nothing at runtime)"
                            )),
                        ));
                        return;
                    }
                }
                let status = self.status(unit.as_deref(), now);
                out.push(Action::reply(
                    id,
                    Response {
                        ok: true,
                        status: Some(status),
                        ..Response::default()
                    },
                ));
            }
            Request::Reload => {
                self.read_sources(out);
                out.push(Action::reply(
                    id,
                    Response {
                        ok: true,
                        message: Some("re-reading definitions".into()),
                        ..Response::default()
                    },
                ));
            }
            Request::Eval { unit } => {
                let Some(u) = self.units.get(unit) else {
                    out.push(Action::reply(
                        id,
                        Response::error(format!("{unit} is not managed by systemd-sparrowd")),
                    ));
                    return;
                };
                if let Some(why) = &u.quarantined {
                    out.push(Action::reply(
                        id,
                        Response::error(format!(
                            "{unit} is not evaluated: {why}; fix its definition, then systemd-sparrow reload"
                        )),
                    ));
                    return;
                }
                self.feature_request(id, &req, now, out);
            }
            Request::Reset { unit } => {
                if !self.units.contains_key(unit) {
                    out.push(Action::reply(
                        id,
                        Response::error(format!("{unit} is not managed by systemd-sparrowd")),
                    ));
                    return;
                }
                self.feature_request(id, &req, now, out);
            }
        }
    }

    /// Hands a request to the features; the first that takes it answers
    /// (now, or later with an action).
    fn feature_request(&mut self, id: u64, req: &Request, now: Now, out: &mut Vec<Action>) {
        let mut answered = None;
        self.with_features(now, out, &mut |f, units, cx| {
            if answered.is_none() {
                answered = f.request(id, req, units, cx);
            }
        });
        if let Some(resp) = answered {
            out.push(Action::reply(id, resp));
        }
    }

    /// One line for `STATUS=`.
    pub fn status_line(&self) -> String {
        // Counted as units change (built after every event: no walk here).
        let active = self.active;
        format!(
            "managing {} units ({active} active); {} changes applied; {} evaluation errors; {}",
            self.units.len(),
            self.counters.applied,
            self.counters.errors,
            via_name(match self.link {
                Link::Up(v) => Some(v),
                _ => None,
            })
        )
    }

    /// `status`: the daemon, and one entry per unit (or only `only`).
    pub fn status(&self, only: Option<&str>, now: Now) -> Status {
        let units = self
            .units
            .values()
            .filter(|u| only.is_none_or(|o| o == u.spec.unit))
            .map(|u| {
                let mut entry = UnitStatus {
                    unit: u.spec.unit.clone(),
                    definition: format!("{}:{}", u.spec.source.display(), u.spec.line),
                    active_state: u.active_state.clone().unwrap_or_else(|| "unknown".into()),
                    features: u.spec.features.clone(),
                    quarantined: u.quarantined.clone(),
                    ..UnitStatus::default()
                };
                for f in &self.features {
                    f.status(&u.spec.unit, now, &mut entry);
                }
                entry
            })
            .collect();
        let mut global = self.global.clone();
        Status {
            daemon: DaemonStatus {
                pid: self.pid,
                bus: via_name(match self.link {
                    Link::Up(v) => Some(v),
                    _ => None,
                })
                .into(),
                generation: self.loaded,
                managed: self.units.len(),
                changes_last_minute: global.used(now.mono),
                max_changes_per_minute: self.settings.max_changes_per_minute,
                evaluations: self.counters.evaluations,
                errors: self.counters.errors,
                slow: self.counters.slow,
                postponed: self.counters.postponed,
                applied: self.counters.applied,
                problems: self.problems.clone(),
                raku_workers: self.raku.values().cloned().collect(),
            },
            units,
        }
    }
}

/// How the daemon talks to systemd, for people.
pub(super) fn via_name(via: Option<crate::systemd::Via>) -> &'static str {
    use crate::systemd::Via;
    match via {
        Some(Via::SystemBus) => "system bus",
        Some(Via::Private) => "private socket",
        None => "disconnected",
    }
}
