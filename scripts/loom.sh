#!/usr/bin/env bash
# The loom models of the engine (verify/tests/loom_engine.rs).
#   bash scripts/loom.sh             bounded: LOOM_MAX_PREEMPTIONS=2 (the CI setting)
#   STRATA_LOOM_EXHAUSTIVE=1 ...     every interleaving (slow)
#   bash scripts/loom.sh --mutants   build each engine mutant and require the models to fail
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target/loom}
if [ "${STRATA_LOOM_EXHAUSTIVE:-0}" = 1 ]; then
    unset LOOM_MAX_PREEMPTIONS
else
    export LOOM_MAX_PREEMPTIONS=${LOOM_MAX_PREEMPTIONS:-2}
fi
base="--cfg strata_loom --cfg crossbeam_loom"

run_models() {
    RUSTFLAGS="$base $1" cargo test --release -p strata-verify --test loom_engine -- "${@:2}"
}

if [ "${1:-}" != "--mutants" ]; then
    run_models ""
    exit 0
fi

# Each mutant breaks one invariant on purpose; the suite must fail on it, or it has lost its teeth.
status=0
for mutant in blind_append early_retire; do
    echo "== mutant $mutant: the loom models must fail =="
    if RUSTFLAGS="$base --cfg strata_mutant=\"$mutant\"" CARGO_TARGET_DIR="$CARGO_TARGET_DIR-mutant" \
        cargo test --release -p strata-verify --test loom_engine >"/tmp/strata-mutant-$mutant.log" 2>&1; then
        echo "!! mutant $mutant survived: the loom suite did not catch it"
        status=1
    else
        grep -E "panicked at|FAILED|signal:" "/tmp/strata-mutant-$mutant.log" | head -3 || true
        echo "ok: mutant $mutant caught"
    fi
done
exit $status
