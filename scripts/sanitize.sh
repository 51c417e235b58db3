#!/usr/bin/env bash
# The engine under memory and thread checkers: short checked stress runs of `strata-stress` (with
# drop counting) and the drop-count/leak tests, instrumented. Not part of CI: the sanitizers need
# the nightly toolchain with rust-src (`rustup component add rust-src --toolchain nightly`).
#
#   bash scripts/sanitize.sh            AddressSanitizer with LeakSanitizer (std rebuilt with
#                                       -Zbuild-std, target dir target/asan)
#   bash scripts/sanitize.sh thread     ThreadSanitizer (-Zbuild-std, target dir target/tsan)
#   bash scripts/sanitize.sh valgrind   valgrind memcheck on stable builds (target/valgrind);
#                                       also what the sanitizer modes fall back to without nightly
#
# STRATA_SANITIZE_SECS sets the length of each stress run (default 20 s; valgrind runs a quarter
# of it, as it is some 50 times slower). Logs go to target/sanitize-logs/<mode>/; the script ends
# with one line per step and exits 1 if any step failed.
#
# What runs, in every mode:
#   1. strata-stress --threads 2 --count-drops                 (eviction, loaders)
#   2. strata-stress --threads 4 --count-drops --ttl-ms 1      (eviction and expiry)
#   3. strata-stress --threads 2 --count-drops --no-eviction   (replace and remove only)
#   4. verify's tests/stress.rs: short stress runs, the exact-accounting runs
#      (every_value_is_accounted_for, _with_ttl, _weighted) and their sabotaged twins, the
#      checker's own tests
#   5. verify's tests/model.rs (the proptest models)
#   6. the engine's unit and integration tests
set -uo pipefail
cd "$(dirname "$0")/.."

mode=${1:-address}
case "$mode" in
address | thread | valgrind) ;;
*)
    echo "usage: bash scripts/sanitize.sh [address | thread | valgrind]" >&2
    exit 2
    ;;
esac
secs=${STRATA_SANITIZE_SECS:-20}
host=$(rustc -vV | sed -n 's/^host: //p')

nightly_with_src() {
    cargo +nightly --version >/dev/null 2>&1 &&
        [ -d "$(rustc +nightly --print sysroot)/lib/rustlib/src/rust/library" ]
}
# Without rust-src, std cannot be rebuilt instrumented: the sanitizers then run on the
# precompiled std for ASan (it still sees every access the engine and the tests make), and TSan
# cannot run at all (it refuses the ABI mismatch). Without nightly at all, valgrind stands in.
build_std=1
if [ "$mode" != valgrind ] && ! nightly_with_src; then
    if [ "$mode" = thread ]; then
        # TSan refuses to link crates against an uninstrumented std (an ABI mismatch).
        echo "!! ThreadSanitizer needs std rebuilt instrumented: rustup component add rust-src --toolchain nightly" >&2
        exit 2
    elif cargo +nightly --version >/dev/null 2>&1; then
        echo "!! nightly has no rust-src: std is not rebuilt instrumented (-Zbuild-std skipped)"
        build_std=0
    else
        echo "!! no nightly toolchain: falling back to valgrind"
        mode=valgrind
    fi
fi

logs=target/sanitize-logs/$mode
mkdir -p "$logs"
results=()
status=0

# step NAME COMMAND...: runs COMMAND with its output in $logs/NAME.log (and on the terminal).
step() {
    local name=$1
    shift
    echo "== $name: $* =="
    local start=$SECONDS
    "$@" 2>&1 | tee "$logs/$name.log"
    local rc=${PIPESTATUS[0]}
    local took=$((SECONDS - start))
    local found=""
    case "$mode" in
    address) found=$(grep -cE "ERROR: (AddressSanitizer|LeakSanitizer)" "$logs/$name.log") ;;
    thread) found=$(grep -c "WARNING: ThreadSanitizer" "$logs/$name.log") ;;
    valgrind) found=$(grep -cE "ERROR SUMMARY: [1-9]|definitely lost: [1-9]|indirectly lost: [1-9]" "$logs/$name.log") ;;
    esac
    local line
    line=$(printf "%-28s exit %-3s %4ss  %s reports" "$name" "$rc" "$took" "$found")
    results+=("$line")
    if [ "$rc" != 0 ]; then
        status=1
    fi
}

