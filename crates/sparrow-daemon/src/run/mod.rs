//! The event loop: event sources (systemd's signals, control clients, the
//! evaluators, Unix signals, timers) feed one channel; each event and the
//! time go to the core; its actions go to the actuator.
//!
//! ```text
//!  systemd signals (watch task) ─┐
//!  control socket (a task each) ─┤                           ┌─► actuator ─► D-Bus (spawned, reports back)
//!  evaluator pool (threads) ─────┼─► mpsc<Msg> ─► Core ──────┤             ─► evaluators, journal,
//!  SIGTERM / SIGHUP ─────────────┤     (bounded)  (pure)     │               state file, sd_notify
//!  Core::next_wake (a timer) ────┘                           └─► control replies
//! ```
//!
//! The loop sleeps until the next event or the core's next wake time;
//! with nothing due it does not wake at all.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sparrow_host::RealHost;
use sparrow_lang::Host;
use sparrow_policy::Machine;
use sparrow_source::{Mode, Owners};
use tokio::sync::{mpsc, oneshot};
use tracing::{error, warn};

#[cfg(test)]
mod tests;

use crate::actuator::{Actuator, Msg, ReadSources};
use crate::clock::{Clock, SystemClock};
use crate::control::{self, Request, Response};
use crate::core::{Action, Core, Event, Settings};
use crate::eval::{Evaluator, Pool, PoolConfig, PoolEvent, SourceText};
use crate::notify::{Notifier, SdNotify};
use crate::state::{FileStore, StateStore};
use crate::systemd::{Bus, BusConnector, Connector};

/// How the daemon runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// The control socket.
    pub control: PathBuf,
    /// The state file.
    pub state: PathBuf,
    /// Evaluator processes.
    pub workers: usize,
    /// Wall-clock limit of one unit's closures.
    pub call_limit: Duration,
    /// Live changes per minute across all units.
    pub max_changes_per_minute: usize,
}

impl Config {
    /// Defaults, with `SYSTEMD_SPARROWD_*` environment overrides.
    pub fn from_env() -> Config {
        let env = |k: &str| std::env::var(k).ok();
        let num = |k: &str, d: u64| env(k).and_then(|v| v.parse().ok()).unwrap_or(d);
        Config {
            control: control::socket_path(),
            state: env("SYSTEMD_SPARROWD_STATE").map_or_else(
                || PathBuf::from("/run/systemd-sparrow/state.json"),
                PathBuf::from,
            ),
            workers: num("SYSTEMD_SPARROWD_WORKERS", 2) as usize,
            call_limit: Duration::from_millis(num("SYSTEMD_SPARROWD_CALL_LIMIT_MS", 1000)),
            max_changes_per_minute: num("SYSTEMD_SPARROWD_MAX_CHANGES_PER_MINUTE", 60) as usize,
        }
    }
}

/// Why the daemon could not run.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The control socket could not be set up.
    #[error("control socket {path}: {source}")]
    Control {
        /// The socket.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
}

/// How the host's resources are sized, for percentages.
fn machine(host: &RealHost) -> Machine {
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
    };
    let tasks = match (
        read("/proc/sys/kernel/pid_max"),
        read("/proc/sys/kernel/threads-max"),
    ) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b).unwrap_or(4_194_304),
    };
    Machine {
        memory: host.facts().memory_total,
        tasks,
    }
}

/// Reads the system's definitions with the shared loader's rules.
fn read_sources() -> (Vec<SourceText>, Vec<String>) {
    let env = |k: &str| std::env::var(k).ok();
    let (sources, refused) = sparrow_source::find(Mode::System, &env);
    let mut problems: Vec<String> = refused
        .iter()
        .map(|r| format!("{}: {}", r.path.display(), r.reason))
        .collect();
    let mut texts = Vec::new();
    for s in sources {
        // The same rule as the generator: a file someone else could
        // write is not run as root; only regular files are read.
        match sparrow_source::read_source(&s.path, Owners::for_generator()) {
            Ok(t) => texts.push(SourceText {
                source: s,
                text: t.text,
            }),
            Err(e) => problems.push(format!("{}: {}", s.path.display(), e.reason)),
        }
    }
    translate_raku(&mut texts, &mut problems);
    (texts, problems)
}

