#!/usr/bin/env bash
# The test command (README and .ci/run): installs the system packages, builds, runs every test
# (unit and integration) and ends with one plain line "tests: N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
./scripts/install-deps.sh || exit 1
log="$(mktemp)"
# The suites are XCTest; --disable-swift-testing keeps Swift Testing's empty run out of the tail.
swift test --disable-swift-testing 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
summary=$(grep -E "^[[:space:]]*Executed [0-9]+ tests?, with [0-9]+ failures?" "$log" | tail -1)
total=$(sed -E 's/.*Executed ([0-9]+) tests?.*/\1/' <<<"$summary")
failed=$(sed -E 's/.*with ([0-9]+) failures?.*/\1/' <<<"$summary")
rm -f "$log"
if [ -z "$summary" ]; then echo "tests: no test summary found (build failure?)"; exit 1; fi
# The fuzz smoke run: build Fuzz/ (libFuzzer + ASan) and fuzz every parser for 2 seconds; it
# counts as one more test (`swift test` alone replays the corpus in FuzzCorpusTests).
total=$((total + 1))
if ./scripts/fuzz.sh --seconds 2; then echo "fuzz smoke run: passed"; else echo "fuzz smoke run: FAILED"; failed=$((failed + 1)); status=1; fi
echo "tests: $((total - failed)) passed, $failed failed"
exit "$status"
