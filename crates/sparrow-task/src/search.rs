//! Finding a plugin, as Sparrow6's `task-run` takes one: a path (anything
//! starting with `/` or `.`) runs that directory; a name is looked up in
//! the plugin directories, first match wins, then among the built-ins (so
//! an installed plugin shadows a built-in of the same name).

use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use crate::builtin::{self, Builtin};
use crate::TaskError;

/// The directories plugins are looked up in, in order of precedence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchPath {
    dirs: Vec<PathBuf>,
}

/// A plugin that was found.
pub enum Found {
    /// A task directory.
    Dir {
        /// Its root (where `config.yaml`, `tasks/` and `sparrow.json` are).
        root: PathBuf,
        /// Its `sparrow.json`, when it has one.
        meta: Option<Meta>,
    },
    /// A plugin implemented in this crate.
    Builtin(&'static Builtin),
}

impl std::fmt::Debug for Found {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Found::Dir { root, meta } => f
                .debug_struct("Dir")
                .field("root", root)
                .field("meta", meta)
                .finish(),
            Found::Builtin(b) => f.debug_tuple("Builtin").field(&b.name).finish(),
        }
    }
}

/// What a plugin's `sparrow.json` says about it (other fields are ignored).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Meta {
    /// The plugin's name, as its author wrote it.
    #[serde(default, deserialize_with = "text")]
    pub name: String,
    /// Its version.
    #[serde(default, deserialize_with = "text")]
    pub version: String,
    /// One line about it.
    #[serde(default, deserialize_with = "text")]
    pub description: String,
}

/// Accepts `"1.0"` as well as `1.0` (authors write versions both ways).
fn text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => s,
        Value::Null => String::new(),
        other => other.to_string(),
    })
}

/// Where a listed plugin comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Implemented in this crate.
    Builtin,
    /// Installed in this directory (the plugin's own root).
    Dir(PathBuf),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Builtin => f.write_str("built-in"),
            Origin::Dir(p) => write!(f, "{}", p.display()),
        }
    }
}

/// One plugin of [`SearchPath::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The name it is run by.
    pub name: String,
    /// Its version (`sparrow.json`), if it says.
    pub version: Option<String>,
    /// One line about it (or why its `sparrow.json` could not be read).
    pub description: String,
    /// Where it comes from.
    pub origin: Origin,
    /// Hidden by a plugin of the same name found earlier.
    pub shadowed: bool,
}

/// Whether `plugin` is a path (Sparrow6's rule: it starts with `/` or `.`).
pub fn is_path(plugin: &str) -> bool {
    plugin.starts_with('/') || plugin.starts_with('.')
}

/// Why `name` cannot be a plugin name, if it cannot: names are looked up
/// as one directory entry, so they must not reach elsewhere.
fn check_name(name: &str) -> Result<(), TaskError> {
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(TaskError::NotFound(format!(
            "{name:?} is not a plugin name: a name is letters, digits, '.', '_' and '-', \
             not starting with '.' (to run a directory, give its path: ./DIR or /DIR)"
        )))
    }
}

/// The `sparrow.json` of the plugin rooted at `root`, if it has one.
pub fn read_meta(root: &Path) -> Result<Option<Meta>, TaskError> {
    let path = root.join("sparrow.json");
    let text = match crate::limits::read(&path, crate::limits::MAX_FILE) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(TaskError::Config(format!("{}: {e}", path.display()))),
    };
    serde_json::from_slice(&text)
        .map(Some)
        .map_err(|e| TaskError::Config(format!("{}: {e}", path.display())))
}

/// The variable that replaces the system's plugin directories.
pub const PLUGIN_PATH_VAR: &str = "SPARROW_PLUGIN_PATH";

