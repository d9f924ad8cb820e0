//! The Debian package (`scripts/package.sh`), built from the binaries this
//! test run built (`--profile dev --no-build`: no second, release build),
//! checked file by file, then installed into a real booted systemd: the
//! lab's `/usr` is the host's with the unpacked package laid over it
//! (read-only overlayfs, `Setup::usr_layer`), so systemd runs the generator
//! from the package's path at boot, finds the daemon's unit where the
//! package put it, and the package's maintainer scripts run against it.
//! Nothing is written to the host's `/usr`.
//!
//! Needs cargo-deb (`scripts/test.sh` installs it) and `dpkg-deb`; the lab
//! part needs root, like every lab test.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::{ok, secs, SPARROW};

use sparrow_lab::{Lab, Setup};

/// The built package, unpacked.
struct Package {
    deb: PathBuf,
    /// `dpkg-deb -x` of it.
    root: PathBuf,
    /// `dpkg-deb -e` of it (the maintainer scripts).
    control: PathBuf,
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The target directory this test binary's `systemd-sparrow` was built in.
fn target_dir() -> PathBuf {
    let bin = Path::new(SPARROW);
    let profile_dir = bin.parent().expect("target/debug");
    assert_eq!(
        profile_dir.file_name().and_then(|n| n.to_str()),
        Some("debug"),
        "{SPARROW}: the package test expects the dev profile's binaries"
    );
    profile_dir.parent().expect("target").to_path_buf()
}

fn run(cmd: &mut Command) -> String {
    let what = format!("{cmd:?}");
    let o = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "{what} failed ({}):\n{out}{}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

/// Builds the package once per test binary.
fn package() -> &'static Package {
    static PACKAGE: OnceLock<Package> = OnceLock::new();
    PACKAGE.get_or_init(|| {
        let have_deb = Command::new("cargo")
            .args(["deb", "--version"])
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            have_deb,
            "cargo-deb is missing: cargo install cargo-deb --locked (scripts/test.sh does)"
        );
        let target = target_dir();
        // Both binaries fresh, as `cargo test --workspace` builds them (the
        // generator is another package's binary, so cargo did not
        // necessarily build it for this test). In a full
        // `cargo test --workspace` run this is a no-op; a `cargo build` of
        // just the binaries would not be (dev-dependencies' features differ)
        // and would replace binaries other tests are running.
        // Without the variables cargo set for running this test: build
        // scripts that watch one (ring's, CARGO_MANIFEST_DIR) would rebuild.
        let t = std::time::Instant::now();
        let mut nested = Command::new(env!("CARGO"));
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy();
            if k.starts_with("CARGO_PKG_")
                || k.starts_with("CARGO_BIN_")
                || [
                    "CARGO_MANIFEST_DIR",
                    "CARGO_MANIFEST_PATH",
                    "CARGO_CRATE_NAME",
                    "CARGO_PRIMARY_PACKAGE",
                    "CARGO_TARGET_TMPDIR",
                    "CARGO_RUSTC_CURRENT_DIR",
                    "OUT_DIR",
                ]
                .contains(&k.as_ref())
            {
                nested.env_remove(k.as_ref());
            }
        }
        run(nested
            .args(["test", "--workspace", "--no-run", "--locked", "--quiet"])
            .env("CARGO_TARGET_DIR", &target)
            .current_dir(workspace()));
        eprintln!("package test: cargo test --no-run took {:?}", t.elapsed());
        let t = std::time::Instant::now();
        let out = run(Command::new("bash")
            .args([
                "scripts/package.sh",
                "--profile",
                "dev",
                "--no-build",
                "--fast",
            ])
            .env("CARGO_TARGET_DIR", &target)
            .current_dir(workspace()));
        eprintln!("package test: scripts/package.sh took {:?}", t.elapsed());
        let deb = PathBuf::from(out.lines().last().unwrap_or_default().trim());
        assert!(
            deb.is_file() && deb.extension().is_some_and(|e| e == "deb"),
            "scripts/package.sh's last line is not the .deb: {out}"
        );
        // Unpacked under the target directory (build output, replaced each run).
        let dir = target.join("debian/dev/unpacked");
        let _ = std::fs::remove_dir_all(&dir);
        let (root, control) = (dir.join("root"), dir.join("control"));
        std::fs::create_dir_all(&root).unwrap();
        run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root));
        run(Command::new("dpkg-deb").arg("-e").arg(&deb).arg(&control));
        Package { deb, root, control }
    })
}

