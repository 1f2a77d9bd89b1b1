#!/usr/bin/env bash
# Profiles one server under the open-loop load of one scenario, pinned as compare.sh pins it.
#
#   bash bench/scripts/profile.sh S1|S2|S3|S4 bext-epoll|bext-io-uring|nginx|haproxy|floor|floor-bare RATE [SECONDS]
#
# Records `perf record -g` on the server's processes for SECONDS (default 8) while the load
# generator sends RATE req/s, then prints the top symbols (self time) and the user/kernel
# split. Output: bench/results/profile-<scenario>-<server>.{data,txt}.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SCENARIO=$1 SERVER=$2 RATE=$3 SECS=${4:-8}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BEXT=${BEXT:-$TARGET_DIR/release/bext}
BENCH=${BENCH:-$TARGET_DIR/release/bext-bench}
OUT=$ROOT/bench/results
mkdir -p "$OUT/profile-conf" "$OUT/profile-nginx"
LISTEN=127.0.0.1:18000 ORIGIN=127.0.0.1:18080
BODY100=$(printf 'x%.0s' $(seq 100))
case $SCENARIO in S1) MODE=respond; BODY=100 ;; S3) MODE=proxy; BODY=65536 ;; *) MODE=proxy; BODY=1024 ;; esac
FLAGS=""; [ "$SCENARIO" = S4 ] && FLAGS=--new-connection-per-request
render() { sed -e "s|@LISTEN@|$LISTEN|g" -e "s|@ORIGIN@|$ORIGIN|g" -e "s|@BODY@|$BODY100|g" \
    -e "s|@PREFIX@|$OUT/profile-nginx|g" "$1" >"$2"; }
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
if [ "$MODE" = proxy ]; then
    taskset -c 1 "$BENCH" origin --listen "$ORIGIN" --body-size "$BODY" 2>/dev/null & PIDS+=($!)
fi
case "$SERVER:$MODE" in
    floor:respond) taskset -c 0 "$BENCH" floor-respond --listen "$LISTEN" --body-size 100 2>/dev/null & ;;
    floor:proxy) taskset -c 0 "$BENCH" floor-relay --listen "$LISTEN" --to "$ORIGIN" 2>/dev/null & ;;
    floor-bare:respond) taskset -c 0 "$BENCH" floor-bare --listen "$LISTEN" --body-size 100 2>/dev/null & ;;
    bext-*:respond) taskset -c 0 "$BEXT" respond --listen "$LISTEN" --body "$BODY100" --workers 1 --no-pin --driver "${SERVER#bext-}" >/dev/null 2>&1 & ;;
    bext-*:proxy) taskset -c 0 "$BEXT" proxy --listen "$LISTEN" --to "$ORIGIN" --workers 1 --no-pin --driver "${SERVER#bext-}" >/dev/null 2>&1 & ;;
    nginx:*) render "$ROOT/bench/peers/nginx-$MODE.conf" "$OUT/profile-conf/nginx.conf"
        taskset -c 0 nginx -p "$OUT/profile-nginx" -c "$OUT/profile-conf/nginx.conf" 2>/dev/null & ;;
    haproxy:*) render "$ROOT/bench/peers/haproxy-$MODE.cfg" "$OUT/profile-conf/haproxy.cfg"
        taskset -c 0 haproxy -db -f "$OUT/profile-conf/haproxy.cfg" >/dev/null 2>&1 & ;;
    *) echo "profile.sh: unknown server $SERVER" >&2; exit 2 ;;
esac
SERVER_PID=$!; PIDS=("$SERVER_PID" "${PIDS[@]}")
for _ in $(seq 1 100); do curl -s -o /dev/null --max-time 1 "http://$LISTEN/" && break; sleep 0.1; done
PERF_PIDS=$SERVER_PID
for c in $(pgrep -P "$SERVER_PID" || true); do PERF_PIDS="$PERF_PIDS,$c"; done
# shellcheck disable=SC2086
taskset -c 1 "$BENCH" load "http://$LISTEN/" --rate "$RATE" --duration $((SECS + 2)) --warmup 1 $FLAGS \
    --cpu-pid "$PERF_PIDS" >"$OUT/profile-$SCENARIO-$SERVER.load.txt" &
LOAD=$!
sleep 1.5
perf record -q -F 1999 -g -p "$PERF_PIDS" -o "$OUT/profile-$SCENARIO-$SERVER.data" -- sleep "$SECS" 2>/dev/null
wait $LOAD
{
    cat "$OUT/profile-$SCENARIO-$SERVER.load.txt"
    echo
    echo "## samples by binary (kernel, the server, libc, vdso)"
    perf report -i "$OUT/profile-$SCENARIO-$SERVER.data" --no-children --sort dso --stdio -g none 2>/dev/null \
        | grep -E '^ +[0-9]' | head -6 || true
    echo
    echo "## top symbols (self)"
    perf report -i "$OUT/profile-$SCENARIO-$SERVER.data" --no-children --sort dso,symbol --stdio -g none 2>/dev/null \
        | grep -E '^ +[0-9]' | head -40
} | tee "$OUT/profile-$SCENARIO-$SERVER.txt"