/// Raku definitions get their translation (from the cache the CLI and
/// the generator's runs fill, else one Raku process; the daemon keeps
/// what it translates); their subs run in the evaluators' Raku worker.
fn translate_raku(texts: &mut Vec<SourceText>, problems: &mut Vec<String>) {
    let env = |k: &str| std::env::var(k).ok();
    let raku: Vec<usize> = (0..texts.len())
        .filter(|i| texts[*i].source.kind.is_raku())
        .collect();
    if raku.is_empty() {
        return;
    }
    let opts = sparrow_raku::Options::for_writers(&env);
    let (host, _) = RealHost::from_env();
    let facts = sparrow_lang::Host::facts(&host).clone();
    let inputs: Vec<sparrow_raku::Input<'_>> = raku
        .iter()
        .map(|i| sparrow_raku::Input {
            path: &texts[*i].source.path,
            text: &texts[*i].text,
        })
        .collect();
    let (out, _) = sparrow_raku::translate(&inputs, &facts, &opts, &env);
    let mut failed = Vec::new();
    for (i, t) in raku.into_iter().zip(out) {
        let path = texts[i].source.path.display().to_string();
        match t {
            sparrow_raku::Translation::Native(text) => texts[i].source.translation = Some(text),
            sparrow_raku::Translation::Failed { line, message } => {
                problems.push(format!("{path}:{line}: Raku: {message}"));
                failed.push(i);
            }
            sparrow_raku::Translation::NoRaku => {
                problems.push(format!("{path}: `raku` is not installed; skipped"));
                failed.push(i);
            }
        }
    }
    // Reported above; nothing of them is loaded.
    for i in failed.into_iter().rev() {
        texts.remove(i);
    }
}

/// Runs the daemon until SIGTERM.
pub async fn run(cfg: Config) -> Result<(), DaemonError> {
    let clock = SystemClock;
    let (tx, mut rx) = mpsc::channel::<Msg<Bus>>(4096);
    let (host, facts_err) = RealHost::from_env();
    if let Some(e) = facts_err {
        warn!("facts override: {e}");
    }
    let report_tx = tx.clone();
    let pool = Pool::start(
        PoolConfig {
            workers: cfg.workers,
            per_worker: 64,
            limit: cfg.call_limit,
            facts: host.facts().clone(),
            owners: Owners::for_generator(),
            exe: PathBuf::from("/proc/self/exe"),
        },
        Arc::new(move |ev| {
            let msg = match ev {
                PoolEvent::Loaded {
                    generation,
                    specs,
                    problems,
                } => Msg::Event(Event::Loaded {
                    generation,
                    specs,
                    problems,
                }),
                PoolEvent::Called(evs) => Msg::Events(evs),
                PoolEvent::Alerts(alerts) => Msg::Event(Event::Alerts(alerts)),
                PoolEvent::Raku(w) => Msg::Event(Event::Raku(w)),
                PoolEvent::Evaluated(batch) => {
                    Msg::Events(batch.into_iter().map(Event::Evaluated).collect())
                }
            };
            let _ = report_tx.blocking_send(msg);
        }),
    );
    let store = FileStore(cfg.state.clone());
    let (persisted, warning) = store.load();
    if let Some(w) = warning {
        warn!("{w}");
    }
    let listener = control_listener(&cfg.control)?;
    tokio::spawn(serve_control(listener, tx.clone()));
    tokio::spawn(forward_signals(tx.clone()));

    let watchdog = sd_notify::watchdog_enabled().map(|d| d.as_millis() as u64);
    let mut core = Core::new(
        Settings {
            max_changes_per_minute: cfg.max_changes_per_minute,
            watchdog,
            machine: machine(&host),
        },
        persisted,
        std::process::id(),
    );
    let reader: ReadSources = Arc::new(read_sources);
    crate::probe::raise_nofile();
    let conf_path = crate::config::path_from_env();
    let conf = crate::config::load(&conf_path).unwrap_or_else(|e| {
        // A broken file must not stop health checks: defaults, loudly.
        error!("{e}; using the defaults (no alert webhook or command)");
        crate::config::DaemonConfig::default()
    });
    let alerts = crate::alert::Deliverer::new(conf.alerts.clone()).unwrap_or_else(|e| {
        error!(
            "{}: {e}; alerts go to the journal only",
            conf_path.display()
        );
        crate::alert::Deliverer::empty()
    });
    tracing::info!(
        "configuration {}: alerts to the journal{}{}",
        conf_path.display(),
        if conf.alerts.webhook.is_some() {
            ", a webhook"
        } else {
            ""
        },
        if conf.alerts.command.is_some() {
            ", a command"
        } else {
            ""
        },
    );
    let mut actuator = Actuator::new(
        BusConnector(Duration::from_secs(5)),
        pool,
        SdNotify,
        store,
        reader,
        tx,
    )
    .with_health(crate::probe::Prober::new(&conf.health), alerts);
    drive(&mut core, &mut actuator, &mut rx, &clock).await;
    let _ = std::fs::remove_file(&cfg.control);
    Ok(())
}

