#!/bin/sh
# One run of the HTTP caching conformance suite (github.com/http-tests/cache-tests) against
# edgeproxy. Meant to run INSIDE a fresh network namespace that has only loopback:
# conformance/run.sh starts it with `unshare --net`. The suite's origin server listens on
# every interface, so it refuses to start where any interface other than `lo` exists.
#
# usage: run-in-namespace.sh SUITE_DIR OUT_DIR -- EDGE_COMMAND...
#   SUITE_DIR     a checkout of the suite, `npm install` done
#   OUT_DIR       receives edgeproxy.json (test id -> true or [error, message], the form the
#                 suite's results/*.json have), edgeproxy.log, origin.log and cli.log
#   EDGE_COMMAND  edgeproxy in the foreground, listening on 127.0.0.1:8080 with its origin at
#                 127.0.0.1:8000, where the suite's origin listens (conformance/distribution.yaml)
set -eu

EDGE_PORT=8080
ORIGIN_PORT=8000

SUITE=$(cd "$1" && pwd)
mkdir -p "$2"
OUT=$(cd "$2" && pwd)
shift 2
[ "${1:-}" = "--" ] && shift
[ $# -gt 0 ] || { echo "usage: $0 SUITE_DIR OUT_DIR -- EDGE_COMMAND..." >&2; exit 2; }

if ip -o link show | grep -qv ': lo:'; then
  echo "$0: this network namespace has more than loopback; run it through conformance/run.sh" >&2
  exit 2
fi
ip link set lo up

# The suite's origin takes its settings from npm's config variables (package.json "config");
# they are set here so that npm itself is not needed to start it.
(cd "$SUITE" && exec env npm_config_protocol=http npm_config_port=$ORIGIN_PORT \
  npm_config_pidfile="$OUT/origin.pid" node test-engine/server/server.mjs) \
  >"$OUT/origin.log" 2>&1 &
ORIGIN=$!
"$@" >"$OUT/edgeproxy.log" 2>&1 &
EDGE=$!

# Stop both by their process ids: TERM, a few seconds' grace, then KILL.
stop() {
  kill "$EDGE" "$ORIGIN" 2>/dev/null || true
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    kill -0 "$EDGE" 2>/dev/null || kill -0 "$ORIGIN" 2>/dev/null || break
    sleep 0.5
  done
  kill -9 "$EDGE" "$ORIGIN" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap stop EXIT
trap 'exit 130' INT TERM

ready() { curl -s -o /dev/null "http://127.0.0.1:$1/"; }
for _ in $(seq 1 100); do
  ready $ORIGIN_PORT && ready $EDGE_PORT && break
  kill -0 "$EDGE" 2>/dev/null || { echo "edgeproxy exited; see $OUT/edgeproxy.log" >&2; exit 1; }
  sleep 0.2
done
ready $EDGE_PORT || { echo "edgeproxy did not answer on :$EDGE_PORT" >&2; exit 1; }

# The suite's command line (package.json "cli"), also without npm. An empty test id (the
# cli reads npm_config_id, then npm_package_config_id) runs every test and prints the results
# as JSON. The base URL must not end in '/'.
if ! (cd "$SUITE" && exec env npm_config_base="http://127.0.0.1:$EDGE_PORT" \
  npm_package_config_id= timeout 900 node --no-warnings test-engine/cli.mjs) \
  >"$OUT/edgeproxy.json" 2>"$OUT/cli.log"; then
  echo "the suite's command line failed; see $OUT/cli.log" >&2
  exit 1
fi
echo "results: $OUT/edgeproxy.json"
