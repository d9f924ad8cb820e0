//! `systemd-sparrow hook run UNIT STAGE`: what generated units call.

use std::path::PathBuf;
use std::time::Duration;

use sparrow_hook::{Options, Stage};

/// Runs the stage; 0 when it passed, 1 with the reason on stderr (the
/// unit's journal) when it failed, which fails the unit's start.
pub fn run(unit: &str, stage: Stage, source: Option<PathBuf>, timeout: Option<Duration>) -> u8 {
    let opts = Options {
        source,
        limit: timeout.unwrap_or(sparrow_hook::DEFAULT_LIMIT),
        ..Options::default()
    };
    let mut err = std::io::stderr().lock();
    match sparrow_hook::run(unit, stage, &opts, &mut err) {
        Ok(()) => 0,
        Err(why) => {
            use std::io::Write;
            let _ = writeln!(err, "{unit}: {} failed: {why}", stage.name());
            1
        }
    }
}
