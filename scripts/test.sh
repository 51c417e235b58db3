#!/usr/bin/env bash
# The project's test command (README and .ci/run): the workspace's tests, then the loom models
# with bounded preemptions. Set STRATA_LOOM_EXHAUSTIVE=1 to explore every interleaving instead.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test --workspace --all-targets
cargo test --workspace --doc

echo "== loom models (strata_loom) =="
preemptions=${LOOM_MAX_PREEMPTIONS:-2}
if [ "${STRATA_LOOM_EXHAUSTIVE:-0}" = 1 ]; then
    unset LOOM_MAX_PREEMPTIONS
else
    export LOOM_MAX_PREEMPTIONS=$preemptions
fi
RUSTFLAGS="--cfg strata_loom --cfg crossbeam_loom" CARGO_TARGET_DIR=target/loom \
    cargo test -p strata-engine --test loom --release
