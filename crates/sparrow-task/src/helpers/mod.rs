//! The helper libraries scripts see (Sparrow6's names and semantics, our
//! own code), and the per-script glue that tells them where they are.

use std::fmt::Write;
use std::path::Path;

use serde_json::Value;

use crate::config::flatten;
use crate::layout::Lang;

/// The library for `lang`: (file name, text).
pub fn library(lang: Lang) -> (&'static str, &'static str) {
    match lang {
        Lang::Bash => ("sparrow6lib.bash", include_str!("sparrow6lib.bash")),
        Lang::Python => ("sparrow6lib.py", include_str!("sparrow6lib.py")),
        Lang::Perl => ("sparrow6lib.pm", include_str!("sparrow6lib.pm")),
        Lang::Ruby => ("sparrow6lib.rb", include_str!("sparrow6lib.rb")),
        Lang::Raku => ("sparrow6lib.rakumod", include_str!("sparrow6lib.rakumod")),
    }
}

/// Where a script runs: the values behind `root_dir`, `task_dir`, ...
pub struct Places<'a> {
    /// The runner's root.
    pub root: &'a Path,
    /// The directory of the script.
    pub task_dir: &'a Path,
    /// The run's cache root (config.json, state.json).
    pub cache_root: &'a Path,
    /// This script's cache directory (variables, stdout).
    pub cache_dir: &'a Path,
    /// `os()`.
    pub os: &'a str,
}

/// `s` in single quotes for bash.
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn py_quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// A Perl/Ruby/Raku single-quoted string.
fn sq(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// The glue file for `lang`: (file name, text).
pub fn glue(lang: Lang, p: &Places, config: &Value, vars: &Value) -> (&'static str, String) {
    let d = |x: &Path| x.display().to_string();
    let stdout = d(&p.cache_dir.join("stdout"));
    let names: [(&str, String); 8] = [
        ("root_dir", d(p.root)),
        ("project_root_dir", d(p.root)),
        ("task_dir", d(p.task_dir)),
        ("cache_root_dir", d(p.cache_root)),
        ("test_root_dir", d(p.cache_root)),
        ("cache_dir", d(p.cache_dir)),
        ("stdout_file", stdout),
        ("os", p.os.to_string()),
    ];
    let mut out = String::new();
    match lang {
        Lang::Bash => {
            for (n, v) in &names {
                let export = matches!(*n, "os" | "cache_root_dir" | "cache_dir");
                let _ = writeln!(
                    out,
                    "{}{n}={}",
                    if export { "export " } else { "" },
                    sh_quote(v)
                );
            }
            // Lookup tables for `config` and `task_var` (dotted paths), so
            // that neither needs a process of its own.
            for (table, v) in [("__sparrow_config", config), ("__sparrow_vars", vars)] {
                let _ = write!(out, "declare -A {table}=(");
                for (k, val) in flatten(v) {
                    let _ = write!(out, " [{}]={}", sh_quote(&k), sh_quote(&val));
                }
                out.push_str(" )\n");
            }
            ("glue.bash", out)
        }
        Lang::Python => {
            for (n, v) in &names {
                let _ = writeln!(out, "def {n}():\n    return {}\n", py_quote(v));
            }
            ("glue.py", out)
        }
        Lang::Perl => {
            out.push_str("package glue;\n");
            for (n, v) in &names {
                let _ = writeln!(out, "sub main::{n} {{ {} }}", sq(v));
            }
            out.push_str("1;\n");
            ("glue.pm", out)
        }
        Lang::Ruby => {
            for (n, v) in &names {
                let _ = writeln!(out, "def {n}\n  {}\nend", sq(v));
            }
            ("glue.rb", out)
        }
        Lang::Raku => {
            out.push_str("unit module glue;\n");
            for (n, v) in &names {
                let _ = writeln!(out, "sub {n}() is export {{ {} }}", sq(v));
            }
            ("glue.rakumod", out)
        }
    }
}

/// `variables.bash`: each top-level parameter as a shell variable (as
/// Sparrow6 gives them to bash tasks: `echo $name`), stringified as Raku
/// does (a list's items joined with spaces).
pub fn variables_bash(vars: &Value) -> String {
    use crate::config::scalar;
    let mut out = String::new();
    if let Value::Object(m) = vars {
        for (k, v) in m {
            if k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !k.starts_with(|c: char| c.is_ascii_digit())
            {
                let text = match v {
                    Value::Array(items) => items.iter().map(scalar).collect::<Vec<_>>().join(" "),
                    other => scalar(other),
                };
                let _ = writeln!(out, "{k}={}", sh_quote(&text));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_any_text() {
        assert_eq!(sh_quote("it's $x"), "'it'\\''s $x'");
        assert_eq!(sq("a'b\\c"), "'a\\'b\\\\c'");
        let v = serde_json::json!({"ok": "x", "bad key": 1, "9x": 2});
        assert_eq!(variables_bash(&v), "ok='x'\n");
        let v = serde_json::json!({"l": ["a", 1, true], "t": false});
        assert_eq!(variables_bash(&v), "l='a 1 True'\nt='False'\n");
    }
}
