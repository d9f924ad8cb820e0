//! The generator, tested by running the real binary with the three
//! directories systemd passes (normal, early, late): its contract
//! (`contract`) and what it does with hostile input (`hostile`).

mod contract;
mod hostile;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_systemd-sparrow-generator");

/// A scratch world: definitions, a unit root for shebang units, and the
/// generator's three output directories.
pub(crate) struct World {
    _tmp: tempfile::TempDir,
    pub(crate) root: PathBuf,
}

impl World {
    pub(crate) fn new() -> World {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        for d in ["defs", "defs2", "units", "normal", "early", "late"] {
            fs::create_dir_all(root.join(d)).unwrap();
        }
        World { _tmp: tmp, root }
    }
    pub(crate) fn p(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }
    pub(crate) fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.p(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, text).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        p
    }
    pub(crate) fn command(&self, bin: &Path) -> Command {
        let mut c = Command::new(bin);
        c.env_clear()
            .env(
                "SYSTEMD_SPARROW_PATH",
                format!("{}:{}", self.p("defs").display(), self.p("defs2").display()),
            )
            .env("SYSTEMD_SPARROW_UNIT_ROOT", self.p("units"))
            .env("SYSTEMD_SPARROW_LOG", "stderr")
            .env("SYSTEMD_SPARROW_RAKU_CACHE", self.p("raku-cache"))
            .args([self.p("normal"), self.p("early"), self.p("late")]);
        c
    }
    pub(crate) fn run(&self) -> Output {
        self.command(Path::new(BIN)).output().unwrap()
    }
    pub(crate) fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.p(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }
    pub(crate) fn link(&self, rel: &str) -> PathBuf {
        fs::read_link(self.p(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }
    /// Every path below the output directories, for exact-tree assertions.
    pub(crate) fn outputs(&self) -> Vec<String> {
        let mut out = Vec::new();
        for d in ["normal", "early", "late"] {
            collect(&self.p(d), &self.root, &mut out);
        }
        out.sort();
        out
    }
}

fn collect(dir: &Path, base: &Path, out: &mut Vec<String>) {
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if fs::symlink_metadata(&p).unwrap().is_dir() {
            collect(&p, base, out);
        } else {
            out.push(p.strip_prefix(base).unwrap().display().to_string());
        }
    }
}

pub(crate) fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
