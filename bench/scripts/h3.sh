#!/usr/bin/env bash
# HTTP/3 next to TLS over TCP: server CPU per request for keep-alive requests at a fixed rate,
# both protocols in the same run, rounds interleaved (examples/h3bench.rs does the work).
#
#   bash bench/scripts/h3.sh [--runs 5] [--seconds 5] [--rate 2000] [--conns 10] [--out DIR]
#
# bext runs in-process with one worker pinned to CPU 0 (bext pins worker i to CPU i) serving a 100-byte
# `respond` body on one TLS listener that also serves HTTP/3; the clients (quinn's h3 client on
# tokio, rustls over TCP) run in the same process, pinned to CPU 1 (CLIENT_CPU), so the worker
# has CPU 0 to itself.
# The figure is the worker thread's CPU time (schedstat, ns) over the measured window divided
# by the responses in it; handshakes are made before the window. BEXT_DRIVER=epoll|io-uring
# chooses the driver (default: bext's).
#
# Writes DIR/results.tsv (protocol, run, requests, errors, cpu_ms, us_per_request) and prints
# the medians and the h3/tls ratio (target: at most 1.5).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
RUNS=5
SECONDS_PER_RUN=5
RATE=2000
CONNS=10
OUT=""
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) RUNS=$2; shift 2 ;;
        --seconds) SECONDS_PER_RUN=$2; shift 2 ;;
        --rate) RATE=$2; shift 2 ;;
        --conns) CONNS=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "h3.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
CPUS=${CPUS:-0,1}
CLIENT_CPU=${CLIENT_CPU:-1}
OUT=$(realpath -m "${OUT:-$ROOT/bench/results/h3-$(date -u +%Y%m%dT%H%M%SZ)}")
mkdir -p "$OUT"

cd "$ROOT"
cargo build --release --example h3bench
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
taskset -c "$CPUS" "$TARGET_DIR/release/examples/h3bench" \
    --runs "$RUNS" --seconds "$SECONDS_PER_RUN" --rate "$RATE" --conns "$CONNS" \
    --client-cpu "$CLIENT_CPU" \
    | tee "$OUT/results.tsv"
echo "results: $OUT/results.tsv"
