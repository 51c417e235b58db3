#!/usr/bin/env bash
# The independent policy check: replays the synthetic generators through Strata's engine (one thread, a
# fixed-seed hasher) and through libCacheSim's S3-FIFO (the `libcachesim` Python package, installed into a
# virtualenv here), and fails if any miss ratio differs by more than 1 point (--tolerance to change).
#
# Usage: benches/policy_crosscheck.sh [--tolerance POINTS]    (from the workspace root; a few minutes)
# Needs: python3 with venv, network access to PyPI the first time.
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/crosscheck
venv=target/crosscheck-venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet 'libcachesim>=0.3.5,<0.4'
fi
cargo run -p strata-benches --release --quiet -- crosscheck-export --out "$out"
"$venv/bin/python" benches/crosscheck/lcs_s3fifo.py "$out" "$@"
