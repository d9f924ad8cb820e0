//! The unit kinds besides services, and drop-ins, in a real systemd: a
//! socket accepts a connection and spawns its service, a path unit fires,
//! a mount mounts, and a drop-in changes units shipped elsewhere (one in
//! /etc, one from the host's /usr as a package installs it).

mod common;

use common::{ok, secs, SPARROW};

use sparrow_lab::{Lab, Setup};

const SITE: &str = r#"
service("echo@", #{ exec_start: ["/bin/cat"], standard_input: "socket" });
socket("echo", #{ listen_stream: "127.0.0.1:7777", accept: true, wanted_by: ["sockets.target"] });
service("react", #{
    type: "oneshot",
    exec_start: ["/bin/sh", "-c", "echo reacted >> /run/reacted; rm -f /run/trigger"],
});
path("react", #{ path_exists: "/run/trigger", wanted_by: ["paths.target"] });
mount(#{ what: "tmpfs", where: "/mnt/sparrow data", type: "tmpfs", options: ["size=4M", "mode=0750"] });
target("site", #{ wants: ["mnt-sparrow\\x20data.mount"] });
dropin("pkg.service", #{ memory_max: 64.MB, exec_start: ["/bin/sleep", "1000"], env: #{ FROM: "dropin" } });
dropin("systemd-journald.service", "cap", #{ memory_max: 512.MB });
"#;

const PKG: &str =
    "[Unit]\nDescription=Shipped by a package\n\n[Service]\nExecStart=/bin/sleep infinity\n";

fn boot() -> Lab {
    let setup = Setup::new(SPARROW)
        .daemon()
        .definition("site.sparrow", SITE)
        .unit_file("pkg.service", PKG);
    Lab::boot(setup).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn sockets_paths_mounts_targets_and_dropins_work_in_systemd() {
    let lab = boot();

    // The socket listens from boot (sockets.target wants it) and each
    // connection gets its own echo@ instance, which echoes.
    let st = lab.exec(&["systemctl", "status", "echo.socket"]).unwrap();
    assert_eq!(
        lab.prop("echo.socket", "ActiveState").unwrap(),
        "active",
        "{}{}\n{}",
        st.stdout,
        st.stderr,
        lab.journal_tail(40)
    );
    let talk = "import socket\ns=socket.create_connection(('127.0.0.1',7777),timeout=5)\ns.sendall(b'sparrow\\n')\nprint(s.recv(64).decode().strip())";
    assert_eq!(
        ok(lab.exec(&["/usr/bin/python3", "-c", talk]).unwrap()).trim(),
        "sparrow"
    );
    let accepted = lab.prop("echo.socket", "NAccepted").unwrap();
    assert_eq!(accepted, "1", "NAccepted={accepted}");

    // The path unit starts its service when the file appears.
    assert_eq!(lab.prop("react.path", "ActiveState").unwrap(), "active");
    ok(lab.exec(&["touch", "/run/trigger"]).unwrap());
    lab.wait_for("react.service to run", secs(10), |lab| {
        let o = lab.exec(&["cat", "/run/reacted"])?;
        Ok((o.stdout.contains("reacted"), o.stderr))
    })
    .unwrap();

    // Starting the target mounts the tmpfs at the escaped name's path.
    ok(lab.exec(&["systemctl", "start", "site.target"]).unwrap());
    let mount = "mnt-sparrow\\x20data.mount";
    lab.wait_active_state(mount, "active", secs(10)).unwrap();
    let found = ok(lab
        .exec(&["findmnt", "-n", "-o", "FSTYPE,OPTIONS", "/mnt/sparrow data"])
        .unwrap());
    assert!(found.starts_with("tmpfs"), "{found}");
    assert!(
        found.contains("size=4096k") && found.contains("mode=750"),
        "{found}"
    );

    // The drop-in changes the unit from /etc: its file is listed, the
    // command is replaced (not added to), the limit and variable are set.
    let p = lab
        .show(
            "pkg.service",
            &["DropInPaths", "FragmentPath", "MemoryMax", "Environment"],
        )
        .unwrap();
    assert_eq!(
        p["FragmentPath"], "/etc/systemd/system/pkg.service",
        "{p:?}"
    );
    assert_eq!(
        p["DropInPaths"], "/run/systemd/generator/pkg.service.d/50-sparrow-site.conf",
        "{p:?}"
    );
    assert_eq!(p["MemoryMax"], (64u64 << 20).to_string(), "{p:?}");
    assert_eq!(p["Environment"], "FROM=dropin", "{p:?}");
    ok(lab.exec(&["systemctl", "start", "pkg.service"]).unwrap());
    lab.wait_active_state("pkg.service", "active", secs(10))
        .unwrap();
    let exec = lab.prop("pkg.service", "ExecStart").unwrap();
    assert!(exec.contains("argv[]=/bin/sleep 1000 "), "{exec}");
    assert!(!exec.contains("infinity"), "{exec}");

    // And the one from the host's /usr, as a package ships it.
    let j = lab
        .show(
            "systemd-journald.service",
            &["DropInPaths", "MemoryMax", "FragmentPath"],
        )
        .unwrap();
    assert!(
        j["FragmentPath"].starts_with("/usr/lib/systemd/system/")
            || j["FragmentPath"].starts_with("/lib/systemd/system/"),
        "{j:?}"
    );
    assert!(
        j["DropInPaths"]
            .contains("/run/systemd/generator/systemd-journald.service.d/50-sparrow-cap.conf"),
        "{j:?}"
    );
    assert_eq!(j["MemoryMax"], (512u64 << 20).to_string(), "{j:?}");

    // status lists the drop-ins with the definition they came from.
    ok(lab
        .exec(&["systemctl", "start", "systemd-sparrowd.service"])
        .unwrap());
    lab.wait_active_state("systemd-sparrowd.service", "active", secs(20))
        .unwrap();
    let status = ok(lab
        .exec(&["/opt/sparrow/bin/systemd-sparrow", "status"])
        .unwrap());
    assert!(
        status
            .contains("pkg.service.d/50-sparrow-site.conf from /etc/systemd/sparrow/site.sparrow"),
        "{status}"
    );

    // diff shows a drop-in's change before a reload; the reload applies it.
    lab.write_definition("site.sparrow", &SITE.replace("64.MB", "128.MB"))
        .unwrap();
    let diff = lab
        .exec(&["/opt/sparrow/bin/systemd-sparrow", "diff"])
        .unwrap();
    assert!(
        diff.stdout.contains("pkg.service.d/50-sparrow-site.conf")
            && diff.stdout.contains("-MemoryMax=64M")
            && diff.stdout.contains("+MemoryMax=128M"),
        "{}{}",
        diff.stdout,
        diff.stderr
    );
    lab.daemon_reload().unwrap();
    assert_eq!(
        lab.prop("pkg.service", "MemoryMax").unwrap(),
        (128u64 << 20).to_string()
    );
}