stress_runs() {
    local bin=("$@")
    step stress-t2 "${bin[@]}" --threads 2 --secs "$run_secs" --count-drops --seed 1
    step stress-t4-ttl "${bin[@]}" --threads 4 --secs "$run_secs" --count-drops --ttl-ms 1 --seed 2
    step stress-no-eviction "${bin[@]}" --threads 2 --secs "$run_secs" --count-drops --no-eviction --seed 3
}

if [ "$mode" = valgrind ]; then
    export CARGO_TARGET_DIR=target/valgrind
    run_secs=$(awk "BEGIN { print $secs / 4 }")
    vg=(valgrind --leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect --error-exitcode=1 --fair-sched=yes)
    cargo build --release -p strata-verify --bin strata-stress || exit 1
    stress_runs "${vg[@]}" "$CARGO_TARGET_DIR/release/strata-stress"
    # The test binaries, each run under valgrind.
    test_binaries() {
        cargo test --no-run --message-format=json "$@" 2>/dev/null | grep '"profile":{[^}]*"test":true' |
            sed -n 's/.*"executable":"\([^"]*\)".*/\1/p'
    }
    tests=$(test_binaries -p strata-verify --test stress --test model)
    engine_tests=$(test_binaries -p strata-engine --lib --tests)
    for t in $tests $engine_tests; do
        name=$(basename "$t" | sed 's/-[0-9a-f]*$//')
        # The sabotaged run that leaks a clone on purpose is skipped, as under ASan (see below).
        step "test-$name" "${vg[@]}" "$t" --test-threads=2 --skip accounting_catches_a_leaked_clone
    done
else
    short=asan
    if [ "$mode" = thread ]; then
        short=tsan
    fi
    export CARGO_TARGET_DIR=target/$short
    export RUSTFLAGS="-Zsanitizer=$mode -Cforce-frame-pointers=yes"
    export RUSTDOCFLAGS=$RUSTFLAGS
    # LeakSanitizer is part of AddressSanitizer on x86_64 Linux: a leak at exit fails the process.
    export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:detect_stack_use_after_return=1"
    # Report every race (not only the first), and fail the process at exit if there was one.
    export TSAN_OPTIONS="halt_on_error=0:second_deadlock_stack=1"
    run_secs=$secs
    if [ "$build_std" = 1 ]; then
        z=(-Zbuild-std --target "$host")
    else
        z=(--target "$host")
    fi
    cargo +nightly build "${z[@]}" --release -p strata-verify --bin strata-stress || exit 1
    stress_runs "$CARGO_TARGET_DIR/$host/release/strata-stress"
    verify_skip=()
    if [ "$mode" = address ]; then
        # This sabotaged run leaks a value's clone on purpose (`mem::forget`), to show the ledger
        # names it; LeakSanitizer rightly reports that clone, so it runs under TSan only (valgrind
        # skips it too, below).
        verify_skip=(--skip accounting_catches_a_leaked_clone)
    fi
    step test-verify cargo +nightly test "${z[@]}" -p strata-verify --test stress --test model -- \
        ${verify_skip[@]+"${verify_skip[@]}"}
    skip=()
    if [ "$mode" = thread ]; then
        # Under TSan a by-ref hit is seen to allocate once per 128 hits (23 in 3,000: the
        # interval at which crossbeam-epoch collects, which its sanitizer build does
        # differently); the allocation-counting test is for the uninstrumented builds.
        skip=(--skip by_ref_loads_do_not_allocate_on_a_hit)
    fi
    step test-engine cargo +nightly test "${z[@]}" -p strata-engine --lib --tests -- "${skip[@]}"
fi

echo "== sanitize.sh $mode: summary (logs in $logs) =="
printf "%s\n" "${results[@]}"
for log in "$logs"/stress-*.log; do
    echo "$(basename "$log" .log): $(grep -E "^(ops|histories checked|violations|values created)" "$log" | tr '\n' ' ')"
done
exit $status
