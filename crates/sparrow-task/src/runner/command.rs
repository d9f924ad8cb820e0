//! The command that runs one script: its glue and helpers written into
//! the cache, the interpreter with the paths Sparrow6 sets.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use super::Run;
use crate::helpers::{self, Places};
use crate::layout::{Lang, Script};
use crate::TaskError;

impl Run<'_> {
    /// The command that runs `script`, its glue written into `cd`.
    pub(super) fn command(&mut self, script: &Script, cd: &Path) -> Result<Command, TaskError> {
        let lib_dir = self.cache_root.join("lib");
        if !self.libs_written.contains(&script.lang) {
            fs::create_dir_all(&lib_dir).map_err(TaskError::io("making the helpers' directory"))?;
            let (name, text) = helpers::library(script.lang);
            fs::write(lib_dir.join(name), text).map_err(TaskError::io("writing the helpers"))?;
            self.libs_written.push(script.lang);
        }
        let task_dir = script.path.parent().unwrap_or(&self.root).to_path_buf();
        let places = Places {
            root: &self.root,
            task_dir: &task_dir,
            cache_root: &self.cache_root,
            cache_dir: cd,
            os: &self.os,
        };
        let (glue_name, glue, slow) = helpers::glue(script.lang, &places, &self.config, &self.vars);
        fs::write(cd.join(glue_name), glue).map_err(TaskError::io("writing the glue"))?;
        if !slow.is_empty() {
            fs::write(cd.join("glue.tbl"), slow).map_err(TaskError::io("writing glue.tbl"))?;
        }
        let root_lib = self.root.join("lib");
        let mut cmd = match script.lang {
            Lang::Bash => {
                use crate::helpers::sh_quote as q;
                let mut w = String::new();
                if root_lib.is_dir() {
                    let l = root_lib.display().to_string();
                    w.push_str(&format!(
                        "export PERL5LIB={l}:$PERL5LIB RUBYLIB={l}:$RUBYLIB PYTHONPATH={l}:$PYTHONPATH RAKULIB=file#{l},$RAKULIB\n",
                        l = q(&l)
                    ));
                }
                let bin = self.root.join("bin");
                if bin.is_dir() {
                    w.push_str(&format!(
                        "export PATH={}:$PATH\n",
                        q(&bin.display().to_string())
                    ));
                }
                for f in [
                    cd.join(glue_name),
                    lib_dir.join("sparrow6lib.bash"),
                    cd.join("variables.bash"),
                ] {
                    w.push_str(&format!("source {}\n", q(&f.display().to_string())));
                }
                w.push_str(&format!(
                    "source {}\n",
                    q(&script.path.display().to_string())
                ));
                let cmd_file = cd.join("cmd.bash");
                fs::write(&cmd_file, w).map_err(TaskError::io("writing cmd.bash"))?;
                let mut c = Command::new("bash");
                c.arg(cmd_file);
                c
            }
            Lang::Python => {
                let mut c = Command::new("python3");
                let mut path = vec![
                    root_lib.clone(),
                    self.root.join("python-lib"),
                    cd.to_path_buf(),
                    lib_dir.clone(),
                ];
                if let Some(p) = std::env::var_os("PYTHONPATH") {
                    path.extend(std::env::split_paths(&p));
                }
                // A directory with a ':' cannot be on PYTHONPATH (and would
                // make join_paths fail for all): glue.py adds the root's.
                path.retain(|p| !p.as_os_str().as_encoded_bytes().contains(&b':'));
                c.env("PYTHONPATH", std::env::join_paths(path).unwrap_or_default());
                c.arg(&script.path);
                c
            }
            Lang::Perl => {
                let mut c = Command::new("perl");
                include(&mut c, [cd, &lib_dir, &root_lib]);
                c.arg("-Msparrow6lib").arg(&script.path);
                c
            }
            Lang::Ruby => {
                let mut c = Command::new("ruby");
                include(&mut c, [cd, &lib_dir, &root_lib]);
                c.arg("-r").arg("sparrow6lib").arg(&script.path);
                c
            }
            Lang::Raku => {
                let mut c = Command::new("raku");
                include(&mut c, [cd, &lib_dir, &root_lib]);
                c.arg("-Mglue").arg("-Msparrow6lib").arg(&script.path);
                c
            }
        };
        if let Some(cwd) = &self.opts.cwd {
            cmd.current_dir(cwd);
        }
        cmd.stdin(if self.opts.inherit_stdin {
            Stdio::inherit()
        } else {
            Stdio::null()
        });
        Ok(cmd)
    }
}

/// `-I DIR` for each directory, in order: Perl, Ruby and Raku read their
/// module path the same way (the script's glue, our helpers, the root's
/// `lib/`).
fn include(c: &mut Command, dirs: [&Path; 3]) {
    for d in dirs {
        c.arg("-I").arg(d);
    }
}
