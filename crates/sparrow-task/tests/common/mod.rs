//! What the runner and hostile-input test binaries share: a task root in a
//! temporary directory, with a cache base of its own. Each binary adds its
//! own ways of running it (the hostile ones under a deadline).
#![allow(dead_code)] // each binary uses part of it

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;
use sparrow_task::runner::Options;

/// A task root (and a cache base of its own), removed when dropped.
pub struct Task {
    pub root: tempfile::TempDir,
    cache: tempfile::TempDir,
}

impl Default for Task {
    fn default() -> Task {
        Task {
            root: tempfile::tempdir().unwrap(),
            cache: tempfile::tempdir().unwrap(),
        }
    }
}

impl Task {
    /// An empty root.
    pub fn new() -> Task {
        Task::default()
    }

    /// A root with these files (paths relative to it).
    pub fn with(files: &[(&str, &str)]) -> Task {
        let t = Task::new();
        for (path, text) in files {
            t.file(path, text);
        }
        t
    }

    /// Writes `rel` (making its directories).
    pub fn file(&self, rel: &str, text: &str) -> &Task {
        let p = self.root.path().join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
        self
    }

    /// Removes `rel`.
    pub fn remove(&self, rel: &str) {
        fs::remove_file(self.root.path().join(rel)).unwrap();
    }

    /// The root, as the runner sees it (absolute, symlinks resolved).
    pub fn root(&self) -> PathBuf {
        self.root.path().canonicalize().unwrap()
    }

    /// Where runs make their cache directories.
    pub fn cache_base(&self) -> &Path {
        self.cache.path()
    }

    /// Default options, with this task's cache base.
    pub fn opts(&self) -> Options {
        Options {
            cache_base: self.cache.path().to_path_buf(),
            ..Options::default()
        }
    }

    /// [`Task::opts`] with these parameters.
    pub fn opts_with(&self, params: Value) -> Options {
        Options {
            params,
            ..self.opts()
        }
    }
}
