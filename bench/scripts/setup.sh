#!/usr/bin/env bash
# Installs what the benchmarks need on a fresh Debian/Ubuntu machine (run as root):
# the peers (nginx, HAProxy, Varnish), cross-check load tools (wrk, h2load), profilers (perf,
# hyperfine), and the utilities compare.sh uses (taskset, curl, pgrep, awk).
# Benchmarks are not part of the test command; this is only for running them.
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends \
    nginx-light haproxy varnish wrk nghttp2-client linux-perf hyperfine \
    util-linux procps curl gawk
# The distribution's nginx unit would hold port 80 and waste a core: the benchmarks start
# their own nginx with bench/peers/*.conf.
for unit in nginx varnish; do
    if command -v systemctl >/dev/null && systemctl is-active --quiet "$unit" 2>/dev/null; then
        $SUDO systemctl stop "$unit" || true
    fi
done
