//! Translations kept by content, so that a boot with unchanged Raku files
//! starts no Raku at all.
//!
//! The key is a SHA-256 of the bridge's own text, the `raku` binary's
//! identity (its resolved path, size and modification time: an upgrade
//! changes them), the host's facts, the file's path and its text. A
//! translation also depends on what the file looked at while it was read;
//! the shim reports that and the entry keeps it: the flags files it read
//! (their SHA-256), the paths it tested, the environment variables it
//! looked at (their values). An entry is used only while all of those are
//! unchanged. A file that iterates the whole environment, reads other files
//! or runs programs itself is not cached (the bridge cannot see what it
//! depended on).
//!
//! The CLI (`check`, `render`, `diff`) writes entries; the generator only
//! reads them (it runs before `/var` may be writable, and must not leave
//! files behind).

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sparrow_lang::Facts;
use sparrow_source::{read_source, Owners};

/// Where entries live: `SYSTEMD_SPARROW_RAKU_CACHE`, else
/// `/var/lib/systemd-sparrow/raku`.
pub fn dir(env: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    env("SYSTEMD_SPARROW_RAKU_CACHE")
        .filter(|d| !d.is_empty())
        .map_or_else(
            || PathBuf::from("/var/lib/systemd-sparrow/raku"),
            PathBuf::from,
        )
}

/// What a translation looked at, as the shim reported it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deps {
    /// Files read through `feature-flags`.
    pub files: Vec<String>,
    /// Paths tested with `file-exists`.
    pub exists: Vec<String>,
    /// Environment variables looked at (`*`: all of them).
    pub env: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    text: String,
    files: Vec<(String, Option<String>)>,
    exists: Vec<(String, bool)>,
    env: Vec<(String, Option<String>)>,
}

/// A cache directory.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
    write: bool,
}

impl Cache {
    /// The cache in `dir`; `write`: this run may add entries.
    pub fn new(dir: PathBuf, write: bool) -> Cache {
        Cache { dir, write }
    }

    /// The translation kept under `key`, when everything it looked at is
    /// as it was.
    pub fn get(&self, key: &str, env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
        // An entry is code the generator will run as root: read with the
        // loader's reader and owner rule (a regular file, never blocking,
        // not writable by others, at most 1 MiB), like a definition.
        let raw = read_source(
            &self.dir.join(format!("{key}.json")),
            Owners::for_generator(),
        )
        .ok()?
        .text;
        let e: Entry = serde_json::from_str(&raw).ok()?;
        let same = e.files.iter().all(|(p, h)| file_hash(Path::new(p)) == *h)
            && e.exists.iter().all(|(p, x)| Path::new(p).exists() == *x)
            && e.env.iter().all(|(k, v)| env(k) == *v);
        same.then_some(e.text)
    }

    /// Keeps `text` under `key` (when this run may write, and the file did
    /// not look at the whole environment). Failures only cost a later run
    /// its cache hit.
    pub fn put(&self, key: &str, text: &str, deps: &Deps, env: &dyn Fn(&str) -> Option<String>) {
        if !self.write || deps.env.iter().any(|k| k == "*") {
            return;
        }
        let entry = Entry {
            text: text.to_string(),
            files: deps
                .files
                .iter()
                .map(|p| (p.clone(), file_hash(Path::new(p))))
                .collect(),
            exists: deps
                .exists
                .iter()
                .map(|p| (p.clone(), Path::new(p).exists()))
                .collect(),
            env: deps.env.iter().map(|k| (k.clone(), env(k))).collect(),
        };
        let Ok(json) = serde_json::to_vec(&entry) else {
            return;
        };
        // The project's one atomic writer (no link followed, replaced by
        // a rename).
        let _ = sparrow_source::atomic::write_file(&self.dir.join(format!("{key}.json")), &json);
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A file the translation read (a flags file), hashed; read as a source
/// is, so that a FIFO or a huge file named there cannot stall a run.
fn file_hash(p: &Path) -> Option<String> {
    read_source(p, Owners::Any)
        .ok()
        .map(|t| hex(&Sha256::digest(t.text.as_bytes())))
}

/// The `raku` binary's identity with the bridge's text: a different Raku
/// or a different shim is a different translation.
pub fn raku_identity(raku: &Path) -> String {
    let real = fs::canonicalize(raku).unwrap_or_else(|_| raku.to_path_buf());
    let (len, mtime) = fs::metadata(&real).map_or((0, 0), |m| {
        use std::os::unix::fs::MetadataExt;
        (
            m.len(),
            m.mtime_nsec() as i128 + m.mtime() as i128 * 1_000_000_000,
        )
    });
    let shim = hex(&Sha256::digest(crate::BRIDGE.as_bytes()));
    format!("{}:{len}:{mtime}:{shim}", real.display())
}

/// The cache key of one file.
pub fn key(raku_id: &str, facts: &Facts, path: &Path, text: &str) -> String {
    let mut h = Sha256::new();
    for part in [
        raku_id.as_bytes(),
        serde_json::to_string(facts).unwrap_or_default().as_bytes(),
        path.as_os_str().as_encoded_bytes(),
        text.as_bytes(),
    ] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part);
    }
    hex(&h.finalize())
}

#[cfg(test)]
mod tests;
