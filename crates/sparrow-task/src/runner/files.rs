//! What a run reads back from its root and its cache: sub-task
//! directories (which must stay in the root) and the state scripts left.

use std::path::{Component, Path, PathBuf};

use serde_json::{Map, Value};

use super::Run;
use crate::limits;

impl Run<'_> {
    /// `ROOT/tasks/NAME`, or an error when there is no such directory
    /// (Sparrow6 silently does nothing) or `NAME` would leave the root. Sparrow6 joins the text (`"$root/tasks/$name"`), so a
    /// leading `/` stays below `tasks/`; `..` and a symlink out of the root
    /// are refused (a name may come from a parameter).
    pub(super) fn sub_task(&self, name: &str) -> Result<Option<PathBuf>, String> {
        let tasks = self.root.join("tasks");
        let rel = Path::new(name.trim_start_matches('/'));
        let refused = || {
            format!(
                "task: {name} is not a sub-task: names stay inside {}",
                tasks.display()
            )
        };
        if !rel
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
        {
            return Err(refused());
        }
        let sub = tasks.join(rel);
        // Sparrow6 silently runs nothing for a missing sub-task; a typo in
        // a hook would then pass for ever, so it fails the hook here.
        if !sub.is_dir() {
            return Err(format!(
                "task: {name}: no such sub-task ({})",
                sub.display()
            ));
        }
        match sub.canonicalize() {
            Ok(real) if real.starts_with(&self.root) => Ok(Some(sub)),
            _ => Err(refused()),
        }
    }

    /// The state scripts left (`state.json`), a map. One that cannot be
    /// read, or is not a map, is reported, not silently dropped.
    pub(super) fn state(&mut self) -> Value {
        let empty = || Value::Object(Map::new());
        let path = self.cache_root.join("state.json");
        let problem = match limits::read_text(&path, limits::MAX_FILE) {
            Ok(text) => match serde_json::from_str::<Value>(&text) {
                Ok(v @ Value::Object(_)) => return v,
                Ok(v) => format!(
                    "not a map: {}",
                    v.to_string().chars().take(60).collect::<String>()
                ),
                Err(e) => format!("not JSON: {e}"),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return empty(),
            Err(e) => e.to_string(),
        };
        let note = format!("the state is unusable ({problem}): it is left empty");
        self.say(note.clone());
        self.stderr.push(note);
        empty()
    }
}