impl SearchPath {
    /// The system's plugin directories: `/etc/systemd/sparrow/plugins`
    /// (the administrator's), `/usr/lib/systemd/sparrow/plugins` (the
    /// distribution's packages), `/var/lib/systemd-sparrow/plugins`.
    /// Earlier ones win: the administrator overrides a package, a package
    /// overrides the hub. The last is where plugins from a hub will be
    /// installed (nothing installs there yet).
    pub fn system() -> SearchPath {
        SearchPath::new(vec![
            PathBuf::from("/etc/systemd/sparrow/plugins"),
            PathBuf::from("/usr/lib/systemd/sparrow/plugins"),
            PathBuf::from("/var/lib/systemd-sparrow/plugins"),
        ])
    }

    /// `SPARROW_PLUGIN_PATH` (colon-separated directories) when it is set,
    /// else [`SearchPath::system`]: what the CLI and the daemon use.
    pub fn from_env() -> SearchPath {
        match std::env::var_os(PLUGIN_PATH_VAR) {
            Some(v) => SearchPath::new(
                std::env::split_paths(&v)
                    .filter(|p| !p.as_os_str().is_empty())
                    .collect(),
            ),
            None => SearchPath::system(),
        }
    }

    /// These directories, the first winning.
    pub fn new(dirs: Vec<PathBuf>) -> SearchPath {
        SearchPath { dirs }
    }

