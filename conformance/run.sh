#!/bin/sh
# Run the public HTTP caching conformance suite (github.com/http-tests/cache-tests) against
# this checkout's edgeproxy, inside a network namespace that has only loopback, and print the
# summary beside the suite's published results for nginx, Varnish, Squid, Fastly and Apache
# Traffic Server. The suite lives outside the repository (`make conformance` clones it into
# the git-ignored .cache-tests/):
#
#   git clone https://github.com/http-tests/cache-tests ../cache-tests
#   (cd ../cache-tests && npm install)
#   conformance/run.sh ../cache-tests [OUT_DIR]     # OUT_DIR: /tmp/edgeproxy-cache-tests
#
# edgeproxy runs as `python -m edgeproxy` with PYTHONPATH set to this checkout, so the code
# under test is always this checkout's. The interpreter is $ROOT/.venv/bin/python (made by
# `make test` or `make conformance`); EDGEPROXY_PYTHON names another one that has edgeproxy's
# dependencies, e.g. a worktree without its own .venv:
#   EDGEPROXY_PYTHON=/path/to/main/.venv/bin/python conformance/run.sh ../cache-tests
#
# As root the namespace is `unshare --net`; otherwise `unshare --map-root-user --net` (needs
# unprivileged user namespaces). Needs node, curl, ip (iproute2) and unshare (util-linux).
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SUITE=$(cd "${1:?usage: conformance/run.sh SUITE_DIR [OUT_DIR]}" && pwd)
OUT=${2:-/tmp/edgeproxy-cache-tests}
PYTHON=${EDGEPROXY_PYTHON:-$ROOT/.venv/bin/python}

[ -f "$SUITE/tests/index.mjs" ] || { echo "$SUITE is not a cache-tests checkout" >&2; exit 2; }
[ -d "$SUITE/node_modules" ] || { echo "run npm install in $SUITE first" >&2; exit 2; }
[ -x "$PYTHON" ] || { echo "no $PYTHON: run make test, or set EDGEPROXY_PYTHON" >&2; exit 2; }

if [ "$(id -u)" -eq 0 ]; then
  set -- unshare --net
else
  set -- unshare --map-root-user --net
fi
rm -f "$OUT/edgeproxy.json"
"$@" "$ROOT/conformance/run-in-namespace.sh" "$SUITE" "$OUT" -- \
  env PYTHONPATH="$ROOT" "$PYTHON" -m edgeproxy --log-level WARNING \
  serve --config "$ROOT/conformance/distribution.yaml"

R=$SUITE/results
"$PYTHON" "$ROOT/conformance/summary.py" --suite "$SUITE" edgeproxy="$OUT/edgeproxy.json" \
  nginx="$R/nginx.json" varnish="$R/varnish.json" squid="$R/squid.json" \
  fastly="$R/fastly.json" trafficserver="$R/trafficserver.json" --fails
