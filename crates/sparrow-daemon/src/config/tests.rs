use super::*;

const EXAMPLE: &str = r#"
[alerts.webhook]
url = "http://127.0.0.1:9000/hook"
timeout = "5s"
retries = 3
backoff = "1s"
headers = { Authorization = "Bearer abc" }

[alerts.command]
argv = ["/usr/local/bin/page-someone", "--fast"]
timeout = "10s"

[health]
max_concurrent_probes = 4096
max_concurrent_exec = 16
"#;

/// Writes `text` to a file in a fresh directory and loads it.
fn load_text(text: &str) -> Result<DaemonConfig, String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("daemon.toml");
    std::fs::write(&path, text).unwrap();
    load(&path)
}

/// The error for `text`, which must be one.
fn error(text: &str) -> String {
    match load_text(text) {
        Ok(c) => panic!("accepted {text:?} as {c:?}"),
        Err(e) => e,
    }
}

#[test]
fn a_missing_file_is_the_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let c = load(&dir.path().join("absent.toml")).unwrap();
    assert_eq!(c, DaemonConfig::default());
    assert_eq!(c.alerts.webhook, None);
    assert_eq!(c.alerts.command, None);
    assert_eq!(c.health.max_concurrent_probes, 4096);
    assert_eq!(c.health.max_concurrent_exec, 16);
    assert_eq!(load_text("").unwrap(), DaemonConfig::default());
}

#[test]
fn the_documented_example_parses() {
    let c = load_text(EXAMPLE).unwrap();
    let hook = c.alerts.webhook.unwrap();
    assert_eq!(hook.url, "http://127.0.0.1:9000/hook");
    assert_eq!(hook.timeout, Duration::from_secs(5));
    assert_eq!(hook.retries, 3);
    assert_eq!(hook.backoff, Duration::from_secs(1));
    assert_eq!(hook.headers["Authorization"], "Bearer abc");
    let cmd = c.alerts.command.unwrap();
    assert_eq!(cmd.argv, ["/usr/local/bin/page-someone", "--fast"]);
    assert_eq!(cmd.timeout, Duration::from_secs(10));
    assert_eq!(c.health, HealthConfig::default());
}

#[test]
fn omitted_keys_take_their_defaults() {
    let c = load_text("[alerts.webhook]\nurl = \"https://example.com/x\"\n").unwrap();
    assert_eq!(
        c.alerts.webhook,
        Some(WebhookConfig::new("https://example.com/x"))
    );
    let c =
        load_text("[alerts.command]\nargv = [\"/bin/true\"]\n[health]\nmax_concurrent_exec = 2\n")
            .unwrap();
    assert_eq!(c.alerts.command.unwrap().timeout, Duration::from_secs(10));
    assert_eq!(c.health.max_concurrent_probes, 4096);
    assert_eq!(c.health.max_concurrent_exec, 2);
}

#[test]
fn durations_are_time_spans_or_seconds() {
    let timeout = |v: &str| {
        load_text(&format!(
            "[alerts.command]\nargv = [\"/bin/true\"]\ntimeout = {v}\n"
        ))
        .map(|c| c.alerts.command.unwrap().timeout)
    };
    assert_eq!(timeout("\"500ms\""), Ok(Duration::from_millis(500)));
    assert_eq!(timeout("\"2min\""), Ok(Duration::from_secs(120)));
    assert_eq!(timeout("\"1min 30s\""), Ok(Duration::from_secs(90)));
    assert_eq!(timeout("7"), Ok(Duration::from_secs(7)));
    assert_eq!(timeout("\"10min\""), Ok(MAX_DURATION));
}

#[test]
fn an_unknown_key_is_named_with_its_line() {
    let e = error("[alerts.webhook]\nurl = \"http://h/\"\nretrys = 3\n");
    assert!(e.contains("daemon.toml:3:1:"), "{e}");
    assert!(e.contains("unknown field `retrys`"), "{e}");
    assert!(e.contains("`retries`"), "the valid keys are listed: {e}");
    let e = error("\n\n[helth]\n");
    assert!(e.contains(":3:") && e.contains("`helth`"), "{e}");
}

#[test]
fn bad_urls_are_refused() {
    for (url, why) in [
        ("ftp://example.com/x", "scheme must be http or https"),
        ("http://", "not a URL"),
        ("example.com/hook", "not a URL"),
        ("unix:/run/x", "scheme must be http or https"),
    ] {
        let e = error(&format!("[alerts.webhook]\nurl = {url:?}\n"));
        assert!(e.contains(":2:7:") && e.contains(why), "{url}: {e}");
    }
    let e = error("[alerts.webhook]\ntimeout = \"1s\"\n");
    assert!(e.contains("missing field `url`"), "{e}");
}

