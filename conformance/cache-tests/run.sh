#!/usr/bin/env bash
# Runs the HTTP Working Group's cache-tests suite (https://github.com/http-tests/cache-tests)
# against `bext run` and writes the results per test group into docs/cache.md.
#
#   conformance/cache-tests/run.sh [--no-docs]
#
# The suite is public code that is never committed here: it is cloned into
# conformance/cache-tests/suite/ (git-ignored) from CACHE_TESTS_SRC (a URL or a local git
# directory; default the GitHub repository). Needs node >= 14.8 and a built `bext` (BEXT, default
# target/release/bext, else target/debug/bext). Raw results go to conformance/cache-tests/out/.
#
# The setup: the suite's origin server on 127.0.0.1:$ORIGIN_PORT, bext on 127.0.0.1:$BEXT_PORT
# with one route `cache { ttl 0s } proxy suite` (no freshness is given to responses without
# their own: the suite's first test checks that nothing is stored without it), and the suite's
# command-line client sending every test through bext. Only the tests that apply to a shared
# cache run (the client skips browser-only ones). Two runs: bext's defaults, then with
# `store_errors on; store_set_cookie on`. The suite's client needs `undici`, installed into the
# suite's folder on the first run.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
suite="$here/suite"
out="$here/out"
src="${CACHE_TESTS_SRC:-https://github.com/http-tests/cache-tests.git}"
origin_port="${ORIGIN_PORT:-18000}"
bext_port="${BEXT_PORT:-18080}"
write_docs=1
[[ "${1:-}" == "--no-docs" ]] && write_docs=0

bext="${BEXT:-}"
if [[ -z "$bext" ]]; then
  for b in "${CARGO_TARGET_DIR:-$root/target}/release/bext" "${CARGO_TARGET_DIR:-$root/target}/debug/bext"; do
    if [[ -x "$b" ]]; then bext="$b"; break; fi
  done
fi
[[ -x "$bext" ]] || { echo "build bext first (cargo build --release), or set BEXT" >&2; exit 1; }

if [[ ! -d "$suite/.git" ]]; then
  git clone --quiet "$src" "$suite"
fi
if [[ ! -d "$suite/node_modules/undici" ]]; then
  (cd "$suite" && npm install --no-save --no-audit --no-fund undici@7 >/dev/null)
fi
mkdir -p "$out"
commit="$(git -C "$suite" rev-parse --short HEAD)"

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

(cd "$suite" && npm_config_protocol=http npm_config_port="$origin_port" \
  npm_config_pidfile="$out/origin.pid" exec node test-engine/server/server.mjs) \
  >"$out/origin.log" 2>&1 &
pids+=($!)

# One run per profile: bext's defaults, then the two storage switches that trade a defence for
# what the suite expects of a plain RFC 9111 cache (see docs/cache.md).
profile() {
  local name="$1" extra="$2"
  cat >"$out/$name.bext" <<CONF
global { workers 1 }
listen 127.0.0.1:$bext_port
upstream suite { server 127.0.0.1:$origin_port }
site * {
    route /* {
        cache { ttl 0s$extra }
        proxy suite
    }
}
CONF
  "$bext" run "$out/$name.bext" >"$out/$name.log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 100); do
    if (exec 3<>/dev/tcp/127.0.0.1/"$bext_port") 2>/dev/null &&
       (exec 3<>/dev/tcp/127.0.0.1/"$origin_port") 2>/dev/null; then
      break
    fi
    sleep 0.1
  done
  (cd "$suite" && npm_config_base="http://127.0.0.1:$bext_port" npm_config_id="" \
    npm_package_config_id="" node --no-warnings test-engine/cli.mjs) >"$out/$name.json"
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  node "$here/summary.mjs" "$suite" "$out/$name.json" "$commit" "cache { ttl 0s$extra }"
}

{
  echo "With bext's defaults:"
  echo
  profile defaults ""
  echo
  echo "With the two storage switches on:"
  echo
  profile switches "; store_errors on; store_set_cookie on"
} >"$out/summary.md"
cat "$out/summary.md"
if [[ $write_docs == 1 ]]; then
  node "$here/summary.mjs" --splice "$root/docs/cache.md" "$out/summary.md"
fi
