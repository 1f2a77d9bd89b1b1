#!/usr/bin/env bash
# WASM plugin costs: the CPU a proxy-wasm plugin adds to a request, host side, and the two
# budget mechanisms wasmtime offers (plugins/benches/host.rs, criterion, release build).
#
#   bash bench/scripts/plugins.sh [--runs 5] [--out DIR]
#
# Benchmarks, each the median time of one iteration on the pinned core (SERVER_CPU, default 0):
#   request/noop         a whole request's callbacks on a warm instance of a plugin that does
#                        nothing (context create, request headers, response headers, log,
#                        done, delete): what a no-op plugin adds to a request (bar: 1.5 µs)
#   request/add_header   the same, the plugin adding a response header (bar: 3 µs)
#   budget/epoch/*       a 100k-iteration guest loop and an empty call under epoch interruption
#   budget/fuel/*        the same under fuel metering
#
# Writes DIR/results.tsv (run, benchmark, ns per iteration) and DIR/results.md (medians, bars).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
RUNS=5
OUT=""
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) RUNS=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) echo "plugins.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
OUT=$(realpath -m "${OUT:-$ROOT/bench/results/plugins-$(date -u +%Y%m%dT%H%M%SZ)}")
SERVER_CPU=${SERVER_CPU:-0}
mkdir -p "$OUT"
cd "$ROOT"

cargo bench -p bext-plugins --bench host --no-run
printf 'run\tbenchmark\tns\n' > "$OUT/results.tsv"
for run in $(seq 1 "$RUNS"); do
    echo "run $run/$RUNS" >&2
    # bencher lines: "test request/noop ... bench:   812 ns/iter (+/- 12)"
    taskset -c "$SERVER_CPU" cargo bench -p bext-plugins --bench host -- \
        --output-format bencher --noplot 2>/dev/null |
        awk -v run="$run" '/^test / { n = $5; gsub(",", "", n); print run "\t" $2 "\t" n }' \
        >> "$OUT/results.tsv"
done

{
    echo "# WASM plugin costs ($(date -u +%Y-%m-%dT%H:%MZ), $RUNS runs, core $SERVER_CPU)"
    echo
    echo "| benchmark | median ns | min | max | bar |"
    echo "| --- | --- | --- | --- | --- |"
    # Sorted by benchmark, then value: each group's first line is its minimum, its last the maximum.
    tail -n +2 "$OUT/results.tsv" | sort -t"$(printf '\t')" -k2,2 -k3,3n | awk -F'\t' '
        function flush() {
            if (name == "") return
            m = (k % 2) ? v[(k + 1) / 2] : (v[k / 2] + v[k / 2 + 1]) / 2
            bar = (name == "request/noop") ? 1500 : (name == "request/add_header") ? 3000 : 0
            verdict = bar ? ((m <= bar) ? "<= " bar " ns: met" : "> " bar " ns: missed") : ""
            printf "| %s | %d | %d | %d | %s |\n", name, m, v[1], v[k], verdict
        }
        $2 != name { flush(); name = $2; k = 0 }
        { v[++k] = $3 }
        END { flush() }'
} > "$OUT/results.md"
cat "$OUT/results.md"
echo "results in $OUT" >&2
