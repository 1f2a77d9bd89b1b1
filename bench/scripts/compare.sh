#!/usr/bin/env bash
# Side-by-side benchmark of bext (both drivers), nginx, HAProxy and the floors.
#
#   bash bench/scripts/compare.sh [--runs 5] [--duration 10] [--warmup 2]
#                                 [--scenarios "S1 S2 S3 S4 S6 F1 F2 Z1 Z2 Z3 C1 C2"]
#                                 [--idle-conns 10000]
#                                 [--fraction 0.5] [--out DIR]
#
# The server under test is pinned to core 0 (taskset -c 0); the load generator and the origin
# share core 1. Every scenario runs its servers interleaved (A B C … A B C …, the starting
# server rotating each round), each freshly started, at the SAME open-loop offered rate: the
# rate is fixed once per scenario as --fraction of the lowest closed-loop throughput of all its
# servers (or taken from RATE_S1 … RATE_S4 in the environment). For each run the generator
# reads the server's utime+stime from /proc/PID/stat at the start and end of the measured
# window (warm-up excluded) and divides by the requests completed: CPU µs per request.
# Errors are counted and shown, never dropped.
#
# SATURATE=1 in the environment runs every measured run closed loop instead (the generator
# keeps CONNS requests in flight, e.g. CONNS=64, like `wrk -t1 -c64`): the saturation shape.
#
# Scenarios: S1 a fixed 100-byte response; S2 proxied 1 KiB; S3 proxied 64 KiB; S4 a new
# connection per request; S6 idle connections (memory); F1/F2 a static 1 KiB / 1 MiB file;
# Z1 a 64 KiB HTML file compressed with gzip at nginx's default level (1); Z2/Z3 the same
# with zstd / brotli (bext only: Debian's nginx has neither); C1/C2 a cached 1 KiB / 64 KiB
# response (cache hits: bext's cache, nginx's proxy_cache, Varnish with its defaults and
# malloc storage), the origin's answers carrying no freshness, each cache keeping them 10 min.
#
# Writes DIR/results.jsonl (one JSON report per run), DIR/results.md (tables and acceptance
# bars), DIR/machine.txt, DIR/headers/ (each server's response head) and DIR/log.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
RUNS=5
DURATION=10
WARMUP=2
SCENARIOS="S1 S2 S3 S4 S6"
IDLE_CONNS=10000
FRACTION=0.5
CONNS=${CONNS:-50}
OUT=""
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) RUNS=$2; shift 2 ;;
        --duration) DURATION=$2; shift 2 ;;
        --warmup) WARMUP=$2; shift 2 ;;
        --scenarios) SCENARIOS=$2; shift 2 ;;
        --idle-conns) IDLE_CONNS=$2; shift 2 ;;
        --fraction) FRACTION=$2; shift 2 ;;
        --connections) CONNS=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "compare.sh: unknown option $1" >&2; exit 2 ;;
    esac
done

TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BEXT=${BEXT:-$TARGET_DIR/release/bext}
BENCH=${BENCH:-$TARGET_DIR/release/bext-bench}
# An earlier bext binary to compare against in the same run (peers prev-epoll, prev-io-uring).
BEXT_PREV=${BEXT_PREV:-}
PEERS=${PEERS:-"floor floor-bare bext-epoll bext-io-uring nginx haproxy"}
OUT=${OUT:-$ROOT/bench/results/$(date -u +%Y%m%dT%H%M%SZ)}
# nginx resolves paths against its prefix: the output folder must be absolute.
OUT=$(realpath -m "$OUT")
PROXY_CPU=${PROXY_CPU:-0}
GEN_CPU=${GEN_CPU:-1}
PORT=${PORT:-18000}
ORIGIN_PORT=${ORIGIN_PORT:-18080}
LISTEN=127.0.0.1:$PORT
ORIGIN=127.0.0.1:$ORIGIN_PORT

if [ ! -x "$BENCH" ]; then
    echo "compare.sh: building bext-bench in release ($TARGET_DIR)" >&2
    (cd "$ROOT" && cargo build --release -p bext-bench --bins)
