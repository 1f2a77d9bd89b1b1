#!/usr/bin/env bash
# The WAF's cost side by side: bext without a WAF, bext with OWASP CRS v4 at paranoia 1, and
# nginx + ModSecurity v3 running the same CRS (same rules folder, CRS's crs-setup.conf.example),
# all proxying to the built-in origin.
#
#   bash bench/scripts/waf.sh [--runs 5] [--duration 6] [--rate 2000] [--crs DIR]
#                             [--driver io-uring|epoll] [--out DIR]
#
# Two requests: a benign GET with a query (`/search?q=red+shoes&page=2&sort=price`) and a
# benign 16 KiB JSON POST. Each server runs alone on core 0 (taskset); the load generator and
# the origin (1 KiB answers) share core 1. Runs are interleaved (the starting server rotates),
# each a fresh server, in two shapes: a fixed offered rate (`--rate`, open loop, 50
# connections) and saturation (closed loop, 64 requests in flight, like `wrk -t1 -c64`). The
# figure is the server's utime+stime (nginx: master and worker) over the measured window
# divided by the requests completed: CPU µs per request. Every request must be answered 200:
# errors (4xx and 5xx answers included) are counted in results.tsv. Prints medians with min–max per
# server, request and shape, and the two ratios the WAF is held to.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
RUNS=5
DURATION=6
RATE=2000
DRIVER=io-uring
CRS=${CRS:-$ROOT/../shared/corpora/crs-v4/crs-data}
OUT=""
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) RUNS=$2; shift 2 ;;
        --duration) DURATION=$2; shift 2 ;;
        --rate) RATE=$2; shift 2 ;;
        --crs) CRS=$2; shift 2 ;;
        --driver) DRIVER=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
        *) echo "waf.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
CRS=$(realpath "$CRS")
SETUP=$(realpath "$CRS/../crs-setup.conf.example")
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BEXT=${BEXT:-$TARGET_DIR/release/bext}
BENCH=${BENCH:-$TARGET_DIR/release/bext-bench}
OUT=$(realpath -m "${OUT:-$ROOT/bench/results/waf-$(date -u +%Y%m%dT%H%M%SZ)}")
LISTEN=127.0.0.1:${PORT:-18000}
ORIGIN=127.0.0.1:${ORIGIN_PORT:-18080}
PEERS=$ROOT/bench/peers/waf
for f in "$BEXT" "$BENCH"; do
    [ -x "$f" ] || { echo "waf.sh: build first: cargo build --release -p bext -p bext-bench" >&2; exit 1; }
done
[ -f "$CRS/REQUEST-942-APPLICATION-ATTACK-SQLI.conf" ] || { echo "waf.sh: no CRS rules in $CRS" >&2; exit 1; }
mkdir -p "$OUT/conf" "$OUT/nginx/tmp" "$OUT/nginx/client_body"

render() {
    sed -e "s|@LISTEN@|$LISTEN|g" -e "s|@ORIGIN@|$ORIGIN|g" -e "s|@PREFIX@|$OUT/nginx|g" \
        -e "s|@CRS_RULES@|$CRS|g" -e "s|@CRS_SETUP@|$SETUP|g" "$1" >"$2"
}
render "$PEERS/bext-waf-off.bext" "$OUT/conf/bext-off.bext"
render "$PEERS/bext-crs-pl1.bext" "$OUT/conf/bext-crs.bext"
render "$PEERS/nginx-modsec.conf" "$OUT/conf/nginx-modsec.conf"
render "$PEERS/modsecurity.conf" "$OUT/nginx/modsecurity.conf"

# A benign 16 KiB JSON document: an array of product records.
python3 - "$OUT/body.json" <<'PY'
import json, sys
items, i = [], 0
while len(json.dumps({"items": items})) < 16 * 1024 - 200:
    items.append({"id": i, "name": f"product {i}", "price": 10 + i % 90,
                  "tags": ["red", "shoes", "sale"], "stock": i % 7 > 0})
    i += 1
open(sys.argv[1], "w").write(json.dumps({"items": items}))
PY

{
    echo "date: $(date -u +%FT%TZ)"
    echo "kernel: $(uname -r)"
    echo "cpus: $(nproc)"
    echo "bext: $(git -C "$ROOT" rev-parse --short HEAD)"
    echo "nginx: $(nginx -v 2>&1 | sed 's/.*: //')"
    echo "modsecurity: $(dpkg-query -W -f '${Version}' libmodsecurity3 2>/dev/null), connector $(dpkg-query -W -f '${Version}' libnginx-mod-http-modsecurity 2>/dev/null)"
    echo "crs: $CRS"
    echo "body: $(stat -c %s "$OUT/body.json") bytes"
} >"$OUT/machine.txt"

