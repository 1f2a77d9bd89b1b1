#!/usr/bin/env bash
# Instructions per request of bext binaries under callgrind: a figure that load on the machine
# does not move (CPU time does), for comparing two builds of the same code path.
#
#   bash bench/scripts/instructions.sh [--requests 4000] [--scenarios "S1 S2 F1 X:FILE.bext"] BINARY...
#
# Each binary serves the scenario (S1: `bext respond`, 100-byte body; S2: `bext proxy` to the
# benchmark origin, 1 KiB body; F1: a 1 KiB static file; X:FILE: `bext run FILE`, a
# configuration written as for ab.sh, with @LISTEN@ and @ORIGIN@) on the epoll driver (valgrind does
# not emulate io_uring) with one worker, under callgrind with collection off; collection is
# switched on once the server answers, the load generator sends the requests over 8
# keep-alive connections, and collection is switched off again. Prints instructions per
# request (Ir), which counts user-space work only: the kernel's share is not in it.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BENCH=${BENCH:-$TARGET_DIR/release/bext-bench}
REQUESTS=4000
SCENARIOS="S1 S2"
BINS=()
while [ $# -gt 0 ]; do
    case $1 in
        --requests) REQUESTS=$2; shift 2 ;;
        --scenarios) SCENARIOS=$2; shift 2 ;;
        *) BINS+=("$1"); shift ;;
    esac
done
[ ${#BINS[@]} -gt 0 ] || { echo "usage: $0 [--requests N] [--scenarios \"S1 S2\"] BINARY..." >&2; exit 2; }
LISTEN=127.0.0.1:18200 ORIGIN=127.0.0.1:18280
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
"$BENCH" origin --listen "$ORIGIN" --body-size 1024 2>/dev/null & PIDS+=($!)
mkdir -p "$WORK/www" && head -c 1024 /dev/urandom >"$WORK/www/f1k.bin"
printf 'listen %s\nsite * { route /* { static "%s" } }\n' "$LISTEN" "$WORK/www" >"$WORK/f1.bext"
BODY100=$(printf 'x%.0s' $(seq 100))

wait_up() {
    for _ in $(seq 1 300); do
        curl -s -o /dev/null --max-time 1 "http://$LISTEN$1" && return 0
        sleep 0.1
    done
    echo "server did not answer" >&2
    return 1
}

printf '| scenario | binary | requests | Ir per request |\n|---|---|---:|---:|\n'
for scenario in $SCENARIOS; do
    case $scenario in S1|S2|X:*) path=/ ;; F1) path=/f1k.bin ;; *) echo "unknown scenario $scenario" >&2; exit 2 ;; esac
    for bin in "${BINS[@]}"; do
        out="$WORK/cg.out"
        case $scenario in
            S1) args=(respond --listen "$LISTEN" --body "$BODY100") ;;
            S2) args=(proxy --listen "$LISTEN" --to "$ORIGIN") ;;
            F1) args=(run "$WORK/f1.bext") ;;
            X:*)
                sed -e "s|@LISTEN@|$LISTEN|g" -e "s|@ORIGIN@|$ORIGIN|g" "${scenario#X:}" >"$WORK/x.bext"
                args=(run "$WORK/x.bext") ;;
        esac
        # A binary that cannot run the scenario (an older build refusing `static`) is skipped.
        if [ "$scenario" = F1 ] && ! "$bin" check "$WORK/f1.bext" >/dev/null 2>&1; then
            printf '| %s | %s | - | cannot run it |\n' "$scenario" "$(basename "$bin")"
            continue
        fi
        valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out" \
            "$bin" "${args[@]}" --workers 1 --no-pin --driver epoll >/dev/null 2>"$WORK/vg.log" &
        vg=$!
        wait_up "$path"
        # Warm the worker (free lists, caches), then count.
        "$BENCH" load "http://$LISTEN$path" --connections 8 --duration 2s --warmup 0s >/dev/null
        callgrind_control -i on "$vg" >/dev/null 2>&1
        report=$("$BENCH" load "http://$LISTEN$path" --connections 8 --duration "$((REQUESTS / 200))s" --warmup 0s \
            --rate 200 --json)
        callgrind_control -i off "$vg" >/dev/null 2>&1
        n=$(echo "$report" | sed 's/.*"requests":\([0-9]*\).*/\1/')
        kill -TERM "$vg"; wait "$vg" 2>/dev/null || true
        ir=$(callgrind_annotate "$out"* 2>/dev/null | awk '/PROGRAM TOTALS/ && !done { gsub(",", "", $1); print $1; done = 1 }')
        per=$(awk -v i="$ir" -v n="$n" 'BEGIN { if (n > 0) printf "%.0f", i / n; else print "n/a" }')
        printf '| %s | %s | %s | %s |\n' "$scenario" "$(basename "$bin")" "$n" "$per"
        rm -f "$out"*
    done
done