fi
case " $PEERS " in
    *" bext-"*)
        if [ ! -x "$BEXT" ]; then
            echo "compare.sh: building bext in release ($TARGET_DIR)" >&2
            (cd "$ROOT" && cargo build --release --bin bext)
        fi ;;
esac
case " $PEERS " in
    *" prev-"*)
        [ -x "$BEXT_PREV" ] || { echo "compare.sh: peers prev-* need BEXT_PREV=/path/to/an/earlier/bext" >&2; exit 1; } ;;
esac
for tool in taskset nginx haproxy curl; do
    command -v "$tool" >/dev/null || { echo "compare.sh: $tool missing: run bench/scripts/setup.sh" >&2; exit 1; }
done
# 10,000 idle connections need that many descriptors in the server and in the generator.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((IDLE_CONNS + 1000)) ]; then
    echo "compare.sh: ulimit -n is $(ulimit -n), below --idle-conns $IDLE_CONNS + 1000" >&2
    exit 1
fi

mkdir -p "$OUT/conf" "$OUT/headers" "$OUT/nginx"
RESULTS=$OUT/results.jsonl
LOG=$OUT/log
: >"$RESULTS"
: >"$LOG"
log() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$LOG" >&2; }

{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "nproc: $(nproc)"
    echo "kernel: $(uname -r)"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
    echo "nginx: $(nginx -v 2>&1 | sed 's/.*: //')"
    echo "haproxy: $(haproxy -v 2>&1 | head -1)"
    echo "bext: commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)," \
        "binary built $(date -u -r "$BEXT" +%H:%M:%SZ 2>/dev/null || echo never)," \
        "uncommitted engine changes: $(git -C "$ROOT" status --porcelain -- engine http1 src 2>/dev/null | wc -l) file(s)"
    echo "runs: $RUNS, warm-up ${WARMUP}s, measured ${DURATION}s, $CONNS connections"
    echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$OUT/machine.txt"
cat "$OUT/machine.txt" >&2

BODY100=$(printf 'x%.0s' $(seq 100))

# Scenario table: kind (respond|proxy|idle), origin body bytes, generator flags.
scenario_kind() { case $1 in S1) echo respond ;; S2|S3|S4) echo proxy ;; S6) echo idle ;; F1|F2|Z1|Z2|Z3) echo file ;; C1|C2) echo cache ;; esac; }
# File scenarios: the path asked for, and the Accept-Encoding sent.
scenario_path() { case $1 in F1) echo /f1k.bin ;; F2) echo /f1m.bin ;; Z1|Z2|Z3) echo /page64k.html ;; *) echo / ;; esac; }
scenario_encoding() { case $1 in Z1) echo gzip ;; Z2) echo zstd ;; Z3) echo br ;; *) echo "" ;; esac; }
scenario_body() { case $1 in S1) echo 100 ;; S3|C2) echo 65536 ;; *) echo 1024 ;; esac; }
scenario_flags() { case $1 in S4) echo "--new-connection-per-request" ;; *) echo "" ;; esac; }
scenario_peers() {
    case $1 in
        # The relay floor opens an origin connection per client connection: with a new client
        # connection per request it is no floor of a keep-alive proxy, so S4 has none; S6
        # measures memory, where a floor says nothing about bext.
        S4|S6) echo "$PEERS" | tr ' ' '\n' | grep -v '^floor' | tr '\n' ' ' ;;
        # The bare floor is a responder only.
        S2|S3) echo "$PEERS" | tr ' ' '\n' | grep -v '^floor-bare$' | tr '\n' ' ' ;;
        # Files: servers that serve files (HAProxy does not); zstd and brotli: bext only
        # (Debian's nginx has neither).
        F1|F2|Z1) echo "$PEERS" | tr ' ' '\n' | grep -E '^(bext-|prev-|nginx$)' | grep -v '^prev-' | tr '\n' ' ' ;;
        Z2|Z3) echo "$PEERS" | tr ' ' '\n' | grep '^bext-' | tr '\n' ' ' ;;
        # Caches: bext, nginx and Varnish.
        C1|C2) echo "$(echo "$PEERS" | tr ' ' '\n' | grep -E '^(bext-|nginx$)' | tr '\n' ' ')varnish" ;;
        *) echo "$PEERS" ;;
    esac
}
# floor-bare is shown for reference (the least an epoll server without a runtime spends); the
# floor the bars use is the runtime's.
peer_role() { case $1 in floor) echo floor ;; floor-bare) echo reference ;; bext-*) echo bext ;; *) echo peer ;; esac; }
peer_label() {
    case $1 in
        floor) if [ "$2" = respond ]; then echo floor-respond; else echo floor-relay; fi ;;
        *) echo "$1" ;;
    esac
}

