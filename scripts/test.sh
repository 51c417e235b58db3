#!/usr/bin/env bash
# The project's test command (README and .ci/run): the workspace's tests (proptest models and
# short stress tests included), a 20 s linearizability-checked stress run, then the loom models
# with bounded preemptions (scripts/loom.sh; STRATA_LOOM_EXHAUSTIVE=1 explores every interleaving).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test --workspace --all-targets
cargo test --workspace --doc
# The `metrics` export is behind a feature the workspace run leaves off.
cargo test -p strata --features metrics --test metrics

echo "== stress: 20 s, 2 threads, every key's history checked =="
cargo run --release -q -p strata-verify --bin strata-stress -- --threads 2 --secs 20

echo "== loom models (strata_loom, bounded) =="
bash scripts/loom.sh
