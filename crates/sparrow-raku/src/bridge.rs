//! Running the Raku process: one per run, requests in, declarations out.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sparrow_isolate::{Failure, Limits, Worker};
use sparrow_lang::Facts;

use crate::cache::{self, Cache, Deps};
use crate::rhai_text::{self, Decl};

/// One Raku file to translate.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    /// Where it is (for messages and the cache key).
    pub path: &'a Path,
    /// Its text, read by the caller (with the owner rule).
    pub text: &'a str,
}

/// What became of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Translation {
    /// Its native text (declarations on the Raku file's lines).
    Native(String),
    /// It cannot be translated: the Raku file's line (0: unknown) and why.
    Failed {
        /// 1-based line in the Raku file, 0 when unknown.
        line: usize,
        /// Raku's message, or ours.
        message: String,
    },
    /// No `raku` on this host: nothing was tried.
    NoRaku,
}

/// How to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// The `raku` binary, when there is one ([`find_raku`]).
    pub raku: Option<PathBuf>,
    /// Time one file may take (the first also pays Raku's start-up).
    pub limit: Duration,
    /// The cache, when one is used; `write` says whether this run may add to it.
    pub cache: Option<Cache>,
    /// What the Raku process may use.
    pub limits: Limits,
}

impl Options {
    /// `raku` from [`find_raku`], 10 s per file
    /// (`SYSTEMD_SPARROW_RAKU_LIMIT_MS`), the system cache read-only: what
    /// the generator uses.
    pub fn for_generator(env: &dyn Fn(&str) -> Option<String>) -> Options {
        let ms = env("SYSTEMD_SPARROW_RAKU_LIMIT_MS").and_then(|v| v.parse().ok());
        Options {
            raku: find_raku(env),
            limit: Duration::from_millis(ms.unwrap_or(10_000)),
            cache: Some(Cache::new(cache::dir(env), false)),
            limits: raku_limits(),
        }
    }

    /// The same, adding what it translates to the cache: what the CLI,
    /// the daemon and the hook runner use.
    pub fn for_writers(env: &dyn Fn(&str) -> Option<String>) -> Options {
        Options {
            cache: Some(Cache::new(cache::dir(env), true)),
            ..Options::for_generator(env)
        }
    }
}

/// Raku's VM reserves more address space than the native evaluator needs.
pub fn raku_limits() -> Limits {
    Limits { memory: 1 << 30 }
}

/// What a run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Raku processes started (0 when everything came from the cache).
    pub processes: usize,
    /// Files answered from the cache.
    pub cached: usize,
    /// Files translated by Raku in this run.
    pub translated: usize,
}

/// `SYSTEMD_SPARROW_RAKU` (a path; empty: none), else `raku` on `PATH`,
/// else `/usr/bin/raku` when it exists.
pub fn find_raku(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    if let Some(p) = env("SYSTEMD_SPARROW_RAKU") {
        return (!p.is_empty()).then(|| PathBuf::from(p));
    }
    let path = env("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    path.split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join("raku"))
        .chain([PathBuf::from("/usr/bin/raku")])
        .find(|p| p.is_file())
}

#[derive(Serialize)]
struct Init<'a> {
    facts: &'a Facts,
    runtime: bool,
}

#[derive(Serialize)]
struct Request<'a> {
    path: &'a Path,
    text: &'a str,
}

