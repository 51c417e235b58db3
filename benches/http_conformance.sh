#!/usr/bin/env bash
# RFC 9111 conformance from outside: the public HTTP cache test suite (cache-tests.fyi, npm
# package http-cache-tests) run against strata-proxy in front of the suite's own origin, and
# scored like the suite's report, next to the published Apache httpd and Traffic Server results
# that ship with the package.
#
#   bash benches/http_conformance.sh        # needs node and npm; LIST_FAILED=1 lists failures
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=${CACHE_TESTS_VERSION:-0.4.5}
ORIGIN_PORT=${ORIGIN_PORT:-18000}
PROXY_PORT=${PROXY_PORT:-18003}
work=${CACHE_TESTS_DIR:-$(mktemp -d)}

command -v npm >/dev/null || { echo "node and npm are needed" >&2; exit 1; }
cargo build --release -q -p strata-proxy
if [ ! -f "$work/suite/package.json" ]; then
    (cd "$work" && npm pack -q "http-cache-tests@$VERSION" >/dev/null &&
        mkdir -p suite && tar xzf "http-cache-tests-$VERSION.tgz" -C suite --strip-components 1 &&
        cd suite && npm install -q --no-audit --no-fund >/dev/null 2>&1)
fi
suite="$work/suite"
cp benches/conformance/summarize.mjs "$suite/strata-summarize.mjs"

(cd "$suite" && npm_config_port=$ORIGIN_PORT npm_package_config_protocol=http \
    npm_config_pidfile="$work/origin.pid" exec node server/server.mjs) >"$work/origin.log" 2>&1 &
origin=$!
target/release/strata-proxy --listen "127.0.0.1:$PROXY_PORT" --upstream "http://127.0.0.1:$ORIGIN_PORT" \
    --disk "$work/proxy.redb" >"$work/proxy.log" 2>&1 &
proxy=$!
trap 'kill $origin $proxy 2>/dev/null; wait 2>/dev/null' EXIT
for port in "$ORIGIN_PORT" "$PROXY_PORT"; do
    for _ in $(seq 1 100); do
        curl -s -o /dev/null "http://127.0.0.1:$port/" && break
        sleep 0.1
    done
done

(cd "$suite" && npm run --silent cli --base="http://127.0.0.1:$PROXY_PORT") >"$work/strata-proxy.json"
(cd "$suite" && node strata-summarize.mjs "$work/strata-proxy.json" results/apache.json results/trafficserver.json)
echo "results: $work/strata-proxy.json"
