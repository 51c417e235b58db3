#!/usr/bin/env bash
# The long runs CI cannot afford, one after another (the machine has 2 cores), each logged to
# target/long-logs/<name>.log, ending with one summary line per run; exits 1 if any run failed.
#
#   bash scripts/long.sh                 everything below
#   STRATA_LONG_SECS=600                 length of the stress runs (default 600)
#   STRATA_LONG_SHORT_SECS=120           length of the sharded stress run (default 120)
#   STRATA_LONG_FUZZ_SECS=600            length of the cargo-fuzz run (default 600; nightly)
#   STRATA_LONG_SKIP="loom sanitize"     skip steps by name: loom, stress, model, fuzz, sanitize
#
# Steps: the bounded loom suite with its long models, each model cut off after
# STRATA_LONG_LOOM_TIMEOUT seconds (default 1800), and the mutant gate (scripts/loom.sh --each,
# scripts/loom.sh --mutants); checked stress runs with exact accounting (2 and 4 threads, 4
# threads with a 1 ms TTL, a weighted cache, a sharded cache); the differential model under
# proptest with STRATA_MODEL_CASES=100000 per property; the same model under cargo-fuzz from the
# committed corpus; AddressSanitizer and ThreadSanitizer
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
    # Each model in its own process, the long ones included, each cut off after 30 minutes (the
    # summary says which did not finish, and how far they got).
    run loom env STRATA_LOOM_LONG=1 STRATA_LOOM_TIMEOUT=${STRATA_LONG_LOOM_TIMEOUT:-1800} \
        bash scripts/loom.sh --each
    run loom-mutants env STRATA_LOOM_LONG=1 bash scripts/loom.sh --mutants
fi
if [[ $skip != *" stress "* ]]; then
    cargo build --release -q -p strata-verify --bin strata-stress || exit 1
    stress=target/release/strata-stress
    run stress-t2 "$stress" --threads 2 --secs "$secs" --count-drops
    run stress-t4 "$stress" --threads 4 --secs "$secs" --count-drops
    run stress-t4-ttl "$stress" --threads 4 --secs "$secs" --count-drops --ttl-ms 1
    run stress-t2-weighted "$stress" --threads 2 --secs "$secs" --count-drops --weighted
    run stress-sharded "$stress" --threads 2 --secs "$short" --keys 40000 --capacity 20000 --count-drops
fi
if [[ $skip != *" model "* ]]; then
    run model-100k env STRATA_MODEL_CASES=100000 cargo test --release -q -p strata-verify --test model
fi
if [[ $skip != *" fuzz "* ]]; then
    # From the committed corpus (verify/fuzz/corpus/model); new inputs land there too, and
    # `cargo fuzz cmin model corpus/model` folds them in before a commit.
    run fuzz-model bash -c "cd verify/fuzz && cargo +nightly fuzz run model corpus/model -- \
        -max_total_time=${STRATA_LONG_FUZZ_SECS:-600} -rss_limit_mb=4096"
fi
if [[ $skip != *" sanitize "* ]]; then
    run asan env STRATA_SANITIZE_SECS=20 bash scripts/sanitize.sh address
    run tsan env STRATA_SANITIZE_SECS=20 bash scripts/sanitize.sh thread
fi

echo "== long.sh summary (logs in $logs) =="
printf '%s\n' "${results[@]}"
exit $status
