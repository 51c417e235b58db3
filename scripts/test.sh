#!/usr/bin/env bash
# The project's test command (README and .ci/run): the workspace's tests (proptest models and
# short stress tests included), 20 s and 10 s linearizability-checked stress runs, then the loom models
# with bounded preemptions (scripts/loom.sh; STRATA_LOOM_EXHAUSTIVE=1 explores every interleaving).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test --workspace --all-targets
cargo test --workspace --doc
# The `metrics` export is behind a feature the workspace run leaves off.
cargo test -p strata --features metrics --test metrics
# The Redis tier under a TieredCache (real servers; skipped loudly without redis-server unless
# STRATA_REQUIRE_REDIS=1): the invalidation bus between two instances, and outages.
cargo test -p strata --features redis --test redis_bus
# One outage at a time: each measures the longest read against the Redis deadline.
cargo test -p strata --features redis --test redis_outage -- --test-threads 1
# rediss:// against a TLS-only server (a throw-away CA made with openssl).
cargo test -p strata-redis --features tls --test tls

echo "== stress: 20 s, 2 threads, every key's history checked =="
cargo run --release -q -p strata-verify --bin strata-stress -- --threads 2 --secs 20
echo "== stress: 10 s over 40,000 keys (a cache of 4 eviction shards), drops counted =="
cargo run --release -q -p strata-verify --bin strata-stress -- --threads 2 --secs 10 \
    --keys 40000 --capacity 20000 --count-drops

echo "== loom models (strata_loom, bounded) =="
bash scripts/loom.sh
