#!/bin/sh
# Run the public HTTP caching conformance suite (github.com/http-tests/cache-tests) against
# edgeproxy, inside a loopback-only network namespace, and print the summary beside the
# suite's published results. The suite lives OUTSIDE this repository:
#
#   git clone https://github.com/http-tests/cache-tests ../cache-tests
#   (cd ../cache-tests && npm install)
#   sudo conformance/run.sh ../cache-tests     # unshare needs root (or a user namespace)
#
# Needs ../shared/tools (cache-tests-run, cache_tests_summary.py) or EDGEPROXY_CT_TOOLS.
set -eu
SUITE=$(cd "${1:?usage: conformance/run.sh SUITE_DIR [OUT_DIR]}" && pwd)
OUT=${2:-/tmp/edgeproxy-cache-tests}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TOOLS=${EDGEPROXY_CT_TOOLS:-$ROOT/../shared/tools}
mkdir -p "$OUT"
unshare -n "$TOOLS/cache-tests-run" "$SUITE" edgeproxy 8080 "$OUT" -- \
  "$ROOT/.venv/bin/edgeproxy" --log-level WARNING serve --config "$ROOT/conformance/distribution.yaml"
R="$SUITE/results"
python3 "$TOOLS/cache_tests_summary.py" --suite "$SUITE" edgeproxy="$OUT/edgeproxy.json" \
  nginx="$R/nginx.json" varnish="$R/varnish.json" squid="$R/squid.json" \
  fastly="$R/fastly.json" trafficserver="$R/trafficserver.json" --fails
