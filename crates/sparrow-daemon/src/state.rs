//! The little the daemon remembers across restarts: when it last changed
//! each property of each unit (for `min_dwell`), and what it set. Kept under
//! /run (it describes this boot only), written atomically after every
//! change; a missing or damaged file, or one from another boot, means "no
//! recent changes". Times are on the monotonic clock, which only means
//! something within one boot: the file carries the boot's id.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sparrow_policy::health::Budget;
use sparrow_policy::{Prop, PropHistory};

/// Per unit, per property.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Persisted {
    /// Format version (2: monotonic times and a boot id).
    pub version: u32,
    /// `/proc/sys/kernel/random/boot_id` of the boot the times belong to.
    #[serde(default)]
    pub boot_id: String,
    /// The histories.
    pub units: BTreeMap<String, BTreeMap<Prop, PropHistory>>,
    /// Health checks' restart budgets: a restarted daemon must not hand a
    /// flapping unit a fresh one.
    #[serde(default)]
    pub budgets: BTreeMap<String, Budget>,
}

const VERSION: u32 = 2;

/// This boot's id (empty where the kernel does not say).
fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Reads the state file; a missing file is an empty state, a damaged one
/// is an empty state and a warning.
pub fn load(path: &Path) -> (Persisted, Option<String>) {
    match std::fs::read_to_string(path) {
        Ok(text) => match serde_json::from_str::<Persisted>(&text) {
            Ok(p) if p.version == VERSION && p.boot_id == boot_id() => (p, None),
            Ok(p) if p.version == VERSION => (
                Persisted::default(),
                Some(format!(
                    "{}: written during another boot, starting afresh",
                    path.display()
                )),
            ),
            Ok(p) => (
                Persisted::default(),
                Some(format!(
                    "{}: unknown version {}, starting afresh",
                    path.display(),
                    p.version
                )),
            ),
            Err(e) => (
                Persisted::default(),
                Some(format!("{}: {e}, starting afresh", path.display())),
            ),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => (Persisted::default(), None),
        Err(e) => (
            Persisted::default(),
            Some(format!("{}: {e}, starting afresh", path.display())),
        ),
    }
}

/// Writes the state file (through `sparrow_source::atomic`: never through a
/// planted link).
pub fn save(path: &Path, state: &Persisted) -> io::Result<()> {
    let mut s = state.clone();
    s.version = VERSION;
    s.boot_id = boot_id();
    let text = serde_json::to_string(&s).map_err(io::Error::other)?;
    sparrow_source::atomic::write_file(path, text.as_bytes())
}

/// The state edge: where [`Persisted`] lives between runs.
pub trait StateStore: Send + Sync {
    /// What a previous run left, and a warning when it was unusable.
    fn load(&self) -> (Persisted, Option<String>);
    /// Keeps `state`.
    fn save(&self, state: &Persisted) -> Result<(), StateError>;
}

/// Why the state could not be kept.
#[derive(Debug, thiserror::Error)]
#[error("cannot save {path}: {source}")]
pub struct StateError {
    /// The state file.
    pub path: std::path::PathBuf,
    /// What went wrong.
    pub source: io::Error,
}

/// The state file under `/run`.
#[derive(Debug, Clone)]
pub struct FileStore(pub std::path::PathBuf);

impl StateStore for FileStore {
    fn load(&self) -> (Persisted, Option<String>) {
        load(&self.0)
    }
    fn save(&self, state: &Persisted) -> Result<(), StateError> {
        save(&self.0, state).map_err(|source| StateError {
            path: self.0.clone(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sparrow_policy::Live;

    #[test]
    fn round_trips_and_survives_damage() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("sub/state.json");
        let mut p = Persisted::default();
        p.units.entry("web.service".into()).or_default().insert(
            Prop::MemoryMax,
            PropHistory {
                last_change: Some(123),
                last_value: Some(Live::Num(1 << 30)),
                last_target: Some(Live::Num(1 << 30)),
            },
        );
        save(&f, &p).unwrap();
        let (back, warn) = load(&f);
        assert_eq!(warn, None);
        assert_eq!(back.units, p.units);
        std::fs::write(&f, "{ not json").unwrap();
        let (back, warn) = load(&f);
        assert!(back.units.is_empty());
        assert!(warn.unwrap().contains("starting afresh"));
        let (back, warn) = load(&d.path().join("missing.json"));
        assert!(back.units.is_empty() && warn.is_none());
        // Times from another boot, or from the wall-clock format, mean nothing now.
        save(&f, &p).unwrap();
        let text = std::fs::read_to_string(&f).unwrap();
        std::fs::write(&f, text.replace(&boot_id(), "another-boot")).unwrap();
        let (back, warn) = load(&f);
        assert!(back.units.is_empty());
        assert!(warn.unwrap().contains("another boot"));
        std::fs::write(&f, r#"{"version":1,"units":{}}"#).unwrap();
        let (_, warn) = load(&f);
        assert!(warn.unwrap().contains("unknown version 1"));
    }
}
