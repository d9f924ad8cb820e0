#!/usr/bin/env bash
# Builds the Debian package with cargo-deb (installed first when missing):
#   bash scripts/package.sh                 stripped release build (fat LTO: slow)
#   bash scripts/package.sh --profile dev   the debug build, stripped into the
#                                           package (what the lab test uses)
#   --no-build                              package the binaries already built
#                                           for that profile (no cargo build)
#   --fast                                  lighter compression
#   --tools-only                            install cargo-deb if missing, then
#                                           stop (scripts/test.sh)
# The .deb lands in $CARGO_TARGET_DIR/debian/ (target/debian/), another
# profile's in debian/PROFILE/ (never mistaken for a release); its path is the
# last line printed. What goes where: [package.metadata.deb] in
# crates/systemd-sparrow/Cargo.toml.
set -euo pipefail
cd "$(dirname "$0")/.."

profile=release
build=1
fast=()
tools_only=0
while (($#)); do
    case "$1" in
    --profile) profile=${2:?--profile needs a name}; shift ;;
    --profile=*) profile=${1#--profile=} ;;
    --no-build) build=0 ;;
    --fast) fast=(--fast) ;;
    --tools-only) tools_only=1 ;;
    *) echo "scripts/package.sh: unknown argument $1 (see the comment at its top)" >&2; exit 2 ;;
    esac
    shift
done
case "$profile" in
dev | debug) profile=dev dir=debug ;;
*) dir=$profile ;;
esac

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
say() { echo "scripts/package.sh: $*" >&2; }

if ! cargo deb --version >/dev/null 2>&1; then
    say "installing cargo-deb (cargo install cargo-deb --locked)"
    t=$(now)
    # Its own temporary target directory, not the project's. 3.x: later
    # majors may refuse the dev profile (the lab test's package).
    env -u CARGO_TARGET_DIR cargo install cargo-deb --version '^3.8' --locked --quiet
    say "cargo-deb installed in $(since "$t") s"
fi
for tool in strip gzip; do
    command -v "$tool" >/dev/null || { say "needs $tool (apt-get install binutils gzip)"; exit 1; }
done
((tools_only)) && exit 0

target=$(cargo metadata --format-version 1 --no-deps --locked |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
out="$target/$dir"

if ((build)); then
    t=$(now)
    # The CLI (also the daemon, under its name) and the generator.
    cargo build --profile "$profile" --locked -p systemd-sparrow -p sparrow-generator --bins
    say "cargo build --profile $profile: $(since "$t") s"
fi
for bin in systemd-sparrow systemd-sparrow-generator; do
    [ -x "$out/$bin" ] || { say "$out/$bin is missing (build it, or drop --no-build)"; exit 1; }
done

t=$(now)
# Man pages and completions from the command line's own definition.
gen="$out/package"
rm -rf "$gen"
mkdir -p "$gen/man" "$gen/completions"
"$out/systemd-sparrow" man --output "$gen/man"
gzip -9n "$gen"/man/*.1
"$out/systemd-sparrow" completions bash >"$gen/completions/systemd-sparrow"
"$out/systemd-sparrow" completions zsh >"$gen/completions/_systemd-sparrow"
"$out/systemd-sparrow" completions fish >"$gen/completions/systemd-sparrow.fish"

# Release binaries are stripped by the profile; others here (--strip copies
# them stripped into the package, the built files stay as they are).
strip=()
debs="$target/debian"
if [ "$profile" != release ]; then
    strip=(--strip)
    debs="$debs/$profile"
fi
mkdir -p "$debs"
deb=$(cargo deb -p systemd-sparrow --no-build --profile "$profile" "${strip[@]}" "${fast[@]}" \
    --output "$debs/")
say "cargo deb: $(since "$t") s"
echo "$deb"