render() { # template output
    sed -e "s|@LISTEN@|$LISTEN|g" -e "s|@ORIGIN@|$ORIGIN|g" -e "s|@BODY@|$BODY100|g" \
        -e "s|@PREFIX@|$OUT/nginx|g" -e "s|@WWW@|$OUT/www|g" "$1" >"$2"
}

# The files of the file scenarios: 1 KiB and 1 MiB of incompressible bytes, and 64 KiB of HTML
# (text that compresses like a real page: repeated markup, varied words).
make_www() {
    mkdir -p "$OUT/www"
    head -c 1024 /dev/urandom >"$OUT/www/f1k.bin"
    head -c 1048576 /dev/urandom >"$OUT/www/f1m.bin"
    python3 - "$OUT/www/page64k.html" <<'PY'
import random, sys
random.seed(7)
words = "proxy request response header body cache stage route upstream server client file".split()
out = ["<!doctype html><html><head><title>page</title></head><body>"]
i = 0
while sum(map(len, out)) < 65536 - 200:
    text = " ".join(random.choice(words) for _ in range(random.randint(8, 24)))
    out.append(f'<div class="row r{i % 7}"><h3>Item {i}</h3><p>{text}.</p></div>\n')
    i += 1
out.append("</body></html>\n")
data = "".join(out)
open(sys.argv[1], "w").write(data[:65536 - 15] + "</body></html>\n")
PY
}

wait_port() {
    for _ in $(seq 1 100); do
        if curl -s -o /dev/null --max-time 1 "http://$LISTEN/"; then return 0; fi
        sleep 0.1
    done
    log "server on $LISTEN did not answer"
    return 1
}

