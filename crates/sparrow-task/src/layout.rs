//! A task directory: which script is its hook, which its task, in
//! Sparrow6's order of precedence.
//!
//! Sparrow6 tries, first match wins:
//! hooks `hook.raku job.raku hook.pl6 hook.pl job.pl hook.bash job.bash
//! hook.rb job.rb hook.py job.py`, tasks `task.raku task.pl6 task.pl
//! task.bash task.rb task.py`. (Go, PowerShell and PHP scripts, which
//! Sparrow6 also runs, are refused here with a message naming them.)

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

/// Hook file names, in Sparrow6's order.
const HOOKS: &[(&str, Lang)] = &[
    ("hook.raku", Lang::Raku),
    ("job.raku", Lang::Raku),
    ("hook.pl6", Lang::Raku),
    ("hook.pl", Lang::Perl),
    ("job.pl", Lang::Perl),
    ("hook.bash", Lang::Bash),
    ("job.bash", Lang::Bash),
    ("hook.rb", Lang::Ruby),
    ("job.rb", Lang::Ruby),
    ("hook.py", Lang::Python),
    ("job.py", Lang::Python),
];

/// Task file names, in Sparrow6's order.
const TASKS: &[(&str, Lang)] = &[
    ("task.raku", Lang::Raku),
    ("task.pl6", Lang::Raku),
    ("task.pl", Lang::Perl),
    ("task.bash", Lang::Bash),
    ("task.rb", Lang::Ruby),
    ("task.py", Lang::Python),
];

/// Scripts Sparrow6 runs that this runner does not.
const UNSUPPORTED: &[&str] = &[
    "task.go", "hook.go", "job.go", "task.ps1", "hook.ps1", "job.ps1", "task.php", "hook.php",
    "job.php",
];

/// A script to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    /// Its path.
    pub path: PathBuf,
    /// Its language.
    pub lang: Lang,
}

fn first(dir: &Path, names: &[(&str, Lang)]) -> Option<Script> {
    names.iter().find_map(|(name, lang)| {
        let path = dir.join(name);
        path.is_file().then_some(Script { path, lang: *lang })
    })
}

/// The directory's hook, if it has one.
pub fn hook(dir: &Path) -> Option<Script> {
    first(dir, HOOKS)
}

/// The directory's task script, if it has one.
pub fn task(dir: &Path) -> Option<Script> {
    first(dir, TASKS)
}

/// A script of a kind Sparrow6 runs but this runner does not, if the
/// directory has one and nothing this runner runs instead.
pub fn unsupported(dir: &Path) -> Option<&'static str> {
    UNSUPPORTED.iter().copied().find(|n| dir.join(n).is_file())
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
    }
}
