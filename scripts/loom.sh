#!/usr/bin/env bash
# The loom models of the engine (verify/tests/loom_engine.rs).
#   bash scripts/loom.sh             bounded: LOOM_MAX_PREEMPTIONS=2 (the CI setting)
#   STRATA_LOOM_EXHAUSTIVE=1 ...     every interleaving (slow)
#   STRATA_LOOM_LONG=1 ...           bounded, with the long models too (CI skips those; an
#                                    exhaustive run and the mutant gate always run them)
#   bash scripts/loom.sh --each      each model in its own process, one after another, each cut
#                                    off after STRATA_LOOM_TIMEOUT seconds if that is set (for
#                                    exhaustive runs: says which models finished and which not)
#   bash scripts/loom.sh --mutants   build each engine mutant and require the model named for it
#                                    to fail (see the table at the end); `--mutants NAME...` runs
#                                    only those (`--mutants unbuildable`: the gate must fail)
# The bounded, exhaustive and --each runs end with the number of models and the total number of
# interleavings (executions) loom explored, summed from each model's own count.
# Every loom build has debug assertions on (the engine's own checks, in release-optimised code).
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target/loom}
if [ "${STRATA_LOOM_EXHAUSTIVE:-0}" = 1 ]; then
    unset LOOM_MAX_PREEMPTIONS
else
    export LOOM_MAX_PREEMPTIONS=${LOOM_MAX_PREEMPTIONS:-2}
fi
base="--cfg strata_loom --cfg crossbeam_loom -C debug-assertions=on"

run_models() {
    RUSTFLAGS="$base $1" cargo test --release -p strata-verify --test loom_engine -- "${@:2}"
}

# Builds the loom test binary with the extra RUSTFLAGS $1, its cargo output in the file $2, and
# prints the binary's path; fails if the build does.
build_models() {
    RUSTFLAGS="$base $1" cargo test --release -p strata-verify --test loom_engine --no-run \
        >"$2" 2>&1 || return 1
    sed -n 's/.*Executable tests\/loom_engine.rs (\(.*\))$/\1/p' "$2"
}

# Builds the plain (non-loom) test target $1 of strata-verify with the extra RUSTFLAGS $2, its
# cargo output in the file $3, and prints the binary's path; fails if the build does.
build_plain_test() {
    RUSTFLAGS="$2" cargo test -p strata-verify --test "$1" --no-run >"$3" 2>&1 || return 1
    sed -n "s/.*Executable tests\/$1.rs (\(.*\))\$/\1/p" "$3"
}

# Sums the lines `loom model <name>: <n> interleavings, ...` that the models appended to $1.
summarize() {
    echo "== loom totals (LOOM_MAX_PREEMPTIONS=${LOOM_MAX_PREEMPTIONS:-unset: exhaustive}) =="
    sort "$1"
    awk '{ n += $4; models += 1 } END { printf "loom: %d models completed, %d interleavings explored in all\n", models, n }' "$1"
}

counts=$(mktemp /tmp/strata-loom-counts.XXXXXX)
trap 'rm -f "$counts"' EXIT
export STRATA_LOOM_COUNTS=$counts

case "${1:-}" in
"")
    run_models ""
    summarize "$counts"
    exit 0
    ;;
--each)
    # Build once, then run the test binary once per model (a timeout then stops exactly the model
    # it limits).
    build_log=$(mktemp /tmp/strata-loom-build.XXXXXX)
    bin=$(build_models "" "$build_log") || true
    if [ ! -x "$bin" ]; then
        cat "$build_log" >&2
        echo "could not build the loom test binary" >&2
        exit 1
    fi
    rm -f "$build_log"
    status=0
    unfinished=()
    partial=0
    limit=()
    if [ -n "${STRATA_LOOM_TIMEOUT:-}" ]; then
        limit=(timeout "$STRATA_LOOM_TIMEOUT")
    fi
    for model in $("$bin" --list | sed -n 's/: test$//p'); do
        echo "== $model =="
        out=$(mktemp /tmp/strata-loom-model.XXXXXX)
        set +e
        "${limit[@]}" "$bin" --exact "$model" --nocapture 2>&1 |
            grep --line-buffered -E "^loom model|panicked|FAILED" | tee "$out"
        rc=${PIPESTATUS[0]}
        set -e
        # The last progress line of a model cut short: how far it got (without failing).
        seen=$(sed -n 's/.*: \([0-9]*\) interleavings so far.*/\1/p' "$out" | tail -1)
        rm -f "$out"
        if [ "$rc" = 124 ]; then
            echo "!! $model did not finish within ${STRATA_LOOM_TIMEOUT} s (at least ${seen:-0} interleavings explored, none failed)"
            unfinished+=("$model")
            partial=$((partial + ${seen:-0}))
        elif [ "$rc" != 0 ]; then
            echo "!! $model failed (exit $rc)"
            status=1
        fi
    done
    summarize "$counts"
    if [ "${#unfinished[@]}" -gt 0 ]; then
        echo "did not finish within ${STRATA_LOOM_TIMEOUT} s: ${#unfinished[@]} models (${unfinished[*]}), at least $partial interleavings explored among them"
    fi
    exit $status
    ;;
--mutants) ;;
*)
    echo "usage: bash scripts/loom.sh [--each | --mutants]" >&2
    exit 2
    ;;
esac

