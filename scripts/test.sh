#!/usr/bin/env bash
# The whole test suite, as CI runs it. Installs what the tests need when run
# as root (systemd's tools for `systemd-analyze verify`, systemd-container
# for the lab, rakudo for the Raku comparisons and Raku tasks, the
# interpreters tasks are written in: python3, perl, ruby; cargo-deb for the
# package test, as any user), then checks formatting, lints, and runs every
# test.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
command -v systemd-nspawn >/dev/null 2>&1 || need+=(systemd-container)
command -v raku >/dev/null 2>&1 || need+=(rakudo)
command -v python3 >/dev/null 2>&1 || need+=(python3)
command -v perl >/dev/null 2>&1 || need+=(perl)
command -v ruby >/dev/null 2>&1 || need+=(ruby)
if ((${#need[@]})); then
    if [ "$(id -u)" -ne 0 ]; then
        echo "scripts/test.sh: missing ${need[*]}; run as root (CI does) or install them" >&2
        exit 1
    fi
    echo "scripts/test.sh: installing ${need[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# cargo-deb for the package test (tests/package_lab.rs): about a minute to
# build on a fresh machine, once.
bash scripts/package.sh --tools-only

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# Two cores: keep test binaries from oversubscribing them.
cargo test --workspace --locked -- --test-threads=2