/// The bridge's answer to [`Init`]: compiled, facts taken.
#[derive(Deserialize)]
struct Ready {
    #[serde(rename = "ready")]
    _ready: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum Reply {
    Ok(Answer),
    Error(RakuError),
}

#[derive(Deserialize)]
struct Answer {
    decls: Vec<Decl>,
    #[serde(default)]
    read: Vec<String>,
    #[serde(default)]
    exists: Vec<String>,
    #[serde(default)]
    env: Vec<String>,
    #[serde(default)]
    untracked: bool,
}

/// Raku's message for a file or a call, with its line (0: unknown).
#[derive(Deserialize)]
pub(crate) struct RakuError {
    pub(crate) message: String,
    #[serde(default)]
    pub(crate) line: usize,
}

/// Starts `raku` running the bridge under the evaluator's containment,
/// hands it the facts and waits at most `start_up` for it to have compiled:
/// for translating, or (`runtime`) as a resident worker.
pub(crate) fn start_bridge(
    raku: &Path,
    facts: &Facts,
    runtime: bool,
    limits: Limits,
    start_up: Duration,
) -> Result<Worker, Failure> {
    let mut cmd = Command::new(raku);
    cmd.arg("-e").arg(crate::BRIDGE);
    if runtime {
        // No JIT for the resident worker: the daemon's unit denies
        // writable-executable memory (MemoryDenyWriteExecute=), and subs
        // are short.
        cmd.env("MVM_JIT_DISABLE", "1");
    }
    let mut w = Worker::spawn_command(cmd, limits)?;
    w.send(&Init { facts, runtime }, start_up)?;
    let _: Ready = w.recv(start_up)?;
    Ok(w)
}

/// Translates `files` with at most a few Raku processes (one, unless a
/// file kills or hangs it): cached ones first, then the rest in order.
pub fn translate(
    files: &[Input<'_>],
    facts: &Facts,
    opts: &Options,
    env: &dyn Fn(&str) -> Option<String>,
) -> (Vec<Translation>, Stats) {
    let mut stats = Stats::default();
    let raku_id = opts.raku.as_deref().map(cache::raku_identity);
    let mut out: Vec<Option<Translation>> = vec![None; files.len()];
    let mut keys: HashMap<usize, String> = HashMap::new();
    if let (Some(c), Some(id)) = (&opts.cache, &raku_id) {
        for (i, f) in files.iter().enumerate() {
            let key = cache::key(id, facts, f.path, f.text);
            if let Some(text) = c.get(&key, env) {
                out[i] = Some(Translation::Native(text));
                stats.cached += 1;
            }
            keys.insert(i, key);
        }
    }
    let todo: Vec<usize> = (0..files.len()).filter(|i| out[*i].is_none()).collect();
    if !todo.is_empty() {
        match &opts.raku {
            None => {
                for i in todo {
                    out[i] = Some(Translation::NoRaku);
                }
            }
            Some(raku) => {
                let mut run = Run {
                    raku,
                    facts,
                    opts,
                    worker: None,
                    stats: &mut stats,
                };
                for i in todo {
                    let (t, deps) = run.one(&files[i]);
                    if let (Some(c), Some(key), Translation::Native(text), Some(deps)) =
                        (&opts.cache, keys.get(&i), &t, deps)
                    {
                        c.put(key, text, &deps, env);
                    }
                    out[i] = Some(t);
                }
            }
        }
    }
    (
        out.into_iter()
            .map(|t| t.unwrap_or(Translation::NoRaku))
            .collect(),
        stats,
    )
}

struct Run<'a> {
    raku: &'a Path,
    facts: &'a Facts,
    opts: &'a Options,
    worker: Option<Worker>,
    stats: &'a mut Stats,
}

/// Raku's start-up and the shim's compilation (before any file's time).
const START_UP: Duration = Duration::from_secs(10);

impl Run<'_> {
    fn start(&mut self) -> Result<Worker, Failure> {
        self.stats.processes += 1;
        start_bridge(self.raku, self.facts, false, self.opts.limits, START_UP)
    }

    /// One file: its translation, and what it depended on when it can be
    /// cached.
    fn one(&mut self, f: &Input<'_>) -> (Translation, Option<Deps>) {
        let mut w = match self.worker.take() {
            Some(w) => w,
            None => match self.start() {
                Ok(w) => w,
                Err(e) => {
                    return (
                        failed(0, format!("the Raku process could not start: {e}")),
                        None,
                    )
                }
            },
        };
        let limit = self.opts.limit;
        let reply = w
            .send(
                &Request {
                    path: f.path,
                    text: f.text,
                },
                limit,
            )
            .and_then(|()| w.recv::<Reply>(limit));
        match reply {
            Err(e) => {
                // The process is gone (killed by the worker on a timeout
                // or protocol break): the next file gets a new one.
                let msg = match e {
                    Failure::TimedOut(_) => format!(
                        "translating it took longer than {} s and was stopped; nothing else was affected",
                        self.opts.limit.as_secs()
                    ),
                    other => format!("the Raku process {other} while translating it"),
                };
                (failed(0, msg), None)
            }
            Ok(reply) => {
                self.worker = Some(w);
                self.stats.translated += 1;
                match reply {
                    Reply::Error(e) => (failed(e.line, e.message), None),
                    Reply::Ok(a) => match rhai_text::rhai_text(&a.decls, &f.path.to_string_lossy())
                    {
                        Err(e) => (failed(e.line, e.message), None),
                        Ok(text) => {
                            let deps =
                                (!a.untracked && !reads_behind_our_back(f.text)).then_some(Deps {
                                    files: a.read,
                                    exists: a.exists,
                                    env: a.env,
                                });
                            (Translation::Native(text), deps)
                        }
                    },
                }
            }
        }
    }
}

fn failed(line: usize, message: String) -> Translation {
    Translation::Failed { line, message }
}

/// Whether the text reads files or runs programs in ways the shim cannot
/// see (methods on paths, `run`, `shell`, `qx`): then its translation is
/// not cached. Raku identifiers may hold `-`, so `task-run` is not `run`.
fn reads_behind_our_back(text: &str) -> bool {
    if text.contains(".IO") || text.contains("Proc::") || text.contains("q:x") {
        return true;
    }
    text.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-'))
        .any(|w| matches!(w, "run" | "shell" | "qx" | "QX"))
}

#[cfg(test)]
mod tests {
    use super::reads_behind_our_back;

    #[test]
    fn programs_and_path_reads_make_a_file_uncacheable() {
        for t in [
            "my $x = run <ls>;",
            "shell \"ls\";",
            "my $c = qx{ls};",
            "\"/etc/x\".IO.slurp",
            "Proc::Async.new",
        ] {
            assert!(reads_behind_our_back(t), "{t}");
        }
        for t in [
            "task-run \"a\", \"systemd\", %( start => \"/bin/run-me\" );",
            "my $running = 1;",
        ] {
            assert!(!reads_behind_our_back(t), "{t}");
        }
    }
}
