#!/usr/bin/env bash
# The long runs CI cannot afford, one after another (the machine has 2 cores), each logged to
# target/long-logs/<name>.log, ending with one summary line per run; exits 1 if any run failed.
#
#   bash scripts/long.sh                 everything below
#   STRATA_LONG_SECS=600                 length of the two main stress runs (default 600)
#   STRATA_LONG_SHORT_SECS=120           length of the TTL, weighted and sharded stress runs (default 120)
#   STRATA_LONG_SKIP="loom sanitize"     skip steps by name: loom, stress, model, sanitize
#
# Steps: the bounded loom suite and its mutant gate (scripts/loom.sh, scripts/loom.sh --mutants);
# checked stress runs with exact accounting (2 and 4 threads, 4 threads with a 1 ms TTL, a
# weighted cache, a sharded cache); the differential model under proptest with STRATA_MODEL_CASES=100000 per property (the
# stand-in for cargo-fuzz where it cannot be installed); AddressSanitizer and ThreadSanitizer
# (scripts/sanitize.sh, nightly; STRATA_SANITIZE_SECS=20 per stress run there).
set -uo pipefail
cd "$(dirname "$0")/.."

secs=${STRATA_LONG_SECS:-600}
short=${STRATA_LONG_SHORT_SECS:-120}
skip=" ${STRATA_LONG_SKIP:-} "
logs=target/long-logs
mkdir -p "$logs"
results=()
status=0

run() {
    local name=$1
    shift
    echo "== $name: $* =="
    local start=$SECONDS
    "$@" >"$logs/$name.log" 2>&1
    local rc=$?
    tail -8 "$logs/$name.log"
    results+=("$(printf '%-22s exit %-3s %6ss  %s' "$name" "$rc" "$((SECONDS - start))" "$logs/$name.log")")
    if [ "$rc" != 0 ]; then
        status=1
    fi
}

if [[ $skip != *" loom "* ]]; then
    run loom bash scripts/loom.sh
    run loom-mutants bash scripts/loom.sh --mutants
fi
if [[ $skip != *" stress "* ]]; then
    cargo build --release -q -p strata-verify --bin strata-stress || exit 1
    stress=target/release/strata-stress
    run stress-t2 "$stress" --threads 2 --secs "$secs" --count-drops
    run stress-t4 "$stress" --threads 4 --secs "$secs" --count-drops
    run stress-t4-ttl "$stress" --threads 4 --secs "$short" --count-drops --ttl-ms 1
    run stress-t2-weighted "$stress" --threads 2 --secs "$short" --count-drops --weighted
    run stress-sharded "$stress" --threads 2 --secs "$short" --keys 40000 --capacity 20000 --count-drops
fi
if [[ $skip != *" model "* ]]; then
    run model-100k env STRATA_MODEL_CASES=100000 cargo test --release -q -p strata-verify --test model
fi
if [[ $skip != *" sanitize "* ]]; then
    run asan env STRATA_SANITIZE_SECS=20 bash scripts/sanitize.sh address
    run tsan env STRATA_SANITIZE_SECS=20 bash scripts/sanitize.sh thread
fi

echo "== long.sh summary (logs in $logs) =="
printf '%s\n' "${results[@]}"
exit $status