    /// The directories, in order of precedence.
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// Finds `plugin`: a path is that directory; a name is the first
    /// `DIR/NAME/` of the search path, else the built-in called so.
    pub fn resolve(&self, plugin: &str) -> Result<Found, TaskError> {
        if is_path(plugin) {
            let root = PathBuf::from(plugin);
            if !root.is_dir() {
                let what = if root.exists() {
                    "is not a directory (run the task's directory, not its script)"
                } else {
                    "no such task directory"
                };
                return Err(TaskError::NotFound(format!("{plugin}: {what}")));
            }
            let meta = read_meta(&root)?;
            return Ok(Found::Dir { root, meta });
        }
        check_name(plugin)?;
        for dir in &self.dirs {
            let root = dir.join(plugin);
            if root.is_dir() {
                // sparrow.json is what makes a directory a plugin: a stray
                // directory is an error, neither a plugin nor skipped (so a
                // half-installed plugin is not replaced by a built-in
                // without a word).
                return match read_meta(&root)? {
                    Some(meta) => Ok(Found::Dir {
                        root,
                        meta: Some(meta),
                    }),
                    None => Err(TaskError::NotFound(format!(
                        "{} is not a plugin: it has no sparrow.json (name, version, description)",
                        root.display()
                    ))),
                };
            }
        }
        if let Some(b) = builtin::find(plugin) {
            return Ok(Found::Builtin(b));
        }
        let searched = if self.dirs.is_empty() {
            "no plugin directories".to_string()
        } else {
            self.dirs
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        // `task run t1` with a directory t1 here: it meant ./t1.
        let local = if Path::new(plugin).is_dir() {
            format!("; ./{plugin} is a directory here: to run it, write ./{plugin}")
        } else {
            String::new()
        };
        Err(TaskError::NotFound(format!(
            "no plugin called {plugin}: searched {searched}, and the built-ins \
             (`systemd-sparrow task list` shows what is available){local}"
        )))
    }

    /// Every plugin: the installed ones and the built-ins, sorted by name;
    /// of plugins sharing a name, the one [`SearchPath::resolve`] picks
    /// comes first and the others are marked shadowed.
    pub fn list(&self) -> Vec<Listed> {
        let mut out: Vec<Listed> = Vec::new();
        for dir in &self.dirs {
            let Ok(entries) = fs::read_dir(dir) else {
                continue;
            };
            let mut here: Vec<Listed> = entries
                .filter_map(Result::ok)
                .filter_map(|e| {
                    let name = e.file_name().to_str()?.to_string();
                    let root = e.path();
                    if check_name(&name).is_err() || !root.is_dir() {
                        return None;
                    }
                    // A broken sparrow.json is listed (with why) rather
                    // than hidden: `task run` would stop at it.
                    let (version, description) = match read_meta(&root) {
                        Ok(Some(m)) => (Some(m.version).filter(|v| !v.is_empty()), m.description),
                        Ok(None) => (None, "not a plugin: no sparrow.json".to_string()),
                        Err(e) => (None, format!("unusable: {e}")),
                    };
                    Some(Listed {
                        name,
                        version,
                        description,
                        origin: Origin::Dir(root),
                        shadowed: false,
                    })
                })
                .collect();
            here.sort_by(|a, b| a.name.cmp(&b.name));
            out.extend(here);
        }
        out.extend(builtin::all().iter().map(|b| Listed {
            name: b.name.to_string(),
            version: None,
            description: b.description.to_string(),
            origin: Origin::Builtin,
            shadowed: false,
        }));
        // Stable: entries of one name stay in order of precedence.
        out.sort_by(|a, b| a.name.cmp(&b.name));
        for i in 1..out.len() {
            if out[i].name == out[i - 1].name {
                out[i].shadowed = true;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plugin(dir: &Path, name: &str, json: Option<&str>) -> PathBuf {
        let root = dir.join(name);
        fs::create_dir_all(&root).unwrap();
        fs::write(root.join("task.bash"), "echo hi\n").unwrap();
        if let Some(j) = json {
            fs::write(root.join("sparrow.json"), j).unwrap();
        }
        root
    }

    fn not_found(r: Result<Found, TaskError>) -> String {
        match r {
            Err(TaskError::NotFound(m)) => m,
            Err(e) => panic!("another error: {e}"),
            Ok(f) => panic!("found {f:?}"),
        }
    }

    #[test]
    fn a_path_is_that_directory() {
        let t = tempfile::tempdir().unwrap();
        let root = plugin(t.path(), "p", None);
        let sp = SearchPath::new(vec![]);
        match sp.resolve(root.to_str().unwrap()).unwrap() {
            Found::Dir { root: r, meta } => {
                assert_eq!(r, root);
                assert!(meta.is_none());
            }
            f => panic!("{f:?}"),
        }
        let file = root.join("task.bash");
        assert!(not_found(sp.resolve(file.to_str().unwrap())).contains("is not a directory"));
        assert!(not_found(sp.resolve("./surely/not/here")).contains("no such task directory"));
    }

    #[test]
    fn a_name_is_looked_up_in_order_and_reads_sparrow_json() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        plugin(
            a.path(),
            "web-check",
            Some(
                r#"{"name": "web-check", "version": "1.2.0", "description": "admin's", "url": "x"}"#,
            ),
        );
        plugin(b.path(), "web-check", Some(r#"{"version": 2}"#));
        plugin(b.path(), "only-b", Some("{}"));
        plugin(b.path(), "no-json", None);
        let sp = SearchPath::new(vec![a.path().into(), b.path().into()]);
        // Without sparrow.json a directory is not a plugin.
        assert!(not_found(sp.resolve("no-json")).contains("has no sparrow.json"));
        match sp.resolve("web-check").unwrap() {
            Found::Dir { root, meta } => {
                assert_eq!(root, a.path().join("web-check"));
                let m = meta.unwrap();
                assert_eq!(
                    (m.version.as_str(), m.description.as_str()),
                    ("1.2.0", "admin's")
                );
            }
            f => panic!("{f:?}"),
        }
        match sp.resolve("only-b").unwrap() {
            Found::Dir { root, .. } => assert_eq!(root, b.path().join("only-b")),
            f => panic!("{f:?}"),
        }
        // Reversed, the other one wins (and a numeric version is accepted).
        let sp = SearchPath::new(vec![b.path().into(), a.path().into()]);
        match sp.resolve("web-check").unwrap() {
            Found::Dir { meta, .. } => assert_eq!(meta.unwrap().version, "2"),
            f => panic!("{f:?}"),
        }
    }

    #[test]
    fn an_installed_plugin_shadows_a_builtin() {
        let b = builtin::all().first().expect("built-in plugins exist");
        let t = tempfile::tempdir().unwrap();
        let sp = SearchPath::new(vec![t.path().into()]);
        assert!(matches!(sp.resolve(b.name).unwrap(), Found::Builtin(x) if x.name == b.name));
        plugin(t.path(), b.name, Some("{}"));
        assert!(matches!(sp.resolve(b.name).unwrap(), Found::Dir { .. }));
        let listed: Vec<Listed> = sp.list().into_iter().filter(|l| l.name == b.name).collect();
        assert_eq!(listed.len(), 2);
        assert!(matches!(listed[0].origin, Origin::Dir(_)) && !listed[0].shadowed);
        assert!(listed[1].origin == Origin::Builtin && listed[1].shadowed);
    }

    #[test]
    fn names_that_reach_elsewhere_are_refused() {
        let t = tempfile::tempdir().unwrap();
        plugin(t.path(), "x", None);
        let sp = SearchPath::new(vec![t.path().join("sub")]);
        fs::create_dir(t.path().join("sub")).unwrap();
        for bad in ["", "a/b", "x/../x", "a b", "ü", "-\0"] {
            let m = not_found(sp.resolve(bad));
            assert!(m.contains("letters, digits"), "{bad:?}: {m}");
        }
        // `../x` is a path (it starts with '.'), resolved as one, not
        // looked up in the plugin directories.
        let m = not_found(sp.resolve("../x"));
        assert!(m.contains("no such task directory"), "{m}");
    }

    #[test]
    fn an_unknown_name_says_where_it_looked() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let sp = SearchPath::new(vec![a.path().into(), b.path().into()]);
        let m = not_found(sp.resolve("no-such-plugin"));
        assert!(m.contains(&a.path().display().to_string()), "{m}");
        assert!(m.contains(&b.path().display().to_string()), "{m}");
        assert!(m.contains("systemd-sparrow task list"), "{m}");
    }

    #[test]
    fn a_broken_sparrow_json_is_an_error_naming_it() {
        let t = tempfile::tempdir().unwrap();
        let root = plugin(t.path(), "bad", Some("{\"name\": "));
        let sp = SearchPath::new(vec![t.path().into()]);
        for how in ["bad".to_string(), root.display().to_string()] {
            match sp.resolve(&how) {
                Err(TaskError::Config(m)) => {
                    assert!(
                        m.contains(&root.join("sparrow.json").display().to_string()),
                        "{m}"
                    )
                }
                other => panic!("{other:?}"),
            }
        }
        let l = sp.list();
        assert_eq!(l[0].name, "bad");
        assert!(l[0].description.contains("sparrow.json"), "{:?}", l[0]);
    }

    #[test]
    fn list_is_sorted_and_marks_the_shadowed() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        plugin(
            a.path(),
            "zeta",
            Some(r#"{"version": "1", "description": "z"}"#),
        );
        plugin(b.path(), "zeta", Some(r#"{"version": "0.9"}"#));
        plugin(b.path(), "alpha", None);
        plugin(b.path(), ".hidden", None);
        fs::write(b.path().join("not-a-dir"), "").unwrap();
        let sp = SearchPath::new(vec![
            a.path().into(),
            b.path().into(),
            a.path().join("missing"),
        ]);
        let mine: Vec<(String, Option<String>, bool)> = sp
            .list()
            .into_iter()
            .filter(|l| l.origin != Origin::Builtin)
            .map(|l| (l.name, l.version, l.shadowed))
            .collect();
        assert_eq!(
            mine,
            vec![
                ("alpha".into(), None, false),
                ("zeta".into(), Some("1".into()), false),
                ("zeta".into(), Some("0.9".into()), true),
            ]
        );
        let all = sp.list();
        assert!(all.windows(2).all(|w| w[0].name <= w[1].name));
    }
}