SERVER_PID=""
CPU_PIDS=""
# start_server PEER KIND: starts it pinned to PROXY_CPU, sets SERVER_PID and CPU_PIDS.
start_server() {
    local peer=$1 kind=$2 mode=$kind
    [ "$kind" = idle ] && mode=proxy
    case "$peer:$mode" in
        floor:respond) taskset -c "$PROXY_CPU" "$BENCH" floor-respond --listen "$LISTEN" --body-size 100 2>>"$LOG" & ;;
        floor:proxy) taskset -c "$PROXY_CPU" "$BENCH" floor-relay --listen "$LISTEN" --to "$ORIGIN" 2>>"$LOG" & ;;
        floor-bare:respond) taskset -c "$PROXY_CPU" "$BENCH" floor-bare --listen "$LISTEN" --body-size 100 2>>"$LOG" & ;;
        bext-*:respond)
            taskset -c "$PROXY_CPU" "$BEXT" respond --listen "$LISTEN" --body "$BODY100" --workers 1 \
                --no-pin --driver "${peer#bext-}" >>"$LOG" 2>&1 & ;;
        bext-*:file)
            render "$ROOT/bench/peers/bext-file.bext" "$OUT/conf/bext-file.bext"
            taskset -c "$PROXY_CPU" "$BEXT" run "$OUT/conf/bext-file.bext" --workers 1 \
                --no-pin --driver "${peer#bext-}" >>"$LOG" 2>&1 & ;;
        bext-*:cache)
            render "$ROOT/bench/peers/bext-cache.bext" "$OUT/conf/bext-cache.bext"
            taskset -c "$PROXY_CPU" "$BEXT" run "$OUT/conf/bext-cache.bext" --workers 1 \
                --no-pin --driver "${peer#bext-}" >>"$LOG" 2>&1 & ;;
        varnish:cache)
            # In the foreground (-F): the manager process, whose child serves (both counted).
            rm -rf "$OUT/varnish"
            taskset -c "$PROXY_CPU" varnishd -F -n "$OUT/varnish" -a "$LISTEN" -b "$ORIGIN" \
                -s malloc,256m >>"$LOG" 2>&1 & ;;
        bext-*:proxy)
            taskset -c "$PROXY_CPU" "$BEXT" proxy --listen "$LISTEN" --to "$ORIGIN" --workers 1 \
                --no-pin --driver "${peer#bext-}" >>"$LOG" 2>&1 & ;;
        prev-*:respond)
            taskset -c "$PROXY_CPU" "$BEXT_PREV" respond --listen "$LISTEN" --body "$BODY100" --workers 1 \
                --no-pin --driver "${peer#prev-}" >>"$LOG" 2>&1 & ;;
        prev-*:proxy)
            taskset -c "$PROXY_CPU" "$BEXT_PREV" proxy --listen "$LISTEN" --to "$ORIGIN" --workers 1 \
                --no-pin --driver "${peer#prev-}" >>"$LOG" 2>&1 & ;;
        nginx:*)
            # Each run starts with an empty cache, as bext's and Varnish's do (in memory): an
            # object left by an earlier scenario under the same key would be served instead.
            [ "$mode" = cache ] && rm -rf "$OUT/nginx/cache"
            render "$ROOT/bench/peers/nginx-$mode.conf" "$OUT/conf/nginx-$mode.conf"
            taskset -c "$PROXY_CPU" nginx -p "$OUT/nginx" -c "$OUT/conf/nginx-$mode.conf" 2>>"$LOG" & ;;
        haproxy:*)
            render "$ROOT/bench/peers/haproxy-$mode.cfg" "$OUT/conf/haproxy-$mode.cfg"
            taskset -c "$PROXY_CPU" haproxy -db -f "$OUT/conf/haproxy-$mode.cfg" >>"$LOG" 2>&1 & ;;
        *) log "unknown server $peer"; return 1 ;;
    esac
    SERVER_PID=$!
    wait_port
    # nginx: the master and its worker(s); everyone else: the one process (all its threads).
    CPU_PIDS=$SERVER_PID
    for child in $(pgrep -P "$SERVER_PID" || true); do CPU_PIDS="$CPU_PIDS,$child"; done
}

stop_server() {
    if [ -n "$SERVER_PID" ]; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=""
    fi
    # A port still held would make the next server fail to bind: wait for it to close.
    for _ in $(seq 1 50); do
        curl -s -o /dev/null --max-time 0.2 "http://$LISTEN/" || return 0
        sleep 0.1
    done
}

ORIGIN_PID=""
start_origin() {
    taskset -c "$GEN_CPU" "$BENCH" origin --listen "$ORIGIN" --body-size "$1" 2>>"$LOG" &
    ORIGIN_PID=$!
    for _ in $(seq 1 50); do
        curl -s -o /dev/null --max-time 1 "http://$ORIGIN/" && return 0
        sleep 0.1
    done
    log "origin did not start"
    return 1
}
stop_origin() {
    [ -n "$ORIGIN_PID" ] && { kill -TERM "$ORIGIN_PID" 2>/dev/null || true; wait "$ORIGIN_PID" 2>/dev/null || true; }
    ORIGIN_PID=""
}
cleanup() { stop_server; stop_origin; }
trap cleanup EXIT

load() { # extra generator arguments…
    local path=${LOAD_PATH:-/}
    if [ -n "${LOAD_ENCODING:-}" ]; then
        taskset -c "$GEN_CPU" "$BENCH" load "http://$LISTEN$path" --connections "$CONNS" \
            --header "Accept-Encoding: $LOAD_ENCODING" "$@"
    else
        taskset -c "$GEN_CPU" "$BENCH" load "http://$LISTEN$path" --connections "$CONNS" "$@"
    fi
}

