#!/usr/bin/env bash
# TLS side by side: bext, nginx and HAProxy, the same certificates and ciphers (TLS 1.3,
# TLS_AES_256_GCM_SHA384, X25519), the server pinned to one core, interleaved, RUNS rounds.
#
#   bash bench/scripts/tls.sh [--runs 5] [--seconds 5] [--out DIR]
#
# Scenarios, each reported as CPU µs of the server process (utime+stime from /proc/PID/stat
# over the measured window) per connection or per request:
#   full-ecdsa   a full handshake per connection, ECDSA P-256 certificate (openssl s_time -new)
#   full-rsa     the same with an RSA-2048 certificate
#   resumed      a resumed handshake per connection (openssl s_time -reuse)
#   keepalive    requests over kept-alive TLS connections (h2load --h1, 10 connections)
#   proxied      the same, proxied to a local origin kept alive (bext origin)
# and the resident memory per idle TLS connection (bench/scripts/tls_idle.py, 2000 connections).
#
# Writes DIR/results.tsv (peer, scenario, run, units, cpu_us, per_unit_us) and prints medians.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
RUNS=5
SECONDS_PER_RUN=5
OUT=""
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) RUNS=$2; shift 2 ;;
        --seconds) SECONDS_PER_RUN=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
        *) echo "tls.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BEXT=${BEXT:-$TARGET_DIR/release/bext}
OUT=$(realpath -m "${OUT:-$ROOT/bench/results/tls-$(date -u +%Y%m%dT%H%M%SZ)}")
PEERS=${PEERS:-"bext nginx haproxy"}
SCENARIOS=${SCENARIOS:-"full-ecdsa full-rsa resumed keepalive proxied idle"}
SERVER_CPU=${SERVER_CPU:-0}
GEN_CPU=${GEN_CPU:-1}
PORT=18443
ORIGIN_PORT=18080
BODY="hello from the benchmark"
mkdir -p "$OUT/certs"
cd "$OUT"

# The same certificates for every peer.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
    -subj /CN=localhost -addext subjectAltName=DNS:localhost \
    -keyout certs/ecdsa.key -out certs/ecdsa.pem 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -days 30 \
    -subj /CN=localhost -addext subjectAltName=DNS:localhost \
    -keyout certs/rsa.key -out certs/rsa.pem 2>/dev/null
cat certs/ecdsa.pem certs/ecdsa.key > certs/ecdsa.bundle
cat certs/rsa.pem certs/rsa.key > certs/rsa.bundle

taskset -c "$GEN_CPU" "$BEXT" origin --listen 127.0.0.1:$ORIGIN_PORT --body-bytes 100 \
    --workers 1 >/dev/null 2>&1 &
ORIGIN_PID=$!
trap 'kill $ORIGIN_PID 2>/dev/null || true' EXIT

start() { # peer scenario -> sets PID
    local peer=$1 scenario=$2 kind=ecdsa proxied=""
    [ "$scenario" = full-rsa ] && kind=rsa
    [ "$scenario" = proxied ] && proxied=1
    case "$peer" in
        bext)
            if [ -n "$proxied" ]; then
                taskset -c "$SERVER_CPU" "$BEXT" proxy --listen 127.0.0.1:$PORT \
                    --to 127.0.0.1:$ORIGIN_PORT --tls-cert certs/$kind.pem \
                    --tls-key certs/$kind.key --workers 1 >/dev/null 2>&1 &
            else
                taskset -c "$SERVER_CPU" "$BEXT" respond --listen 127.0.0.1:$PORT \
                    --body "$BODY" --tls-cert certs/$kind.pem --tls-key certs/$kind.key \
                    --workers 1 >/dev/null 2>&1 &
            fi
            PID=$! ;;
        nginx)
            mkdir -p "$OUT/nginx"
            local loc="default_type text/plain; return 200 \"$BODY\";"
            [ -n "$proxied" ] && loc="proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection \"\";"
            sed -e "s|@PREFIX@|$OUT/nginx|g" -e "s|@LISTEN@|127.0.0.1:$PORT|" \
                -e "s|@CERT@|$OUT/certs/$kind.pem|" -e "s|@KEY@|$OUT/certs/$kind.key|" \
                -e "s|@ORIGIN@|127.0.0.1:$ORIGIN_PORT|" -e "s|@LOCATION@|$loc|" \
                "$ROOT/bench/peers/nginx-tls.conf" > nginx/nginx.conf
            taskset -c "$SERVER_CPU" nginx -p "$OUT/nginx" -c "$OUT/nginx/nginx.conf" &
            JOB=$!
            sleep 0.3
            PID=$(pgrep -P $! -f "nginx: worker" | head -1) ;;
        haproxy)
            local fe="http-request return status 200 content-type text/plain string \"$BODY\""
            [ -n "$proxied" ] && fe="default_backend origin"
            sed -e "s|@LISTEN@|127.0.0.1:$PORT|" -e "s|@PEM@|$OUT/certs/$kind.bundle|" \
                -e "s|@ORIGIN@|127.0.0.1:$ORIGIN_PORT|" -e "s|@FRONTEND@|$fe|" \
                "$ROOT/bench/peers/haproxy-tls.cfg" > haproxy.cfg
            taskset -c "$SERVER_CPU" haproxy -f haproxy.cfg >/dev/null 2>&1 &
            PID=$! ;;
    esac
    [ "$peer" = nginx ] || JOB=$PID
    sleep 0.5
}

