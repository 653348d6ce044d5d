#!/usr/bin/env bash
# Coverage-guided fuzzing of every parser that reads repository bytes (Fuzz/README.md).
#
#   scripts/fuzz.sh [--runs N] [--seconds S] [--no-build] [--merge] [harness…]
#   scripts/fuzz.sh --minimise [--no-build] [harness…]
#
# Builds Fuzz/ (libFuzzer + AddressSanitizer, release) and runs each harness (all by default)
# one after another: --runs N executions each, or --seconds S each, whichever ends first
# (default: 10 seconds).
# The committed corpus Fuzz/corpus/<harness>/ (and Fuzz/regressions/<harness>/, inputs that once
# crashed) is read, never written; new inputs go to
# Fuzz/.work/<harness>/ and crashing inputs to Fuzz/crashes/<harness>-crash-… (both untracked).
# --merge then folds the new inputs into the committed corpus, minimised (libFuzzer -merge=1).
# Prints executions and exec/s per harness; exits 1 if any harness crashed. --minimise shrinks
# the committed corpus to a smallest set of inputs that still reaches every edge (libFuzzer
# -set_cover_merge=1 without hit counters): what is committed stays small.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"

runs="" seconds="" build=1 merge=0 minimise=0 harnesses=()
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) runs="$2"; shift 2 ;;
        --seconds) seconds="$2"; shift 2 ;;
        --no-build) build=0; shift ;;
        --merge) merge=1; shift ;;
        --minimise) minimise=1; shift ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        -*) echo "unknown option $1" >&2; exit 2 ;;
        *) harnesses+=("$1"); shift ;;
    esac
done
[ -z "$runs" ] && [ -z "$seconds" ] && seconds=10
all=(config keyslot pack-header pack-header-sealed blob sealed sealed-inner index-segment snapshot tree
     content-list lock retention mount-tree wal-archive)
[ ${#harnesses[@]} -eq 0 ] && harnesses=("${all[@]}")

bin=Fuzz/.build/release/repo-fuzz
if [ "$build" = 1 ]; then
    # SwiftPM reuses its cached build plan of the `..` path dependency and then misses source
    # files added to the main package since ("cannot find type … in scope"); dropping the
    # plan makes it plan again (compiled objects are kept, so the build stays incremental).
    rm -f Fuzz/.build/release/description.json Fuzz/.build/release.yaml
    swift build -c release --package-path Fuzz --product repo-fuzz \
        --sanitize=fuzzer -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library >Fuzz/.build-log 2>&1 || {
        tail -40 Fuzz/.build-log; echo "fuzz: build failed (full log in Fuzz/.build-log)" >&2; exit 1; }
fi
[ -x "$bin" ] || { echo "fuzz: $bin is missing (run without --no-build)" >&2; exit 1; }

# Leak reports would be about the Swift runtime's one-time allocations, not the parsers.
export ASAN_OPTIONS="detect_leaks=0:${ASAN_OPTIONS:-}"
# A Swift trap must reach libFuzzer as a deadly signal, not through the runtime's backtracer.
export SWIFT_BACKTRACE=enable=no
# Without coverage counters in the Swift modules libFuzzer would fuzz blind: refuse to.
counters=$(REPO_FUZZ_HARNESS=config "$bin" -runs=0 2>&1 | sed -n 's/.*(\([0-9]*\) inline 8-bit counters).*/\1/p' | head -1)
if [ "${counters:-0}" -lt 10000 ]; then
    echo "fuzz: $bin has ${counters:-no} coverage counters; the Swift modules are not instrumented" >&2; exit 1
fi

if [ "$minimise" = 1 ]; then
    for h in "${harnesses[@]}"; do
        rm -rf "Fuzz/.work/$h.min" && mkdir -p "Fuzz/.work/$h.min"
        REPO_FUZZ_HARNESS="$h" "$bin" -set_cover_merge=1 -use_counters=0 "Fuzz/.work/$h.min" "Fuzz/corpus/$h" \
            >"Fuzz/.work/$h.min.log" 2>&1 || { echo "fuzz: minimising $h failed (Fuzz/.work/$h.min.log)" >&2; exit 1; }
        rm -rf "Fuzz/corpus/$h" && mv "Fuzz/.work/$h.min" "Fuzz/corpus/$h"
        echo "$h: $(ls "Fuzz/corpus/$h" | wc -l) inputs, $(du -sb "Fuzz/corpus/$h" | cut -f1) bytes"
    done
    exit 0
fi

mkdir -p Fuzz/crashes
failed=0
printf '%-20s %12s %10s %8s  %s\n' harness executions exec/s seconds result
for h in "${harnesses[@]}"; do
    mkdir -p "Fuzz/.work/$h" "Fuzz/corpus/$h"
    budget=()
    [ -n "$runs" ] && budget+=("-runs=$runs")
    [ -n "$seconds" ] && budget+=("-max_total_time=$seconds")
    extra=()
    [ -d "Fuzz/regressions/$h" ] && extra+=("Fuzz/regressions/$h")
    log="Fuzz/.work/$h.log"
    start=$SECONDS
    REPO_FUZZ_HARNESS="$h" "$bin" "${budget[@]}" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="Fuzz/crashes/$h-" "Fuzz/.work/$h" "Fuzz/corpus/$h" "${extra[@]}" >"$log" 2>&1
    status=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    if [ "$status" = 0 ]; then result=ok; else
        result="CRASH (exit $status): $(grep -m1 -E 'ERROR: |Fatal error|SUMMARY' "$log" | cut -c1-100); see $log"
        failed=1
    fi
    printf '%-20s %12s %10s %8s  %s\n' "$h" "${execs:-?}" "${rate:-?}" "$((SECONDS - start))" "$result"
    if [ "$merge" = 1 ] && [ "$status" = 0 ]; then
        rm -rf "Fuzz/.work/$h.merged" && mkdir -p "Fuzz/.work/$h.merged"
        REPO_FUZZ_HARNESS="$h" "$bin" -merge=1 "Fuzz/.work/$h.merged" "Fuzz/corpus/$h" "Fuzz/.work/$h" \
            >"Fuzz/.work/$h.merge.log" 2>&1 &&
            rm -rf "Fuzz/corpus/$h" && mv "Fuzz/.work/$h.merged" "Fuzz/corpus/$h"
    fi
done
exit $failed
