//! `systemd-sparrowd`: run by `systemd-sparrowd.service`.

fn main() -> std::process::ExitCode {
    sparrow_daemon::main()
}
