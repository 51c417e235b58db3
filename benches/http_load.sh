#!/usr/bin/env bash
# The HTTP layer's load test (issue 16): wrk on loopback against `strata-bench http-server`
# (the same bytes with no cache, behind the cache layer, from 1 ms handlers (CPU and waiting) with
# and without the layer) and against `strata-proxy` in front of that server's /origin route.
# Scenario order is rotated every run; each figure is the median requests/s of RUNS runs.
#
#   bash benches/http_load.sh            # RUNS=5 SECS=5 CONNS=32 THREADS=1
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
SECS=${SECS:-5}
CONNS=${CONNS:-32}
THREADS=${THREADS:-1}
SERVER=127.0.0.1:8091
PROXY=127.0.0.1:8092

command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 1; }
# `--bin` applies to every package named, so both binaries are named (with `-p strata-proxy`
# alone beside `--bin strata-bench`, a fresh clone built only the proxy's library)
cargo build --release -q -p strata-benches -p strata-proxy --bin strata-bench --bin strata-proxy
tmp=$(mktemp -d)
target/release/strata-bench http-server --listen "$SERVER" 2>"$tmp/server.log" &
server=$!
target/release/strata-proxy --listen "$PROXY" --upstream "http://$SERVER" --disk "$tmp/proxy.redb" 2>"$tmp/proxy.log" &
proxy=$!
trap 'kill $server $proxy 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT

for addr in "$SERVER" "$PROXY"; do
    for _ in $(seq 1 100); do
        curl -fs -o /dev/null "http://$addr/origin" && break
        sleep 0.1
    done
done

declare -A URL=(
    [plain]="http://$SERVER/plain"
    [cached]="http://$SERVER/cached"
    [slow]="http://$SERVER/slow"
    [slow-cached]="http://$SERVER/slow-cached"
    [sleep]="http://$SERVER/sleep"
    [sleep-cached]="http://$SERVER/sleep-cached"
    [origin]="http://$SERVER/origin"
    [proxy-hit]="http://$PROXY/origin"
)
NAMES=(plain cached slow slow-cached sleep sleep-cached origin proxy-hit)

echo "# what each URL answers (a second request, after the first filled the cache)"
for name in "${NAMES[@]}"; do
    curl -fs -o /dev/null "${URL[$name]}"
    printf '%-12s %s\n' "$name" "$(curl -fsS -D - -o /dev/null "${URL[$name]}" | tr -d '\r' | grep -i '^x-cache' || echo 'x-cache: (none)')"
done

for run in $(seq 1 "$RUNS"); do
    count=${#NAMES[@]}
    for i in $(seq 0 $((count - 1))); do
        name=${NAMES[$(((i + run) % count))]}
        rps=$(wrk -t"$THREADS" -c"$CONNS" -d"${SECS}s" "${URL[$name]}" | awk '/^Requests\/sec:/ {print $2}')
        echo "$rps" >>"$tmp/$name"
        echo "run $run $name $rps req/s" >&2
    done
done

python3 - "$tmp" "${NAMES[@]}" <<'PY'
import statistics, sys
tmp, names = sys.argv[1], sys.argv[2:]
med = {}
for n in names:
    values = [float(v) for v in open(f"{tmp}/{n}") if v.strip()]
    med[n] = (statistics.median(values), values)
print(f"\n| scenario | median req/s | runs |")
print("| --- | ---: | --- |")
for n in names:
    m, values = med[n]
    print(f"| {n} | {m:,.0f} | {', '.join(f'{v:,.0f}' for v in values)} |")
print()
print(f"- cached hit / no-cache handler: {med['cached'][0] / med['plain'][0]:.3f}x (goal >= 0.9x)")
print(f"- cached hit / handler spending 1 ms of CPU: {med['slow-cached'][0] / med['slow'][0]:.1f}x (goal >= 10x)")
print(f"- cached hit / handler waiting 1 ms: {med['sleep-cached'][0] / med['sleep'][0]:.1f}x (bounded by connections / 1 ms for the handler)")
print(f"- strata-proxy hit / origin served directly: {med['proxy-hit'][0] / med['origin'][0]:.3f}x")
PY
