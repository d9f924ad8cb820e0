//! `systemd-sparrow-generator normal-dir [early-dir late-dir]`
//!
//! Installed in `/usr/lib/systemd/system-generators/` (or, as
//! `systemd-sparrow-user-generator`, in `user-generators/`). See
//! `sparrow_generator::entry` for the contract.

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(sparrow_generator::entry::main(
        std::env::args_os().collect(),
    ))
}