/// `dpkg-deb --contents`: path (without the leading `.`) to (mode string,
/// owner, symlink target).
fn contents(deb: &Path) -> BTreeMap<String, (String, String, Option<String>)> {
    run(Command::new("dpkg-deb").arg("--contents").arg(deb))
        .lines()
        .map(|l| {
            // -rwxr-xr-x root/root   12345 2024-01-01 00:00 ./usr/bin/x
            let f: Vec<&str> = l.split_whitespace().collect();
            assert!(f.len() >= 6, "dpkg-deb --contents line: {l}");
            let rest = f[5..].join(" ");
            let (path, link) = match rest.split_once(" -> ") {
                Some((p, t)) => (p.to_string(), Some(t.to_string())),
                None => (rest, None),
            };
            let path = path.trim_start_matches('.').to_string();
            (path, (f[0].to_string(), f[1].to_string(), link))
        })
        .collect()
}

/// The names of an ELF64 little-endian file's sections.
fn elf_sections(path: &Path) -> Vec<String> {
    let b = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        b.len() > 64 && &b[..4] == b"\x7fELF" && b[4] == 2 && b[5] == 1,
        "{}: not an ELF64 little-endian file",
        path.display()
    );
    let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as usize;
    let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap()) as usize;
    let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap()) as usize;
    let (shoff, shentsize, shnum, shstrndx) =
        (u64_at(0x28), u16_at(0x3a), u16_at(0x3c), u16_at(0x3e));
    let header = |i: usize| shoff + i * shentsize;
    let strtab = u64_at(header(shstrndx) + 0x18);
    (0..shnum)
        .map(|i| {
            let start = strtab + u32_at(header(i));
            let end = start + b[start..].iter().position(|&c| c == 0).unwrap();
            String::from_utf8_lossy(&b[start..end]).into_owned()
        })
        .collect()
}

const BINARIES: [&str; 2] = [
    "/usr/bin/systemd-sparrow",
    "/usr/lib/systemd/system-generators/systemd-sparrow-generator",
];
const DAEMON: &str = "/usr/libexec/systemd-sparrowd";
const DAEMON_UNIT: &str = "/usr/lib/systemd/system/systemd-sparrowd.service";
const COMPLETIONS: [&str; 3] = [
    "/usr/share/bash-completion/completions/systemd-sparrow",
    "/usr/share/zsh/vendor-completions/_systemd-sparrow",
    "/usr/share/fish/vendor_completions.d/systemd-sparrow.fish",
];
const MAN: &str = "/usr/share/man/man1/systemd-sparrow.1.gz";

