//! A task directory: which script is its hook, which its task, in
//! Sparrow6's order of precedence.
//!
//! Sparrow6 tries, first match wins:
//! hooks `hook.raku job.raku hook.pl6 hook.pl job.pl hook.bash job.bash
//! hook.go job.go hook.rb job.rb hook.py job.py hook.ps1 job.ps1 hook.php
//! job.php`, tasks `task.raku task.pl6 task.pl task.bash task.go task.rb
//! task.py task.ps1 task.php`. Go, PowerShell and PHP scripts, which
//! Sparrow6 also runs, keep their place in that order but are refused (with
//! a message naming them): a `task.go` next to a `task.py` is what Sparrow6
//! would run, so the Python one must not run instead.

use std::path::{Path, PathBuf};

/// A language a script is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    /// `*.raku`, `*.pl6`: run with `raku` (only when it is installed).
    Raku,
    /// `*.pl`: Perl 5.
    Perl,
    /// `*.bash`.
    Bash,
    /// `*.rb`.
    Ruby,
    /// `*.py`: Python 3.
    Python,
}

impl Lang {
    /// The interpreter's program name.
    pub fn program(self) -> &'static str {
        match self {
            Lang::Raku => "raku",
            Lang::Perl => "perl",
            Lang::Bash => "bash",
            Lang::Ruby => "ruby",
            Lang::Python => "python3",
        }
    }

    /// The language named by a `code:` block's first line (`!bash`, ...).
    pub fn from_name(name: &str) -> Option<Lang> {
        Some(match name {
            "raku" | "perl6" => Lang::Raku,
            "perl" => Lang::Perl,
            "bash" => Lang::Bash,
            "ruby" => Lang::Ruby,
            "python" => Lang::Python,
            _ => return None,
        })
    }

    /// A file extension for scripts in this language.
    pub fn ext(self) -> &'static str {
        match self {
            Lang::Raku => "raku",
            Lang::Perl => "pl",
            Lang::Bash => "bash",
            Lang::Ruby => "rb",
            Lang::Python => "py",
        }
    }
}

/// Hook file names, in Sparrow6's order (`None`: a kind this runner
/// refuses).
const HOOKS: &[(&str, Option<Lang>)] = &[
    ("hook.raku", Some(Lang::Raku)),
    ("job.raku", Some(Lang::Raku)),
    ("hook.pl6", Some(Lang::Raku)),
    ("hook.pl", Some(Lang::Perl)),
    ("job.pl", Some(Lang::Perl)),
    ("hook.bash", Some(Lang::Bash)),
    ("job.bash", Some(Lang::Bash)),
    ("hook.go", None),
    ("job.go", None),
    ("hook.rb", Some(Lang::Ruby)),
    ("job.rb", Some(Lang::Ruby)),
    ("hook.py", Some(Lang::Python)),
    ("job.py", Some(Lang::Python)),
    ("hook.ps1", None),
    ("job.ps1", None),
    ("hook.php", None),
    ("job.php", None),
];

/// Task file names, in Sparrow6's order (`None`: refused).
const TASKS: &[(&str, Option<Lang>)] = &[
    ("task.raku", Some(Lang::Raku)),
    ("task.pl6", Some(Lang::Raku)),
    ("task.pl", Some(Lang::Perl)),
    ("task.bash", Some(Lang::Bash)),
    ("task.go", None),
    ("task.rb", Some(Lang::Ruby)),
    ("task.py", Some(Lang::Python)),
    ("task.ps1", None),
    ("task.php", None),
];

/// A script to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    /// Its path.
    pub path: PathBuf,
    /// Its language.
    pub lang: Lang,
}

/// The file Sparrow6 would pick from `names`, and its language (`None`
/// when this runner refuses it).
fn first(
    dir: &Path,
    names: &[(&'static str, Option<Lang>)],
) -> Option<(&'static str, Option<Lang>)> {
    names
        .iter()
        .copied()
        .find(|(name, _)| dir.join(name).is_file())
}

fn script(dir: &Path, names: &[(&'static str, Option<Lang>)]) -> Option<Script> {
    match first(dir, names)? {
        (name, Some(lang)) => Some(Script {
            path: dir.join(name),
            lang,
        }),
        (_, None) => None,
    }
}

/// The directory's hook, if it has one this runner runs.
pub fn hook(dir: &Path) -> Option<Script> {
    script(dir, HOOKS)
}

/// The directory's task script, if it has one this runner runs.
pub fn task(dir: &Path) -> Option<Script> {
    script(dir, TASKS)
}

/// The hook or task script Sparrow6 would run here that this runner does
/// not (Go, PowerShell, PHP), if any: the hook's first.
pub fn unsupported(dir: &Path) -> Option<&'static str> {
    [HOOKS, TASKS]
        .into_iter()
        .find_map(|names| match first(dir, names)? {
            (name, None) => Some(name),
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparrow6s_precedence_picks_the_first() {
        let d = tempfile::tempdir().unwrap();
        for f in ["task.py", "task.bash", "task.pl", "hook.py", "hook.bash"] {
            std::fs::write(d.path().join(f), "").unwrap();
        }
        assert_eq!(task(d.path()).unwrap().lang, Lang::Perl);
        assert_eq!(hook(d.path()).unwrap().lang, Lang::Bash);
        std::fs::remove_file(d.path().join("task.pl")).unwrap();
        assert_eq!(task(d.path()).unwrap().lang, Lang::Bash);
        let e = tempfile::tempdir().unwrap();
        std::fs::write(e.path().join("task.go"), "").unwrap();
        assert_eq!(task(e.path()), None);
        assert_eq!(unsupported(e.path()), Some("task.go"));
        // A refused kind keeps its place: task.go comes before task.py,
        // task.php after it.
        std::fs::write(e.path().join("task.py"), "").unwrap();
        assert_eq!(task(e.path()), None);
        std::fs::remove_file(e.path().join("task.go")).unwrap();
        std::fs::write(e.path().join("task.php"), "").unwrap();
        assert_eq!(task(e.path()).unwrap().lang, Lang::Python);
        assert_eq!(unsupported(e.path()), None);
        std::fs::write(e.path().join("hook.go"), "").unwrap();
        std::fs::write(e.path().join("hook.rb"), "").unwrap();
        assert_eq!(hook(e.path()), None);
        assert_eq!(unsupported(e.path()), Some("hook.go"));
    }
}