stop() {
    case "$1" in
        nginx) kill "$(cat "$OUT/nginx/nginx.pid")" 2>/dev/null || true ;;
        *) kill "$PID" 2>/dev/null || true ;;
    esac
    # The server's own job only: the origin runs on in the background.
    wait "$JOB" 2>/dev/null || true
    sleep 0.3
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
TICK_US=$((1000000 / $(getconf CLK_TCK)))

measure() { # peer scenario run
    local peer=$1 scenario=$2 run=$3 units a b
    if [ "$scenario" = idle ]; then
        local per
        per=$(taskset -c "$GEN_CPU" python3 "$ROOT/bench/scripts/tls_idle.py" "$PID" 127.0.0.1 $PORT 2000)
        printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$peer" idle "$run" 2000 0 "$per" >> results.tsv
        return
    fi
    a=$(cpu_ticks "$PID")
    case "$scenario" in
        full-*|resumed)
            local mode=-new
            [ "$scenario" = resumed ] && mode=-reuse
            units=$(taskset -c "$GEN_CPU" openssl s_time -connect 127.0.0.1:$PORT $mode \
                -time "$SECONDS_PER_RUN" -ciphersuites TLS_AES_256_GCM_SHA384 -www / 2>/dev/null \
                | awk '/connections in [0-9.]+ real/ {print $1; exit}') ;;
        keepalive|proxied)
            units=$(taskset -c "$GEN_CPU" h2load --h1 -c 10 -D "$SECONDS_PER_RUN" \
                --tls13-ciphers=TLS_AES_256_GCM_SHA384 https://127.0.0.1:$PORT/ 2>/dev/null \
                | awk '/^requests:/ {print $8; exit}') ;;
    esac
    b=$(cpu_ticks "$PID")
    local cpu=$(( (b - a) * TICK_US ))
    local per=$(awk -v c="$cpu" -v u="${units:-0}" 'BEGIN { if (u > 0) printf "%.1f", c / u; else print "nan" }')
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$peer" "$scenario" "$run" "${units:-0}" "$cpu" "$per" >> results.tsv
}

printf 'peer\tscenario\trun\tunits\tcpu_us\tper_unit\n' > results.tsv
for scenario in $SCENARIOS; do
    for run in $(seq 1 "$RUNS"); do
        # Interleaved, the starting peer rotating each round.
        set -- $PEERS
        for _ in $(seq 2 "$run"); do set -- "${@:2}" "$1"; done
        for peer in "$@"; do
            start "$peer" "$scenario"
            measure "$peer" "$scenario" "$run"
            stop "$peer"
        done
    done
done

echo "medians (µs of server CPU per connection or request; bytes per idle connection):"
awk -F'\t' 'NR > 1 { v[$2 "\t" $1] = v[$2 "\t" $1] " " $6 }
    END { for (k in v) { n = split(v[k], a, " "); asort(a); printf "%s\t%s\n", k, a[int((n + 1) / 2)] } }' \
    results.tsv | sort
