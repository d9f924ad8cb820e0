//! Where definitions and shebang units are looked for.

use std::path::{Path, PathBuf};

/// System or per-user generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The system manager (`/etc/systemd/system-generators/`).
    System,
    /// A user manager (`--user`, or the `systemd-sparrow-user-generator` name).
    User,
}

/// Replaces the search path (colon-separated).
pub const PATH_ENV: &str = "SYSTEMD_SPARROW_PATH";
/// Replaces the root searched for shebang units.
pub const UNIT_ROOT_ENV: &str = "SYSTEMD_SPARROW_UNIT_ROOT";

/// Directories searched for `*.sparrow`, highest priority first.
pub fn search_path(mode: Mode, env: &dyn Fn(&str) -> Option<String>) -> Vec<PathBuf> {
    if let Some(p) = env(PATH_ENV) {
        return p
            .split(':')
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
            .collect();
    }
    match mode {
        Mode::System => [
            "/run/systemd/sparrow",
            "/etc/systemd/sparrow",
            "/usr/local/lib/systemd/sparrow",
            "/usr/lib/systemd/sparrow",
        ]
        .iter()
        .map(PathBuf::from)
        .collect(),
        Mode::User => {
            let mut dirs = Vec::new();
            if let Some(rt) = env("XDG_RUNTIME_DIR") {
                dirs.push(Path::new(&rt).join("systemd/sparrow"));
            }
            dirs.push(config_home(env).join("systemd/sparrow"));
            dirs.push(PathBuf::from("/etc/systemd/sparrow/user"));
            dirs.push(PathBuf::from("/usr/lib/systemd/sparrow/user"));
            dirs
        }
    }
}

fn config_home(env: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    env("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| Path::new(&h).join(".config")))
        .unwrap_or_else(|| PathBuf::from("/root/.config"))
}

/// Where shebang units (`#!sparrow` files among unit files) are looked for.
pub fn unit_root(mode: Mode, env: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    if let Some(r) = env(UNIT_ROOT_ENV) {
        return PathBuf::from(r);
    }
    match mode {
        Mode::System => PathBuf::from("/etc/systemd/system"),
        Mode::User => config_home(env).join("systemd/user"),
    }
}

/// The directory systemd gives generators' normal output, for `diff`.
pub fn generator_dir(mode: Mode, env: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    match mode {
        Mode::System => PathBuf::from("/run/systemd/generator"),
        Mode::User => env("XDG_RUNTIME_DIR")
            .map(|r| Path::new(&r).join("systemd/generator"))
            .unwrap_or_else(|| PathBuf::from("/run/user/0/systemd/generator")),
    }
}

/// The generator's early directory beside its normal one
/// (`/run/systemd/generator.early`).
pub fn early_dir(normal: &Path) -> PathBuf {
    let mut s = normal.as_os_str().to_os_string();
    s.push(".early");
    PathBuf::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn system_path_is_the_spec_order() {
        let p = search_path(Mode::System, &env_of(&[]));
        assert_eq!(p[0], Path::new("/run/systemd/sparrow"));
        assert_eq!(p[1], Path::new("/etc/systemd/sparrow"));
        assert_eq!(p.len(), 4);
    }

    #[test]
    fn user_path_uses_xdg() {
        let p = search_path(
            Mode::User,
            &env_of(&[("XDG_RUNTIME_DIR", "/run/user/7"), ("HOME", "/home/u")]),
        );
        assert_eq!(
            p,
            vec![
                PathBuf::from("/run/user/7/systemd/sparrow"),
                PathBuf::from("/home/u/.config/systemd/sparrow"),
                PathBuf::from("/etc/systemd/sparrow/user"),
                PathBuf::from("/usr/lib/systemd/sparrow/user"),
            ]
        );
        let p = search_path(Mode::User, &env_of(&[("XDG_CONFIG_HOME", "/cfg")]));
        assert_eq!(p[0], PathBuf::from("/cfg/systemd/sparrow"));
    }

    #[test]
    fn env_replaces_the_path() {
        let p = search_path(Mode::System, &env_of(&[(PATH_ENV, "/a::/b")]));
        assert_eq!(p, vec![PathBuf::from("/a"), PathBuf::from("/b")]);
        assert_eq!(
            unit_root(Mode::System, &env_of(&[(UNIT_ROOT_ENV, "/x")])),
            PathBuf::from("/x")
        );
    }
}