#[test]
fn the_package_puts_each_file_where_debian_and_systemd_look() {
    let p = package();
    let info = run(Command::new("dpkg-deb").arg("--info").arg(&p.deb));
    for field in [
        "Package: systemd-sparrow\n",
        "Section: admin\n",
        "Priority: optional\n",
        "Maintainer: ",
        "Description: ",
    ] {
        assert!(info.contains(&format!(" {field}")), "{field:?} in:\n{info}");
    }
    let depends = info
        .lines()
        .find_map(|l| l.trim().strip_prefix("Depends: "))
        .unwrap_or_else(|| panic!("no Depends:\n{info}"));
    assert!(depends.contains("libc6"), "{depends}");
    assert!(depends.contains("systemd (>= 252)"), "{depends}");
    for script in ["postinst", "prerm", "postrm"] {
        let text = std::fs::read_to_string(p.control.join(script)).unwrap();
        assert_eq!(
            text,
            std::fs::read_to_string(workspace().join("packaging/debian").join(script)).unwrap(),
            "{script}"
        );
    }

    let files = contents(&p.deb);
    let listing = || format!("{files:#?}");
    let mode = |path: &str| {
        let (mode, owner, _) = files
            .get(path)
            .unwrap_or_else(|| panic!("{path} is not in the package:\n{}", listing()));
        assert!(
            owner == "0/0" || owner == "root/root",
            "{path}: owned by {owner}"
        );
        mode.clone()
    };
    // Stripped: no symbol table, no debug information (.debug_gdb_scripts
    // is neither: a few bytes naming gdb's pretty-printers, loaded with the
    // program, which strip keeps).
    let unstripped = |path: &Path| -> Vec<String> {
        let sections = elf_sections(path);
        assert!(sections.iter().any(|s| s == ".text"), "{sections:?}");
        sections
            .into_iter()
            .filter(|s| s == ".symtab" || (s.starts_with(".debug_") && s != ".debug_gdb_scripts"))
            .collect()
    };
    // The check sees what the package's strip removed, in the debug build.
    let built = unstripped(Path::new(SPARROW));
    assert!(
        built.iter().any(|s| s == ".symtab") && built.iter().any(|s| s == ".debug_info"),
        "{built:?}"
    );
    for bin in BINARIES {
        assert_eq!(mode(bin), "-rwxr-xr-x", "{bin}");
        let left = unstripped(&p.root.join(&bin[1..]));
        assert!(left.is_empty(), "{bin} is not stripped: {left:?}");
    }
    // The user generator and the daemon: the binaries under other names.
    for (link, to) in [
        (
            "/usr/lib/systemd/user-generators/systemd-sparrow-user-generator",
            "../system-generators/systemd-sparrow-generator",
        ),
        (DAEMON, "../bin/systemd-sparrow"),
    ] {
        assert_eq!(
            files.get(link).and_then(|f| f.2.as_deref()),
            Some(to),
            "{link}: {}",
            listing()
        );
    }
    assert_eq!(mode(DAEMON_UNIT), "-rw-r--r--");
    let unit = std::fs::read_to_string(p.root.join(&DAEMON_UNIT[1..])).unwrap();
    assert_eq!(
        unit,
        std::fs::read_to_string(workspace().join("packaging/systemd-sparrowd.service")).unwrap()
    );
    assert_eq!(
        unit.lines()
            .filter(|l| l.starts_with("ExecStart="))
            .collect::<Vec<_>>(),
        ["ExecStart=/usr/libexec/systemd-sparrowd"]
    );
    for f in COMPLETIONS.iter().chain([&MAN]) {
        assert_eq!(mode(f), "-rw-r--r--", "{f}");
    }
    // One man page per subcommand too, all gzipped troff.
    let pages: Vec<&String> = files
        .keys()
        .filter(|k| k.starts_with("/usr/share/man/") && !k.ends_with('/'))
        .collect();
    assert!(pages.len() > 5, "{pages:?}");
    for page in &pages {
        assert!(
            page.starts_with("/usr/share/man/man1/systemd-sparrow") && page.ends_with(".1.gz"),
            "{page}"
        );
    }
    let man = run(Command::new("gzip").arg("-dc").arg(p.root.join(&MAN[1..])));
    assert!(man.contains(".TH systemd-sparrow 1"), "{man}");
    // bash reads the file and then completes the command with it.
    let bash = run(Command::new("bash")
        .arg("-c")
        .arg(r#"source "$1" && complete -p systemd-sparrow"#)
        .arg("bash")
        .arg(p.root.join(&COMPLETIONS[0][1..])));
    assert!(
        bash.starts_with("complete ")
            && bash.contains(" -F _systemd")
            && bash.trim_end().ends_with(" systemd-sparrow"),
        "{bash}"
    );
    let zsh = std::fs::read_to_string(p.root.join(&COMPLETIONS[1][1..])).unwrap();
    assert!(zsh.starts_with("#compdef systemd-sparrow"), "{zsh}");
    let fish = std::fs::read_to_string(p.root.join(&COMPLETIONS[2][1..])).unwrap();
    assert!(fish.contains("complete -c systemd-sparrow"), "{fish}");
    assert_eq!(
        mode("/usr/share/doc/systemd-sparrow/copyright"),
        "-rw-r--r--"
    );

    // Nothing enabled by the package itself (no .wants/ links): the daemon
    // is opt-in.
    let links: Vec<&String> = files.keys().filter(|k| k.contains(".wants/")).collect();
    assert!(links.is_empty(), "{links:?}");
    // Everything under /usr (nothing in /etc, /usr/local, /var, /opt).
    let stray: Vec<&String> = files
        .keys()
        .filter(|k| !k.starts_with("/usr/") && k.as_str() != "/" && k.as_str() != "/usr/")
        .chain(files.keys().filter(|k| k.starts_with("/usr/local")))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
}

const HELLO: &str = r#"service("hello", #{
    exec_start: ["/bin/sleep", "infinity"],
    wanted_by: ["multi-user.target"],
    hooks: #{ pre_start: |ctx| { log(`hello from the packaged hook runner for ${ctx.unit}`); } },
});"#;

