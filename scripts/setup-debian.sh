#!/usr/bin/env bash
# Prepare a fresh Debian (or Ubuntu) machine to build and test bext:
#   - build-essential: a C compiler and the linker (a few dependencies compile C parts);
#   - pkg-config: how build scripts find system libraries (none is needed today; kept so that
#     a dependency that looks for one finds the tool);
#   - curl, ca-certificates: to download rustup;
#   - git: to clone the repository;
#   - prometheus: its `promtool`, which the tests run on the admin endpoint's /metrics;
#   - python3, python3-pip and aioquic (from PyPI): the independent HTTP/3 client that
#     tests/h3.rs runs (tests/h3_aioquic.py); without it that one test says it was skipped;
# then the Rust toolchain with rustup (stable, with clippy and rustfmt, as CI uses them, and the
# wasm32-wasip1 target the example plugins are built for).
# Run as a user with sudo, or as root. Safe to run twice.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends \
    build-essential pkg-config curl ca-certificates git prometheus python3 python3-pip
# Debian marks its Python as externally managed; aioquic is a test client only.
python3 -m pip install --user --quiet aioquic 2>/dev/null ||
    python3 -m pip install --user --quiet --break-system-packages aioquic

if ! command -v rustup >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/rustup" ]; then
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs |
        sh -s -- -y --profile minimal --default-toolchain stable
fi
RUSTUP="$(command -v rustup || echo "$HOME/.cargo/bin/rustup")"
"$RUSTUP" component add clippy rustfmt
# The WASM plugins' examples (plugins/examples/) are built for it by the tests.
"$RUSTUP" target add wasm32-wasip1

echo
echo "Done. Open a new shell (or run: . \"\$HOME/.cargo/env\"), then from the repository:"
echo "  cargo run --release -- run      # the demo proxy"
echo "  cargo test --workspace          # the tests"
echo "  cargo install --path .          # the bext command on your PATH"
