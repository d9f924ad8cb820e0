//! The real machine, as definitions see it.
//!
//! [`RealHost`] implements `sparrow_lang::Host` from `/etc/os-release`,
//! `/proc`, `uname(2)`, `sched_getaffinity(2)` and a `systemd-detect-virt`
//! style probe. Every fact may be overridden from a JSON file named by
//! `SYSTEMD_SPARROW_FACTS`, so that tests and admins can render for another
//! machine. Reads only: this runs inside a generator at boot.
#![deny(missing_docs)]

mod facts;
pub mod runtime;
pub mod tasks;
mod virt;

use std::path::{Path, PathBuf};

use sparrow_lang::{Facts, Host};

pub use facts::{gather, parse_os_release};
pub use virt::detect as detect_virtualization;

/// The environment variable naming a facts override file.
pub const FACTS_ENV: &str = "SYSTEMD_SPARROW_FACTS";

/// Why the facts override could not be used.
#[derive(Debug, thiserror::Error)]
pub enum FactsError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The override file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a JSON object of known facts.
    #[error("{path}: {message}")]
    Invalid {
        /// The override file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// The machine this process runs on.
#[derive(Debug, Clone)]
pub struct RealHost {
    facts: Facts,
}

impl RealHost {
    /// Reads the host's facts, applying the override file named by
    /// `SYSTEMD_SPARROW_FACTS` when set. On a bad override the error is
    /// returned together with a host built from the real facts, so the
    /// caller can report it and carry on.
    pub fn from_env() -> (RealHost, Option<FactsError>) {
        match std::env::var_os(FACTS_ENV) {
            Some(path) => match RealHost::with_overrides(Path::new(&path)) {
                Ok(h) => (h, None),
                Err(e) => (
                    RealHost {
                        facts: gather(&serde_json::Map::new()),
                    },
                    Some(e),
                ),
            },
            None => (
                RealHost {
                    facts: gather(&serde_json::Map::new()),
                },
                None,
            ),
        }
    }

    /// Facts from the machine, with those named in the JSON file `path` replaced.
    pub fn with_overrides(path: &Path) -> Result<RealHost, FactsError> {
        let text = std::fs::read_to_string(path).map_err(|source| FactsError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let invalid = |message: String| FactsError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
        let obj = value
            .as_object()
            .ok_or_else(|| invalid("expected a JSON object such as {\"os\": \"debian\"}".into()))?;
        let facts = gather(obj);
        // Fail on unknown names and wrong types rather than silently ignoring them.
        let mut merged = serde_json::to_value(&facts).expect("facts serialise");
        for (k, v) in obj {
            if merged.get(k).is_none() {
                return Err(invalid(format!(
                    "unknown fact {k:?}; known: os, os_version, hostname, arch, kernel, virtualization, memory_total, cpu_count"
                )));
            }
            merged[k] = v.clone();
        }
        let facts: Facts = serde_json::from_value(merged).map_err(|e| invalid(e.to_string()))?;
        Ok(RealHost { facts })
    }

    /// A host with exactly these facts.
    pub fn from_facts(facts: Facts) -> RealHost {
        RealHost { facts }
    }
}

impl Host for RealHost {
    fn facts(&self) -> &Facts {
        &self.facts
    }
    fn env(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
    fn file_exists(&self, path: &str) -> bool {
        Path::new(path).exists()
    }
    fn feature_flags(&self, file: Option<&str>) -> Result<serde_json::Value, String> {
        let path = file.unwrap_or(sparrow_task::builtin::flags::DEFAULT_PATH);
        let flags = sparrow_task::builtin::flags::read(Path::new(path))?;
        Ok(serde_json::Value::Object(flags.unwrap_or_default()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_replace_named_facts_only() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("facts.json");
        std::fs::write(
            &f,
            r#"{"os": "fedora", "memory_total": 1024, "cpu_count": 64}"#,
        )
        .unwrap();
        let h = RealHost::with_overrides(&f).unwrap();
        assert_eq!(h.facts().os, "fedora");
        assert_eq!(h.facts().memory_total, 1024);
        assert_eq!(h.facts().cpu_count, 64);
        let real = gather(&serde_json::Map::new());
        assert_eq!(h.facts().kernel, real.kernel);
    }

    #[test]
    fn bad_overrides_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("facts.json");
        for (text, want) in [
            (r#"{"oss": "x"}"#, "unknown fact \"oss\""),
            (r#"{"memory_total": "lots"}"#, "invalid type"),
            ("[1]", "expected a JSON object"),
            ("{", "EOF"),
        ] {
            std::fs::write(&f, text).unwrap();
            let e = RealHost::with_overrides(&f).unwrap_err().to_string();
            assert!(e.contains(want), "{text}: {e}");
        }
        assert!(matches!(
            RealHost::with_overrides(&dir.path().join("missing.json")),
            Err(FactsError::Read { .. })
        ));
    }
}
