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

/// Bash parses a word in time quadratic in its quotes (minutes for a
/// value with 300,000 apostrophes): a key or value with more than this
/// many is read from a file instead of being written into the script.
const INLINE_QUOTES: usize = 100;

/// Whether bash reads `s` quickly as a quoted word.
fn inline(s: &str) -> bool {
    s.matches('\'').count() <= INLINE_QUOTES
}

/// Fields each ended by a NUL, for bash's `mapfile -d ''` (bash cannot
/// hold a NUL: those inside are dropped, as bash drops them in a script).
fn nul_fields<'a>(out: &mut Vec<u8>, fields: impl IntoIterator<Item = &'a str>) {
    for f in fields {
        out.extend(f.bytes().filter(|&b| b != 0));
        out.push(0);
    }
}

/// The glue file for `lang`: (file name, text, and for bash the entries
/// of its lookup tables too long to quote, for `glue.tbl` next to it;
/// empty when there are none, and then not read).
pub fn glue(
    lang: Lang,
    p: &Places,
    config: &Value,
    vars: &Value,
) -> (&'static str, String, Vec<u8>) {
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
            let mut slow = Vec::new();
            for (tag, table, v) in [
                ("c", "__sparrow_config", config),
                ("v", "__sparrow_vars", vars),
            ] {
                let _ = write!(out, "declare -A {table}=(");
                for (k, val) in flatten(v) {
                    if inline(&k) && inline(&val) {
                        let _ = write!(out, " [{}]={}", sh_quote(&k), sh_quote(&val));
                    } else {
                        nul_fields(&mut slow, [tag, &k, &val]);
                    }
                }
                out.push_str(" )\n");
            }
            if !slow.is_empty() {
                let _ = write!(
                    out,
                    "mapfile -d '' -t __sparrow_kv < {}\n{}",
                    sh_quote(&d(&p.cache_dir.join("glue.tbl"))),
                    LOAD_SLOW
                );
            }
            ("glue.bash", out, slow)
        }
        Lang::Python => {
            for (n, v) in &names {
                let _ = writeln!(out, "def {n}():\n    return {}\n", py_quote(v));
            }
            // The root's module directories, when PYTHONPATH could not hold
            // them (a ':' in the path).
            let _ = writeln!(
                out,
                "import sys as _sys\nfor _d in ({}, {}):\n    if _d not in _sys.path:\n        _sys.path.insert(1, _d)",
                py_quote(&d(&p.root.join("lib"))),
                py_quote(&d(&p.root.join("python-lib")))
            );
            ("glue.py", out, Vec::new())
        }
        Lang::Perl => {
            out.push_str("package glue;\n");
            for (n, v) in &names {
                let _ = writeln!(out, "sub main::{n} {{ {} }}", sq(v));
            }
            out.push_str("1;\n");
            ("glue.pm", out, Vec::new())
        }
        Lang::Ruby => {
            for (n, v) in &names {
                let _ = writeln!(out, "def {n}\n  {}\nend", sq(v));
            }
            ("glue.rb", out, Vec::new())
        }
        Lang::Raku => {
            out.push_str("unit module glue;\n");
            for (n, v) in &names {
                let _ = writeln!(out, "sub {n}() is export {{ {} }}", sq(v));
            }
            ("glue.rakumod", out, Vec::new())
        }
    }
}

/// Fills the lookup tables from `glue.tbl` (tag `c` or `v`, key, value).
const LOAD_SLOW: &str = "\
for ((__sparrow_i = 0; __sparrow_i + 2 < ${#__sparrow_kv[@]}; __sparrow_i += 3)); do
    if [[ ${__sparrow_kv[__sparrow_i]} == c ]]; then
        __sparrow_config[${__sparrow_kv[__sparrow_i + 1]}]=${__sparrow_kv[__sparrow_i + 2]}
    else
        __sparrow_vars[${__sparrow_kv[__sparrow_i + 1]}]=${__sparrow_kv[__sparrow_i + 2]}
    fi
done
unset __sparrow_kv __sparrow_i
";

/// `variables.bash`: each top-level parameter as a shell variable (as
/// Sparrow6 gives them to bash tasks: `echo $name`), stringified as Raku
/// does (a list's items joined with spaces); and the values too long to
/// quote, for `names.tbl` in `cache_dir` (empty when there are none).
/// Names that are not identifiers, and our own (`__sparrow*`), are left
/// out.
pub fn variables_bash(vars: &Value, cache_dir: &Path) -> (String, Vec<u8>) {
    use crate::config::scalar;
    let mut out = String::new();
    let mut slow = Vec::new();
    if let Value::Object(m) = vars {
        for (k, v) in m {
            if k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !k.starts_with(|c: char| c.is_ascii_digit())
                && !k.starts_with("__sparrow")
            {
                let text = match v {
                    Value::Array(items) => items.iter().map(scalar).collect::<Vec<_>>().join(" "),
                    other => scalar(other),
                };
                if inline(&text) {
                    let _ = writeln!(out, "{k}={}", sh_quote(&text));
                } else {
                    nul_fields(&mut slow, [k.as_str(), &text]);
                }
            }
        }
    }
    if !slow.is_empty() {
        let _ = write!(
            out,
            "mapfile -d '' -t __sparrow_kv < {}\n\
             for ((__sparrow_i = 0; __sparrow_i + 1 < ${{#__sparrow_kv[@]}}; __sparrow_i += 2)); do\n\
             \x20   printf -v \"${{__sparrow_kv[__sparrow_i]}}\" %s \"${{__sparrow_kv[__sparrow_i + 1]}}\"\n\
             done\n\
             unset __sparrow_kv __sparrow_i\n",
            sh_quote(&cache_dir.join("names.tbl").display().to_string())
        );
    }
    (out, slow)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_any_text() {
        assert_eq!(sh_quote("it's $x"), "'it'\\''s $x'");
        assert_eq!(sq("a'b\\c"), "'a\\'b\\\\c'");
        let dir = Path::new("/c");
        let v = serde_json::json!({"ok": "x", "bad key": 1, "9x": 2, "__sparrow_i": 3});
        assert_eq!(variables_bash(&v, dir), ("ok='x'\n".into(), vec![]));
        let v = serde_json::json!({"l": ["a", 1, true], "t": false});
        assert_eq!(variables_bash(&v, dir).0, "l='a 1 True'\nt='False'\n");
        // Too many quotes to quote: from a file.
        let long = "'".repeat(INLINE_QUOTES + 1);
        let v = serde_json::json!({"a": "x", "q": long});
        let (script, slow) = variables_bash(&v, dir);
        assert!(script.starts_with("a='x'\nmapfile -d '' -t __sparrow_kv < '/c/names.tbl'\n"));
        assert_eq!(slow, format!("q\0{long}\0").into_bytes());
    }
}
