#!/usr/bin/env bash
# Two bext configurations side by side: the CPU a feature adds to a request.
#
#   bash bench/scripts/ab.sh [--runs 5] [--duration 6] [--rate 10000] [--body-size 1024]
#                            [--path /] [--driver io-uring|epoll] [--out DIR] A.bext B.bext
#
# Each configuration is a `.bext` file whose listener is @LISTEN@ and whose upstream server is
# @ORIGIN@ (filled in here). bext runs one worker pinned to core 0; the load generator and the
# built-in origin (a `--body-size` byte answer) share core 1. Runs alternate A B A B …, each a
# fresh server, in two shapes: a fixed offered rate (`--rate`, open loop, 50 connections) and
# saturation (closed loop, 64 requests in flight). The figure is the server's utime+stime over
# the measured window divided by the requests completed: CPU µs per request. Prints the
# medians and min–max per configuration and shape, and B ÷ A.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
RUNS=5
DURATION=6
RATE=10000
BODY=1024
LOAD_PATH=/
DRIVER=io-uring
OUT=""
while [ $# -gt 2 ]; do
    case "$1" in
        --runs) RUNS=$2; shift 2 ;;
        --duration) DURATION=$2; shift 2 ;;
        --rate) RATE=$2; shift 2 ;;
        --body-size) BODY=$2; shift 2 ;;
        --path) LOAD_PATH=$2; shift 2 ;;
        --driver) DRIVER=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        *) echo "ab.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
[ $# -eq 2 ] || { sed -n '2,13p' "$0"; exit 2; }
A=$1 B=$2
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BEXT=${BEXT:-$TARGET_DIR/release/bext}
BENCH=${BENCH:-$TARGET_DIR/release/bext-bench}
OUT=$(realpath -m "${OUT:-$ROOT/bench/results/ab-$(date -u +%Y%m%dT%H%M%SZ)}")
LISTEN=127.0.0.1:${PORT:-18000}
ORIGIN=127.0.0.1:${ORIGIN_PORT:-18080}
mkdir -p "$OUT"
for f in "$BEXT" "$BENCH"; do
    [ -x "$f" ] || { echo "ab.sh: build first: cargo build --release -p bext -p bext-bench" >&2; exit 1; }
done
sed -e "s|@LISTEN@|$LISTEN|g" -e "s|@ORIGIN@|$ORIGIN|g" "$A" >"$OUT/a.bext"
sed -e "s|@LISTEN@|$LISTEN|g" -e "s|@ORIGIN@|$ORIGIN|g" "$B" >"$OUT/b.bext"
cp "$A" "$OUT/a.source.bext"
cp "$B" "$OUT/b.source.bext"

taskset -c 1 "$BENCH" origin --listen "$ORIGIN" --body-size "$BODY" 2>/dev/null &
ORIGIN_PID=$!
SERVER=""
cleanup() {
    [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null || true
    kill "$ORIGIN_PID" 2>/dev/null || true
}
trap cleanup EXIT

RESULTS=$OUT/results.tsv
printf 'config\tshape\trun\tus_per_request\trps\terrors\n' >"$RESULTS"
for run in $(seq 1 "$RUNS"); do
    order="a b"
    [ $((run % 2)) -eq 0 ] && order="b a"
    for c in $order; do
        taskset -c 0 "$BEXT" run "$OUT/$c.bext" --workers 1 --no-pin --driver "$DRIVER" \
            >>"$OUT/log" 2>&1 &
        SERVER=$!
        for _ in $(seq 1 50); do
            curl -s -o /dev/null --max-time 1 "http://$LISTEN$LOAD_PATH" && break
            sleep 0.1
        done
        for shape in fixed saturation; do
            if [ "$shape" = fixed ]; then
                args=(--connections 50 --rate "$RATE")
            else
                args=(--connections 64)
            fi
            r=$(taskset -c 1 "$BENCH" load "http://$LISTEN$LOAD_PATH" "${args[@]}" \
                --duration "$DURATION" --warmup 1 --cpu-pid "$SERVER" --json)
            us=$(echo "$r" | grep -o '"us_per_request":[0-9.]*' | cut -d: -f2)
            rps=$(echo "$r" | grep -o '"rps":[0-9.]*' | cut -d: -f2)
            errs=$(echo "$r" | grep -o '"errors_total":[0-9]*' | cut -d: -f2)
            printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$c" "$shape" "$run" "$us" "$rps" "$errs" >>"$RESULTS"
        done
        kill "$SERVER"
        wait "$SERVER" 2>/dev/null || true
        SERVER=""
        sleep 0.3
    done
done

awk -F'\t' 'NR > 1 { v[$2 "\t" $1] = v[$2 "\t" $1] " " $4 }
    END {
        for (k in v) {
            n = split(v[k], a, " "); asort(a)
            med[k] = a[int((n + 1) / 2)]
            printf "%s\tmedian %.2f µs (%.2f–%.2f)\n", k, med[k], a[1], a[n]
        }
        for (s in med) { split(s, p, "\t"); shapes[p[1]] = 1 }
        for (sh in shapes) printf "%s\tB ÷ A = %.3f\n", sh, med[sh "\tb"] / med[sh "\ta"]
    }' "$RESULTS" | sort | tee "$OUT/summary.txt"
echo "results in $OUT"