taskset -c 1 "$BENCH" origin --listen "$ORIGIN" --body-size 1024 2>/dev/null &
ORIGIN_PID=$!
SERVER=""
cleanup() {
    [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null || true
    kill "$ORIGIN_PID" 2>/dev/null || true
}
trap cleanup EXIT

start() {
    case "$1" in
        bext-off|bext-crs)
            taskset -c 0 "$BEXT" run "$OUT/conf/$1.bext" --workers 1 --no-pin --driver "$DRIVER" \
                >>"$OUT/log" 2>&1 & ;;
        nginx-modsec)
            taskset -c 0 nginx -p "$OUT/nginx" -c "$OUT/conf/nginx-modsec.conf" >>"$OUT/log" 2>&1 & ;;
    esac
    SERVER=$!
    for _ in $(seq 1 100); do
        curl -s -o /dev/null --max-time 1 "http://$LISTEN/" && break
        sleep 0.1
    done
    CPU_PIDS=$SERVER
    for child in $(pgrep -P "$SERVER" || true); do CPU_PIDS="$CPU_PIDS,$child"; done
}

stop() {
    kill "$SERVER" 2>/dev/null || true
    wait "$SERVER" 2>/dev/null || true
    SERVER=""
    for _ in $(seq 1 50); do
        curl -s -o /dev/null --max-time 0.2 "http://$LISTEN/" || break
        sleep 0.1
    done
}

# Every request is answered 200 by each server before anything is measured.
for s in bext-off bext-crs nginx-modsec; do
    start "$s"
    get=$(curl -s -o /dev/null -w '%{http_code}' "http://$LISTEN/search?q=red+shoes&page=2&sort=price")
    post=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
        --data-binary "@$OUT/body.json" "http://$LISTEN/api/items")
    attack=$(curl -s -o /dev/null -w '%{http_code}' "http://$LISTEN/search?q=1%27%20union%20select%20password%20from%20users--")
    echo "$s: benign GET $get, JSON POST $post, SQLi GET $attack" | tee -a "$OUT/machine.txt"
    stop
done

RESULTS=$OUT/results.tsv
printf 'server\trequest\tshape\trun\tus_per_request\trps\terrors\n' >"$RESULTS"
SERVERS=(bext-off bext-crs nginx-modsec)
for run in $(seq 1 "$RUNS"); do
    n=${#SERVERS[@]}
    for i in $(seq 0 $((n - 1))); do
        s=${SERVERS[$(((i + run) % n))]}
        start "$s"
        for req in get post; do
            if [ "$req" = get ]; then
                what=(--header "Accept: text/html")
                url="http://$LISTEN/search?q=red+shoes&page=2&sort=price"
            else
                what=(--header "Content-Type: application/json" --body-file "$OUT/body.json")
                url="http://$LISTEN/api/items"
            fi
            for shape in fixed saturation; do
                if [ "$shape" = fixed ]; then
                    args=(--connections 50 --rate "$RATE")
                else
                    args=(--connections 64)
                fi
                r=$(taskset -c 1 "$BENCH" load "$url" "${args[@]}" "${what[@]}" \
                    --duration "$DURATION" --warmup 1 --cpu-pid "$CPU_PIDS" --json)
                echo "$r" >>"$OUT/results.jsonl"
                us=$(echo "$r" | grep -o '"us_per_request":[0-9.]*' | cut -d: -f2)
                rps=$(echo "$r" | grep -o '"rps":[0-9.]*' | cut -d: -f2)
                errs=$(echo "$r" | grep -o '"errors_total":[0-9]*' | cut -d: -f2)
                printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$s" "$req" "$shape" "$run" "$us" "$rps" \
                    "$errs" >>"$RESULTS"
            done
        done
        stop
    done
done

awk -F'\t' 'NR > 1 { k = $2 "\t" $3 "\t" $1; v[k] = v[k] " " $5; r[k] = r[k] " " $6 }
    END {
        for (k in v) {
            n = split(v[k], a, " "); asort(a)
            m = split(r[k], b, " "); asort(b)
            med[k] = a[int((n + 1) / 2)]
            printf "%s\tmedian %.2f µs (%.2f–%.2f), %.0f req/s\n", k, med[k], a[1], a[n], b[int((m + 1) / 2)]
        }
        for (k in med) { split(k, p, "\t"); pairs[p[1] "\t" p[2]] = 1 }
        for (p in pairs) {
            printf "%s\tbext-crs ÷ bext-off = %.2f, bext-crs ÷ nginx-modsec = %.3f\n", p,
                med[p "\tbext-crs"] / med[p "\tbext-off"], med[p "\tbext-crs"] / med[p "\tnginx-modsec"]
        }
    }' "$RESULTS" | sort | tee "$OUT/summary.txt"
echo "results in $OUT"
