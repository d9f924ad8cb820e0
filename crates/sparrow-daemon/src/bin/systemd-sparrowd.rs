//! `systemd-sparrowd`: run by `systemd-sparrowd.service`. Re-executed as
//! `sparrow-evaluator runtime`, it is its own evaluator process.

fn main() -> std::process::ExitCode {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(role) = sparrow_isolate::role(&argv) {
        let code = if role == sparrow_daemon::worker::ROLE {
            sparrow_daemon::worker::serve()
        } else {
            eprintln!("sparrow-evaluator: unknown role {role:?}");
            2
        };
        return std::process::ExitCode::from(code);
    }
    sparrow_daemon::main()
}
