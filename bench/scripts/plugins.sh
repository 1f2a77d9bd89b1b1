#!/usr/bin/env bash
# WASM plugin costs through `bext run`: the CPU a proxy-wasm plugin adds to a proxied
# request, side by side in one run.
#
#   bash bench/scripts/plugins.sh [--runs 5] [--duration 6] [--rate 10000] [--body-size 1024]
#                                 [--driver io-uring|epoll] [--out DIR] [--host]
#                                 [--together | --interleave]
#
# Three configurations of the same proxied route (bench/peers/bext-plugin-*.bext):
#   none     no plugin
#   noop     plugins/examples/noop: a stream context per request, every callback Continue
#            (bar: at most 1.5 µs more than none)
#   header   plugins/examples/add_header setting one response header (bar: at most 3 µs more)
#   noop-min, header-min (only when named in CONFIGS) the same from hand-written modules
# bext runs one worker pinned to core 0 (SERVER_CPU); the load generator and the built-in
# origin share core 1 (LOAD_CPU). Runs alternate none noop header, none noop header, … (the
# order rotates each run), each a fresh server, in two shapes: a fixed offered rate (open
# loop, 50 connections) and saturation (closed loop, 64 in flight). The figure is the
# server's utime+stime (/proc/PID/stat) over the measured window divided by the requests
# completed: CPU µs per request. Writes DIR/results.tsv and DIR/summary.txt (medians, min–max,
# and each plugin's difference from none).
#
# --together runs the three servers at once instead, all pinned to core 0, and loads them at
# the same moment (each with its own load generator at the same rate, or each saturated): the
# host's drift then moves all three alike. The figure is each server's on-CPU time, in
# nanoseconds from /proc/PID/task/*/schedstat (not clock ticks), over the same window, divided
# by its responses. Writes DIR/together.tsv and adds its medians to DIR/summary.txt.
#
# --interleave starts the servers at once too (all pinned to core 0, idle while not loaded),
# but loads one at a time, in turns of DURATION seconds: none noop header, none noop header, …
# (the order rotating each run). Each server then has the core to itself while it is measured,
# as a proxy has in production, and drift over minutes moves all alike: a run's differences
# are taken within the run. The figure is on-CPU time from schedstat, as with --together.
# Writes DIR/interleave.tsv; the summary adds the median of the per-run differences.
#
# --host also runs plugins/benches/host.rs (criterion: a whole request's callbacks on a warm
# instance, and the budget mechanisms), into DIR/host.tsv.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
RUNS=5
DURATION=6
RATE=10000
BODY=1024
DRIVER=io-uring
OUT=""
HOST=0
TOGETHER=0
INTERLEAVE=0
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) RUNS=$2; shift 2 ;;
        --duration) DURATION=$2; shift 2 ;;
        --rate) RATE=$2; shift 2 ;;
        --body-size) BODY=$2; shift 2 ;;
        --driver) DRIVER=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        --host) HOST=1; shift ;;
        --together) TOGETHER=1; shift ;;
        --interleave) INTERLEAVE=1; shift ;;
        -h|--help) sed -n '2,37p' "$0"; exit 0 ;;
        *) echo "plugins.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BEXT=${BEXT:-$TARGET_DIR/release/bext}
BENCH=${BENCH:-$TARGET_DIR/release/bext-bench}
OUT=$(realpath -m "${OUT:-$ROOT/bench/results/$(date -u +%Y%m%d)-plugins}")
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
LISTEN=127.0.0.1:${PORT:-18000}
ORIGIN=127.0.0.1:${ORIGIN_PORT:-18080}
mkdir -p "$OUT"
for f in "$BEXT" "$BENCH"; do
    [ -x "$f" ] || { echo "plugins.sh: build first: cargo build --release -p bext -p bext-bench" >&2; exit 1; }
done

# The plugins, built for wasm32-wasip1 (as the tests build them).
PLUGINS=$TARGET_DIR/plugin-examples
CARGO_TARGET_DIR=$PLUGINS cargo build --release --target wasm32-wasip1 \
    --manifest-path "$ROOT/plugins/examples/Cargo.toml" >&2
PLUGINS=$PLUGINS/wasm32-wasip1/release

