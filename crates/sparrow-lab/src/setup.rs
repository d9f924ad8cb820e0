//! What goes into a lab before it boots, and what a command run in it gave.

use std::path::PathBuf;
use std::time::Duration;

/// What to put in the lab before it boots.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The `systemd-sparrow` binary: installed as `/opt/sparrow/bin/systemd-sparrow`
    /// and, under the generator's name, in `/etc/systemd/system-generators/`.
    /// `None` boots a bare systemd.
    pub sparrow: Option<PathBuf>,
    /// `(file name, text)` for `/etc/systemd/sparrow/`.
    pub definitions: Vec<(String, String)>,
    /// `(file name, text)` for `/etc/systemd/system/`.
    pub unit_files: Vec<(String, String)>,
    /// How long boot may take.
    pub boot_timeout: Duration,
    /// After this the reaper kills the lab whatever the test is doing.
    pub watchdog: Duration,
    /// A directory laid over the host's `/usr` to make the container's `/usr`
    /// (read-only overlayfs, this directory on top): the `usr/` of a Debian
    /// package unpacked with `dpkg-deb -x`, so that systemd finds what the
    /// package installs where it installs it. The host's `/usr` is not written.
    pub usr_layer: Option<PathBuf>,
    /// Accept a boot that ends `degraded` (some unit failed), for demos of
    /// definitions whose programs the lab lacks. Tests want `running`.
    pub allow_degraded: bool,
}

impl Setup {
    /// A lab with the generator from `sparrow` and nothing else.
    pub fn new(sparrow: impl Into<PathBuf>) -> Setup {
        Setup {
            sparrow: Some(sparrow.into()),
            ..Setup::bare()
        }
    }

    /// A lab with systemd only.
    pub fn bare() -> Setup {
        Setup {
            sparrow: None,
            definitions: Vec::new(),
            unit_files: Vec::new(),
            usr_layer: None,
            boot_timeout: Duration::from_secs(60),
            watchdog: Duration::from_secs(600),
            allow_degraded: false,
        }
    }

    /// Adds a definition before boot.
    pub fn definition(mut self, name: &str, text: &str) -> Setup {
        self.definitions.push((name.into(), text.into()));
        self
    }

    /// Installs systemd-sparrowd's packaged unit (`packaging/systemd-sparrowd.service`,
    /// its `ExecStart=` pointed at the lab's binary) in `/etc/systemd/system`;
    /// start it with `systemctl start systemd-sparrowd`.
    pub fn daemon(self) -> Setup {
        let unit = daemon_unit("/opt/sparrow/bin/systemd-sparrowd");
        self.unit_file("systemd-sparrowd.service", &unit)
    }

    /// Lays `dir` over the host's `/usr` (see [`Setup::usr_layer`]).
    pub fn usr_layer(mut self, dir: impl Into<PathBuf>) -> Setup {
        self.usr_layer = Some(dir.into());
        self
    }

    /// Adds a unit file (or shebang unit) before boot.
    pub fn unit_file(mut self, name: &str, text: &str) -> Setup {
        self.unit_files.push((name.into(), text.into()));
        self
    }
}

/// `packaging/systemd-sparrowd.service` with its one `ExecStart=` line
/// running `exe` (whatever path the package puts there).
fn daemon_unit(exe: &str) -> String {
    let text = include_str!("../../../packaging/systemd-sparrowd.service");
    let mut found = 0;
    let lines: Vec<String> = text
        .lines()
        .map(|l| {
            if l.starts_with("ExecStart=") {
                found += 1;
                format!("ExecStart={exe}")
            } else {
                l.to_string()
            }
        })
        .collect();
    assert_eq!(
        found, 1,
        "packaging/systemd-sparrowd.service: one ExecStart= line"
    );
    lines.join("\n") + "\n"
}

/// The result of a command run inside the lab.
#[derive(Debug, Clone)]
pub struct Output {
    /// Exit code (`None` when killed).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Output {
    /// Whether it exited 0.
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }

    /// Its standard output; panics with everything it printed when it
    /// failed (for tests and the demo's own checks).
    pub fn expect_ok(self) -> String {
        assert!(
            self.ok(),
            "command failed ({:?}): {}{}",
            self.code,
            self.stdout,
            self.stderr
        );
        self.stdout
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_daemon_unit_runs_the_given_binary() {
        let unit = super::daemon_unit("/opt/x/systemd-sparrowd");
        assert!(
            unit.contains("\nExecStart=/opt/x/systemd-sparrowd\n"),
            "{unit}"
        );
        assert_eq!(unit.matches("ExecStart=").count(), 1, "{unit}");
        assert!(
            unit.contains("\n[Install]\nWantedBy=multi-user.target\n"),
            "{unit}"
        );
    }
}