/// The loop: starts the core, then hands it each event with the time and
/// the actuator each action, until the core says [`Action::Exit`] or every
/// sender is gone. Generic over the edges, so tests drive it with doubles.
pub async fn drive<C, E, N, S>(
    core: &mut Core,
    actuator: &mut Actuator<C, E, N, S>,
    rx: &mut mpsc::Receiver<Msg<C::Conn>>,
    clock: &dyn Clock,
) where
    C: Connector,
    E: Evaluator,
    N: Notifier,
    S: StateStore,
{
    let mut queue: Vec<Action> = core.start(clock.now());
    loop {
        // Perform what the core asked for; refusals known at once go back in.
        while !queue.is_empty() {
            for a in std::mem::take(&mut queue) {
                if matches!(a, Action::Exit) {
                    return;
                }
                if let Some(ev) = actuator.perform(a) {
                    queue.extend(core.handle(ev, clock.now()));
                }
            }
        }
        let wake = core.next_wake();
        let now = clock.now();
        let sleep = async {
            match wake {
                Some(at) => {
                    tokio::time::sleep(Duration::from_millis(at.saturating_sub(now.mono))).await
                }
                None => std::future::pending().await,
            }
        };
        let events = tokio::select! {
            msg = rx.recv() => match msg {
                None => return,
                Some(Msg::Event(ev)) => vec![ev],
                Some(Msg::Events(evs)) => evs,
                Some(Msg::Connected(r)) => vec![actuator.connected(r)],
                Some(Msg::Control(req, reply)) => {
                    vec![Event::Control(actuator.request(reply), req)]
                }
            },
            () = sleep => vec![Event::Tick],
        };
        let now = clock.now();
        for ev in events {
            queue.extend(core.handle(ev, now));
        }
    }
}

/// Forwards SIGTERM/SIGINT (stop) and SIGHUP (reload).
async fn forward_signals(tx: mpsc::Sender<Msg<Bus>>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        error!("cannot install signal handlers");
        return;
    };
    loop {
        let ev = tokio::select! {
            _ = term.recv() => Event::Terminate,
            _ = int.recv() => Event::Terminate,
            _ = hup.recv() => Event::Reload,
        };
        if tx.send(Msg::Event(ev)).await.is_err() {
            return;
        }
    }
}

/// The longest request line the control socket reads.
pub const MAX_REQUEST: usize = 64 * 1024;

fn control_listener(path: &std::path::Path) -> Result<tokio::net::UnixListener, DaemonError> {
    use std::os::unix::fs::PermissionsExt;
    let fail = |source| DaemonError::Control {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let _ = std::fs::remove_file(path);
    let listener = tokio::net::UnixListener::bind(path).map_err(fail)?;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    Ok(listener)
}

/// Accepts control connections: root only (SO_PEERCRED, checked before a
/// byte is read), one request line of at most [`MAX_REQUEST`] each.
async fn serve_control(listener: tokio::net::UnixListener, tx: mpsc::Sender<Msg<Bus>>) {
    use tokio::io::AsyncWriteExt;
    let mut backoff = Duration::from_millis(10);
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => {
                backoff = Duration::from_millis(10);
                s
            }
            Err(e) => {
                // Out of descriptors (EMFILE/ENFILE) or memory: the pending
                // connection stays queued and accept would fail again at
                // once; wait instead of spinning.
                warn!("control socket: accept failed: {e}; pausing {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let tx = tx.clone();
        tokio::spawn(async move {
            let uid = stream.peer_cred().map(|c| c.uid()).unwrap_or(u32::MAX);
            let (read, mut write) = stream.into_split();
            let resp = if uid != 0 {
                Response::error(format!(
                    "permission denied: the control socket is for root (you are uid {uid})"
                ))
            } else {
                match tokio::time::timeout(Duration::from_secs(5), read_request(read)).await {
                    Ok(Ok(line)) => match serde_json::from_slice::<Request>(&line) {
                        Err(e) => Response::error(format!("bad request: {e}")),
                        Ok(req) => {
                            let (rtx, rrx) = oneshot::channel();
                            if tx.send(Msg::Control(req, rtx)).await.is_err() {
                                return;
                            }
                            match tokio::time::timeout(Duration::from_secs(15), rrx).await {
                                Ok(Ok(r)) => r,
                                _ => Response::error("systemd-sparrowd did not answer in time"),
                            }
                        }
                    },
                    Ok(Err(e)) => Response::error(e),
                    Err(_) => Response::error("no request within 5 s"),
                }
            };
            let mut text = serde_json::to_string(&resp).unwrap_or_else(|_| "{\"ok\":false}".into());
            text.push('\n');
            let _ = write.write_all(text.as_bytes()).await;
        });
    }
}

/// Reads one request line, refusing more than [`MAX_REQUEST`] bytes.
async fn read_request(read: tokio::net::unix::OwnedReadHalf) -> Result<Vec<u8>, String> {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
    let mut line = Vec::new();
    let mut limited = BufReader::new(read).take(MAX_REQUEST as u64 + 1);
    limited
        .read_until(b'\n', &mut line)
        .await
        .map_err(|e| format!("cannot read the request: {e}"))?;
    if line.len() > MAX_REQUEST {
        return Err(format!("request longer than {MAX_REQUEST} bytes"));
    }
    if line.is_empty() {
        return Err("empty request".into());
    }
    Ok(line)
}