/// Runs one of the package's maintainer scripts inside the lab.
fn maintainer_script(lab: &Lab, p: &Package, name: &str, args: &[&str]) {
    let text = std::fs::read_to_string(p.control.join(name)).unwrap();
    let mut argv = vec!["/bin/sh", "-c", &text, name];
    argv.extend_from_slice(args);
    ok(lab.exec_timeout(&argv, secs(60)).unwrap());
}

#[test]
fn the_installed_package_works_in_a_booted_systemd() {
    let p = package();
    let on_host =
        |paths: &[&str]| -> Vec<bool> { paths.iter().map(|f| Path::new(f).exists()).collect() };
    let ours = [
        BINARIES[0],
        BINARIES[1],
        DAEMON,
        DAEMON_UNIT,
        MAN,
        COMPLETIONS[0],
    ];
    let before = on_host(&ours);

    let lab = Lab::boot(
        Setup::bare()
            .usr_layer(p.root.join("usr"))
            .definition("hello.sparrow", HELLO)
            .definition(
                "user/hi.sparrow",
                r#"service("hi", #{ exec_start: ["/bin/true"] });"#,
            ),
    )
    .unwrap_or_else(|e| panic!("{e}"));

    // The only sparrow generator systemd can see is the package's.
    let others = ok(lab
        .sh("ls /etc/systemd/system-generators /run/systemd/system-generators /usr/local/lib/systemd/system-generators 2>/dev/null; true")
        .unwrap());
    assert!(!others.contains("sparrow"), "{others}");
    ok(lab
        .exec(&[
            "test",
            "-x",
            "/usr/lib/systemd/system-generators/systemd-sparrow-generator",
        ])
        .unwrap());

    // At boot it turned the definition into a unit, started through the
    // .wants/ link it wrote, and the hook ran the packaged CLI.
    lab.wait_active_state("hello.service", "active", secs(30))
        .unwrap();
    let s = lab
        .show(
            "hello.service",
            &[
                "FragmentPath",
                "SourcePath",
                "UnitFileState",
                "ExecStartPre",
            ],
        )
        .unwrap();
    assert_eq!(
        s["FragmentPath"], "/run/systemd/generator/hello.service",
        "{s:?}"
    );
    assert_eq!(
        s["SourcePath"], "/etc/systemd/sparrow/hello.sparrow",
        "{s:?}"
    );
    assert_eq!(s["UnitFileState"], "generated", "{s:?}");
    assert!(
        s["ExecStartPre"].contains("path=/usr/bin/systemd-sparrow ")
            && s["ExecStartPre"].contains("hook run -- hello.service pre_start"),
        "{s:?}"
    );
    let log = lab.journal(&["-u", "hello.service"]).unwrap();
    assert!(
        log.contains("hello from the packaged hook runner for hello.service"),
        "{log}"
    );

    // The user generator, under its name through the package's symlink.
    ok(lab
        .sh("mkdir -p /run/ug /run/ug.early /run/ug.late")
        .unwrap());
    ok(lab
        .exec(&[
            "/usr/lib/systemd/user-generators/systemd-sparrow-user-generator",
            "/run/ug",
            "/run/ug.early",
            "/run/ug.late",
        ])
        .unwrap());
    let hi = ok(lab.exec(&["cat", "/run/ug/hi.service"]).unwrap());
    assert!(hi.contains("ExecStart=/bin/true"), "{hi}");

    // The daemon's unit, from the package's place. (It runs already: the
    // lab's empty /etc is a first boot, where systemd applies the presets,
    // and Debian's enable everything; installing with apt does not.)
    // Debian's systemd 252 names it by /lib/systemd/system, the same
    // directory as /usr/lib/systemd/system on a merged /usr.
    let fragment = lab
        .prop("systemd-sparrowd.service", "FragmentPath")
        .unwrap();
    assert!(
        [DAEMON_UNIT, &DAEMON_UNIT[4..]].contains(&fragment.as_str()),
        "{fragment}"
    );
    let real = ok(lab.exec(&["realpath", &fragment]).unwrap());
    assert_eq!(real.trim(), DAEMON_UNIT);
    let cat = ok(lab
        .exec(&["systemctl", "cat", "systemd-sparrowd.service"])
        .unwrap());
    let packaged = std::fs::read_to_string(p.root.join(&DAEMON_UNIT[1..])).unwrap();
    assert_eq!(
        cat.trim_end(),
        format!("# {fragment}\n{packaged}").trim_end()
    );
    assert!(
        cat.contains("\nExecStart=/usr/libexec/systemd-sparrowd\n"),
        "{cat}"
    );
    // It runs the packaged binary under the daemon's name, and the packaged
    // CLI reaches it.
    ok(lab
        .exec(&["systemctl", "start", "systemd-sparrowd.service"])
        .unwrap());
    lab.wait_active_state("systemd-sparrowd.service", "active", secs(60))
        .unwrap();
    let pid = lab.prop("systemd-sparrowd.service", "MainPID").unwrap();
    let exe = ok(lab
        .exec(&["readlink", &format!("/proc/{pid}/exe")])
        .unwrap());
    assert_eq!(exe.trim(), "/usr/bin/systemd-sparrow");
    let argv0 = ok(lab
        .sh(&format!("tr '\\0' '\\n' < /proc/{pid}/cmdline | head -n1"))
        .unwrap());
    assert_eq!(argv0.trim(), DAEMON);
    let status = ok(lab.exec(&["/usr/bin/systemd-sparrow", "status"]).unwrap());
    assert!(
        status.contains(&format!("systemd-sparrowd (pid {pid}, ")),
        "{status}"
    );

    // Man pages and completions where man and the shells look.
    for f in [MAN, COMPLETIONS[0], COMPLETIONS[1], COMPLETIONS[2]] {
        ok(lab.exec(&["test", "-s", f]).unwrap());
    }

    // The maintainer scripts, against this running systemd. postinst
    // configure (a fresh install): a daemon-reload, so the generator runs.
    lab.write_definition(
        "late.sparrow",
        r#"service("late", #{ exec_start: ["/bin/sleep", "infinity"] });"#,
    )
    .unwrap();
    assert_eq!(lab.prop("late.service", "LoadState").unwrap(), "not-found");
    maintainer_script(&lab, p, "postinst", &["configure"]);
    assert_eq!(lab.prop("late.service", "LoadState").unwrap(), "loaded");
    // postinst configure OLD-VERSION (an upgrade): the running daemon is
    // restarted onto the new binary.
    maintainer_script(&lab, p, "postinst", &["configure", "0.0.1-1"]);
    lab.wait_active_state("systemd-sparrowd.service", "active", secs(60))
        .unwrap();
    let restarted = lab.prop("systemd-sparrowd.service", "MainPID").unwrap();
    assert_ne!(restarted, pid, "the upgrade did not restart the daemon");
    // prerm remove stops it; postrm remove reloads.
    maintainer_script(&lab, p, "prerm", &["remove"]);
    assert_eq!(
        lab.prop("systemd-sparrowd.service", "ActiveState").unwrap(),
        "inactive"
    );
    lab.write_definition(
        "later.sparrow",
        r#"service("later", #{ exec_start: ["/bin/sleep", "infinity"] });"#,
    )
    .unwrap();
    maintainer_script(&lab, p, "postrm", &["remove"]);
    assert_eq!(lab.prop("later.service", "LoadState").unwrap(), "loaded");
    drop(lab);

    // The host's /usr is as it was.
    assert_eq!(on_host(&ours), before, "{ours:?}");
}