#[test]
fn a_relative_or_empty_command_is_refused() {
    let e = error("[alerts.command]\nargv = [\"page-someone\", \"--fast\"]\n");
    assert!(e.contains(":2:8:"), "{e}");
    assert!(
        e.contains("\"page-someone\" must be an absolute path"),
        "{e}"
    );
    let e = error("[alerts.command]\nargv = []\n");
    assert!(e.contains("`argv` is empty"), "{e}");
}

#[test]
fn out_of_range_values_are_refused() {
    let cases = [
        (
            "[alerts.webhook]\nurl = \"http://h/\"\ntimeout = \"0s\"\n",
            "`timeout` must be more than 0, not \"0s\"",
        ),
        (
            "[alerts.webhook]\nurl = \"http://h/\"\nbackoff = 0\n",
            "`backoff` must be more than 0, not 0",
        ),
        (
            "[alerts.webhook]\nurl = \"http://h/\"\ntimeout = -1\n",
            "`timeout` must be more than 0",
        ),
        (
            "[alerts.webhook]\nurl = \"http://h/\"\ntimeout = \"11min\"\n",
            "at most 10min",
        ),
        (
            "[alerts.webhook]\nurl = \"http://h/\"\ntimeout = \"soon\"\n",
            "\"soon\" is not a time span",
        ),
        (
            "[alerts.webhook]\nurl = \"http://h/\"\nretries = 11\n",
            "`retries` must be 0 to 10, not 11",
        ),
        (
            "[alerts.webhook]\nurl = \"http://h/\"\nheaders = { Host = \"x\" }\n",
            "\"Host\" is set by the daemon",
        ),
        (
            "[alerts.webhook]\nurl = \"http://h/\"\nheaders = { \"a b\" = \"x\" }\n",
            "not a header name",
        ),
        (
            "[alerts.webhook]\nurl = \"http://h/\"\nheaders = { X = \"a\\nb\" }\n",
            "on one line",
        ),
        (
            "[health]\nmax_concurrent_probes = 0\n",
            "`max_concurrent_probes` must be 1 to 65536, not 0",
        ),
        (
            "[health]\nmax_concurrent_exec = 65537\n",
            "`max_concurrent_exec` must be 1 to 65536",
        ),
        ("[health]\nmax_concurrent_exec = \"4\"\n", "expected i64"),
    ];
    for (text, want) in cases {
        let e = error(text);
        assert!(e.contains(want), "{text:?}: {e}");
        // Every one of these points at the value's line.
        let line = text.lines().count();
        assert!(e.contains(&format!("daemon.toml:{line}:")), "{text:?}: {e}");
    }
}

#[test]
fn syntax_errors_have_a_position() {
    let e = error("[alerts.webhook\nurl = 1\n");
    assert!(e.contains("daemon.toml:1:"), "{e}");
    let e = error("a = \"x\"\nb = \n");
    assert!(e.contains("daemon.toml:2:"), "{e}");
}

#[test]
fn oversized_odd_and_unreadable_files_are_refused() {
    let big = format!("# {}\n", "x".repeat(MAX_SIZE as usize));
    assert!(error(&big).contains("larger than 1048576 bytes"));

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("latin1.toml");
    std::fs::write(&path, b"\n# caf\xe9\n").unwrap();
    let e = load(&path).unwrap_err();
    assert!(e.ends_with("latin1.toml:2:6: not UTF-8 text"), "{e}");

    // A FIFO must not hang the daemon's start.
    let fifo = dir.path().join("fifo.toml");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo reads a NUL-terminated path we own.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let e = load(&fifo).unwrap_err();
    assert!(e.starts_with(fifo.to_str().unwrap()), "{e}");

    let e = load(dir.path()).unwrap_err();
    assert!(e.starts_with(dir.path().to_str().unwrap()), "{e}");
}

#[test]
fn the_path_defaults_to_etc() {
    if std::env::var_os(PATH_ENV).is_none() {
        assert_eq!(path_from_env(), Path::new(DEFAULT_PATH));
    }
}

#[test]
fn line_and_column_count_characters() {
    assert_eq!(line_col("", 0), (1, 1));
    assert_eq!(line_col("ab\ncd", 4), (2, 2));
    assert_eq!(line_col("é = x", 3), (1, 3));
    assert_eq!(line_col("ab", 99), (1, 3));
}