for scenario in $SCENARIOS; do
    kind=$(scenario_kind "$scenario")
    [ -n "$kind" ] || { log "unknown scenario $scenario"; exit 2; }
    peers=$(scenario_peers "$scenario")
    flags=$(scenario_flags "$scenario")
    log "$scenario ($kind): servers: $peers"
    LOAD_PATH=$(scenario_path "$scenario")
    LOAD_ENCODING=$(scenario_encoding "$scenario")
    if [ "$kind" = file ]; then
        [ -f "$OUT/www/page64k.html" ] || make_www
    elif [ "$kind" != respond ]; then
        start_origin "$(scenario_body "$scenario")"
    fi

    # Record each server's response head, to show what "equivalent" means on the wire.
    for peer in $peers; do
        start_server "$peer" "$kind"
        curl -s -D - -o /dev/null ${LOAD_ENCODING:+-H "Accept-Encoding: $LOAD_ENCODING"} \
            "http://$LISTEN$LOAD_PATH" >"$OUT/headers/$scenario-$(peer_label "$peer" "$kind").txt" || true
        stop_server
    done

    if [ "$kind" = idle ]; then
        round=0
        for run in $(seq 1 "$RUNS"); do
            set -- $peers
            for _ in $(seq 1 $((round % $#))); do set -- "${@:2}" "$1"; done
            round=$((round + 1))
            for peer in "$@"; do
                start_server "$peer" "$kind"
                log "$scenario run $run: $peer (pids $CPU_PIDS): $IDLE_CONNS idle connections"
                taskset -c "$GEN_CPU" "$BENCH" idle "http://$LISTEN/" --connections "$IDLE_CONNS" \
                    --rss-pid "$CPU_PIDS" --json --tag "scenario=$scenario" --tag "peer=$peer" \
                    --tag "role=$(peer_role "$peer")" --tag "run=$run" | tee -a "$RESULTS" >>"$LOG"
                stop_server
            done
        done
        stop_origin
        continue
    fi

    # One offered rate for every server of the scenario (none when saturating: closed loop).
    var=RATE_$scenario
    rate=${!var:-}
    if [ -n "${SATURATE:-}" ]; then
        rate=saturation
    elif [ -z "$rate" ]; then
        lowest=""
        for peer in $peers; do
            start_server "$peer" "$kind"
            # shellcheck disable=SC2086
            rps=$(load --duration 3 --warmup 1 $flags --json | sed 's/.*"rps":\([0-9.]*\).*/\1/')
            log "$scenario calibration: $peer closed loop $rps req/s"
            stop_server
            lowest=$(awk -v a="$rps" -v b="$lowest" 'BEGIN { if (b == "" || a < b) print a; else print b }')
        done
        rate=$(awk -v r="$lowest" -v f="$FRACTION" 'BEGIN { printf "%d", int(r * f / 100) * 100 }')
        [ "$rate" -gt 0 ] || rate=100
    fi
    log "$scenario offered rate: $rate req/s"

    round=0
    for run in $(seq 1 "$RUNS"); do
        set -- $peers
        for _ in $(seq 1 $((round % $#))); do set -- "${@:2}" "$1"; done
        round=$((round + 1))
        for peer in "$@"; do
            start_server "$peer" "$kind"
            log "$scenario run $run: $(peer_label "$peer" "$kind") (pids $CPU_PIDS)"
            # shellcheck disable=SC2086
            if [ "$rate" = saturation ]; then rate_args=(); else rate_args=(--rate "$rate"); fi
            load "${rate_args[@]}" --duration "$DURATION" --warmup "$WARMUP" $flags \
                --cpu-pid "$CPU_PIDS" --json --tag "scenario=$scenario" \
                --tag "peer=$(peer_label "$peer" "$kind")" --tag "role=$(peer_role "$peer")" \
                --tag "run=$run" | tee -a "$RESULTS" >>"$LOG"
            stop_server
        done
    done
    stop_origin
done

"$BENCH" table "$RESULTS" --html "$OUT/results.html" >"$OUT/results.md"
{
    echo
    echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
} >>"$OUT/machine.txt"
cat "$OUT/results.md"
log "results in $OUT"