# Each mutant breaks one invariant on purpose, and the model named for it must catch it, or the
# suite has lost its teeth. A mutant must first compile: a build that fails is reported as such
# (it proves nothing). Then that one model runs alone and must fail:
#   panic   with a panic (an assertion of the model, or one of loom's own checks);
#   signal  with a panic, or killed by a signal (for a mutant that frees memory twice, whose
#           second free may crash the process before any assertion can run).
# A model that runs out of STRATA_MUTANT_TIMEOUT seconds (default 600) has not caught its mutant.
# Each entry: the mutant (a value of `--cfg strata_mutant`), the model, the failure required,
# and `long` for an entry CI skips.
# A model written `test:<target>::<name>` is not a loom model but the test `<name>` of the plain
# test target `verify/tests/<target>.rs`, built with the mutant's cfg alone (no loom cfgs): for
# mutants of the eviction policy, which no interleaving is needed to show.
# `relaxed_ring` has one model for each side of the ring (a stalled popper, a stalled pusher).
# `ignored_ghost` (the engine forgets its ghost filter) keeps every answer and bound right; only
# the reference S3-FIFO of `tests/oracle.rs` sees the victims change.
mutants=(
    "blind_append racing_inserts_of_one_key_in_the_split_list_leave_one_entry panic"
    "blind_publish racing_inserts_of_one_key_leave_one_entry panic"
    "stop_at_removed reinsert_during_a_removal_is_found panic"
    "early_drop removed_node_is_not_freed_under_a_reader panic"
    "relaxed_ring stalled_popper_takes_each_ring_item_once panic"
    "relaxed_ring stalled_pusher_overwrites_no_ring_item panic"
    "early_sentinel readers_during_table_growth_miss_nothing panic"
    "shared_peek a_follower_never_gets_a_value_expired_before_it_began panic long"
    "count_first racing_evictions_free_each_node_once panic"
    "load_over_remove removal_during_a_load_wins panic"
    "ignored_ghost test:oracle::engine_evicts_as_the_reference_does panic"
    "late_expiry test:stress::ttl_run_has_no_violations panic"
)
# `--mutants NAME...` runs only the named entries. `unbuildable` is the gate's own check: a
# mutant that does not compile (verify/tests/loom_engine.rs has a `compile_error!` under it), which
# the gate must report as a failure.
mutants+=("unbuildable racing_inserts_of_one_key_leave_one_entry panic")
wanted=("${@:2}")
unset STRATA_LOOM_COUNTS
status=0
for entry in "${mutants[@]}"; do
    read -r mutant model expect long <<<"$entry"
    # A long entry's model takes minutes to reach the mutant's bug (shared_peek: about ten on
    # the 2-core machine): only with STRATA_LOOM_LONG=1 (scripts/long.sh) or by name.
    if [ -n "$long" ] && [ "${STRATA_LOOM_LONG:-0}" != 1 ] && [ "${#wanted[@]}" = 0 ]; then
        echo "== mutant $mutant: long, skipped (STRATA_LOOM_LONG=1 runs it) =="
        continue
    fi
    if [ "${#wanted[@]}" -gt 0 ]; then
        [[ " ${wanted[*]} " == *" $mutant "* ]] || continue
    elif [ "$mutant" = unbuildable ]; then
        continue
    fi
    echo "== mutant $mutant: $model must fail ($expect) =="
    build_log=/tmp/strata-mutant-$mutant.build.log
    log=/tmp/strata-mutant-$mutant.log
    flag="--cfg strata_mutant=\"$mutant\""
    kind="loom model"
    if [[ $model == test:* ]]; then
        kind="test"
        target=${model#test:}
        target=${target%%::*}
        model=${model#test:"$target"::}
        bin=$(CARGO_TARGET_DIR="$CARGO_TARGET_DIR-plain-mutant" build_plain_test "$target" \
            "$flag" "$build_log") || bin=
    else
        bin=$(CARGO_TARGET_DIR="$CARGO_TARGET_DIR-mutant" build_models "$flag" "$build_log") ||
            bin=
    fi
    if [ ! -x "$bin" ]; then
        tail -20 "$build_log"
        echo "!! mutant $mutant does not build (log: $build_log): not judged, the gate fails"
        status=1
        continue
    fi
    models=$("$bin" --list 2>/dev/null || true)
    if ! grep -qxF "$model: test" <<<"$models"; then
        echo "!! no $kind named $model: the gate fails"
        status=1
        continue
    fi
    set +e
    STRATA_LOOM_LONG=1 timeout "${STRATA_MUTANT_TIMEOUT:-600}" "$bin" --exact "$model" >"$log" 2>&1
    rc=$?
    set -e
    panic=$(grep -m1 -A1 "panicked at" "$log" || true)
    if [ "$rc" = 0 ]; then
        echo "!! mutant $mutant survived: $model passed (log: $log)"
        status=1
    elif [ "$rc" = 124 ]; then
        echo "!! mutant $mutant survived: $model did not finish within ${STRATA_MUTANT_TIMEOUT:-600} s"
        status=1
    elif [ -n "$panic" ]; then
        echo "$panic"
        echo "ok: mutant $mutant caught by $model (panic, exit $rc)"
    elif [ "$expect" = signal ] && [ "$rc" -gt 128 ]; then
        grep -m1 -iE "double free|corrupt" "$log" || true
        echo "ok: mutant $mutant caught by $model (killed by signal $((rc - 128)))"
    else
        tail -5 "$log"
        echo "!! mutant $mutant: $model failed without the expected $expect (exit $rc, log: $log)"
        status=1
    fi
done
exit $status