# CONFIGS may add noop-min and header-min: the same callbacks from a module written without the
# SDK (bench/peers/plugins/*.wat), what the host alone costs.
CONFIGS=${CONFIGS:-"none noop header"}
# In --together and --interleave modes each configuration listens on its own port: none on PORT, noop on PORT+1,
# header on PORT+2.
i=0
for c in $CONFIGS; do
    listen=$LISTEN
    [ "$TOGETHER" = 1 ] || [ "$INTERLEAVE" = 1 ] && listen=${LISTEN%:*}:$((${LISTEN##*:} + i))
    sed -e "s|@LISTEN@|$listen|g" -e "s|@ORIGIN@|$ORIGIN|g" -e "s|@PLUGINS@|$PLUGINS|g" \
        -e "s|@PEERS@|$ROOT/bench/peers|g" "$ROOT/bench/peers/bext-plugin-$c.bext" >"$OUT/$c.bext"
    i=$((i + 1))
done
{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "commit: $(git -C "$ROOT" rev-parse --short HEAD)"
    echo "driver: $DRIVER; runs: $RUNS; duration: ${DURATION}s; rate: $RATE/s; body: $BODY bytes"
    echo "server core: $SERVER_CPU; load and origin core: $LOAD_CPU"
    uname -r
} >"$OUT/env.txt"

taskset -c "$LOAD_CPU" "$BENCH" origin --listen "$ORIGIN" --body-size "$BODY" 2>/dev/null &
ORIGIN_PID=$!
SERVER=""
cleanup() {
    [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null || true
    kill "$ORIGIN_PID" 2>/dev/null || true
}
trap cleanup EXIT

# On-CPU nanoseconds of a process, all its threads (the scheduler's own account, exact).
cpu_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { print s + 0 }'; }
# The load generator's arguments for a shape, into `args`.
shape_args() {
    if [ "$1" = fixed ]; then args=(--connections 50 --rate "$RATE"); else args=(--connections 64); fi
}
# The configurations in the order of run N: rotated by one each run, so no configuration
# always runs first or last.
rotated() {
    local n=$1
    set -- $CONFIGS
    for _ in $(seq 2 "$n"); do set -- "${@:2}" "$1"; done
    echo "$*"
}
# A number of the load generator's JSON report: json FIELD REPORT.
json() { echo "$2" | grep -o "\"$1\":[0-9.]*" | cut -d: -f2; }
# One result line: record FILE CONFIG SHAPE RUN US_PER_REQUEST REPORT.
record() {
    local rps errs
    rps=$(json rps "$6")
    errs=$(json errors_total "$6")
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$2" "$3" "$4" "$5" "$rps" "$errs" >>"$1"
    echo "run $4 $2 $3: $5 µs/request, $rps req/s, $errs errors" >&2
}

if [ "$TOGETHER" = 1 ] || [ "$INTERLEAVE" = 1 ]; then
    declare -A PID URL
    i=0
    for c in $CONFIGS; do
        taskset -c "$SERVER_CPU" "$BEXT" run "$OUT/$c.bext" --workers 1 --no-pin \
            --driver "$DRIVER" >>"$OUT/log" 2>&1 &
        PID[$c]=$!
        URL[$c]=http://${LISTEN%:*}:$((${LISTEN##*:} + i))/
        i=$((i + 1))
        for _ in $(seq 1 100); do
            curl -s -o /dev/null --max-time 1 "${URL[$c]}" && break
            sleep 0.1
        done
    done
    SERVER="${PID[*]}"
    cleanup() {
        kill $SERVER 2>/dev/null || true
        kill "$ORIGIN_PID" 2>/dev/null || true
    }
fi
if [ "$INTERLEAVE" = 1 ]; then
    T=$OUT/interleave.tsv
    printf 'config\tshape\trun\tus_per_request\trps\terrors\n' >"$T"
    for run in $(seq 1 "$RUNS"); do
        order=$(rotated "$run")
        for shape in fixed saturation; do
            shape_args "$shape"
            for c in $order; do
                # A short warm-up of this server's caches after the others' turns.
                taskset -c "$LOAD_CPU" "$BENCH" load "${URL[$c]}" "${args[@]}" --duration 0.5 \
                    --warmup 0 >/dev/null
                a=$(cpu_ns "${PID[$c]}")
                r=$(taskset -c "$LOAD_CPU" "$BENCH" load "${URL[$c]}" "${args[@]}" \
                    --duration "$DURATION" --warmup 0 --json)
                b=$(cpu_ns "${PID[$c]}")
                n=$(json requests "$r")
                us=$(awk -v a="$a" -v b="$b" -v n="$n" 'BEGIN { printf "%.3f", (b - a) / 1000 / n }')
                record "$T" "$c" "$shape" "$run" "$us" "$r"
            done
        done
    done
    RESULTS=$T
elif [ "$TOGETHER" = 1 ]; then
    T=$OUT/together.tsv
    printf 'config\tshape\trun\tus_per_request\trps\terrors\n' >"$T"
    for run in $(seq 1 "$RUNS"); do
        for shape in fixed saturation; do
            shape_args "$shape"
            # Warm every server, then measure them all over the same window.
            LOADS=()
            for c in $CONFIGS; do
                taskset -c "$LOAD_CPU" "$BENCH" load "${URL[$c]}" "${args[@]}" --duration 1 \
                    --warmup 0 >/dev/null &
                LOADS+=($!)
            done
            wait "${LOADS[@]}"
            declare -A A
            for c in $CONFIGS; do A[$c]=$(cpu_ns "${PID[$c]}"); done
            LOADS=()
            for c in $CONFIGS; do
                taskset -c "$LOAD_CPU" "$BENCH" load "${URL[$c]}" "${args[@]}" \
                    --duration "$DURATION" --warmup 0 --json >"$OUT/.load-$c" &
                LOADS+=($!)
            done
            wait "${LOADS[@]}"
            for c in $CONFIGS; do
                b=$(cpu_ns "${PID[$c]}")
                r=$(cat "$OUT/.load-$c")
                n=$(json requests "$r")
                us=$(awk -v a="${A[$c]}" -v b="$b" -v n="$n" 'BEGIN { printf "%.3f", (b - a) / 1000 / n }')
                record "$T" "$c" "$shape" "$run" "$us" "$r"
            done
            rm -f "$OUT"/.load-*
        done
    done
    RESULTS=$T
else
RESULTS=$OUT/results.tsv
printf 'config\tshape\trun\tus_per_request\trps\terrors\n' >"$RESULTS"
for run in $(seq 1 "$RUNS"); do
    order=$(rotated "$run")
    for c in $order; do
        taskset -c "$SERVER_CPU" "$BEXT" run "$OUT/$c.bext" --workers 1 --no-pin \
            --driver "$DRIVER" >>"$OUT/log" 2>&1 &
        SERVER=$!
        for _ in $(seq 1 100); do
            curl -s -o /dev/null --max-time 1 "http://$LISTEN/" && break
            sleep 0.1
        done
        for shape in fixed saturation; do
            shape_args "$shape"
            r=$(taskset -c "$LOAD_CPU" "$BENCH" load "http://$LISTEN/" "${args[@]}" \
                --duration "$DURATION" --warmup 1 --cpu-pid "$SERVER" --json)
            record "$RESULTS" "$c" "$shape" "$run" "$(json us_per_request "$r")" "$r"
        done
        kill "$SERVER"
        wait "$SERVER" 2>/dev/null || true
        SERVER=""
        sleep 0.3
    done
done

fi

awk -F'\t' 'NR > 1 { v[$2 "\t" $1] = v[$2 "\t" $1] " " $4 }
    END {
        for (k in v) {
            n = split(v[k], a, " "); asort(a)
            med[k] = (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
            printf "%s\tmedian %.2f µs (%.2f–%.2f, %d runs)\n", k, med[k], a[1], a[n], n
        }
        for (k in med) {
            split(k, p, "\t")
            if (p[2] == "none") continue
            bar = (p[2] ~ /^noop/) ? 1.5 : 3.0
            d = med[k] - med[p[1] "\tnone"]
            printf "%s\t%s - none = %+.2f µs (bar %.1f µs: %s)\n", p[1], p[2], d, bar, (d <= bar) ? "met" : "missed"
        }
    }' "$RESULTS" | sort | tee "$OUT/summary.txt"
# The same differences taken within each run (config minus none of the same run), then their
# median: what drift between runs does not move.
awk -F'\t' 'NR > 1 { us[$1 "\t" $2 "\t" $3] = $4; k[$2 "\t" $1] = 1; runs[$3] = 1 }
    END {
        for (key in k) {
            split(key, p, "\t")
            if (p[2] == "none") continue
            s = ""; n = 0
            for (r in runs) {
                a = us[p[2] "\t" p[1] "\t" r]; b = us["none\t" p[1] "\t" r]
                if (a != "" && b != "") { s = s " " (a - b); n++ }
            }
            if (n == 0) continue
            split(s, d, " "); asort(d)
            m = (n % 2) ? d[(n + 1) / 2] : (d[n / 2] + d[n / 2 + 1]) / 2
            printf "%s\t%s - none, per run: median %+.2f µs (%+.2f to %+.2f, %d runs)\n", p[1], p[2], m, d[1], d[n], n
        }
    }' "$RESULTS" | sort | tee -a "$OUT/summary.txt"

if [ "$HOST" = 1 ]; then
    cd "$ROOT"
    printf 'run\tbenchmark\tns\n' >"$OUT/host.tsv"
    for run in $(seq 1 "$RUNS"); do
        # bencher lines: "test request/noop ... bench:   812 ns/iter (+/- 12)"
        taskset -c "$SERVER_CPU" cargo bench -p bext-plugins --bench host -- \
            --output-format bencher --noplot 2>/dev/null |
            awk -v run="$run" '/^test / { n = $5; gsub(",", "", n); print run "\t" $2 "\t" n }' \
            >>"$OUT/host.tsv"
    done
fi
echo "results in $OUT" >&2
