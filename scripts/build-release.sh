#!/usr/bin/env bash
# Builds the release binary with the Swift runtime and Foundation linked in statically and
# prints its path. A process then starts in about a millisecond instead of spending 8–10 ms
# loading and binding the shared Swift libraries: most of the cost of a `wal-push` per WAL
# segment (README, "PostgreSQL point-in-time recovery"). Static Foundation needs its archives
# in one link group (their references go both ways).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
group=(-Xlinker --start-group)
for lib in Foundation FoundationInternationalization FoundationEssentials CoreFoundation \
           _FoundationCollections _FoundationICU _FoundationCShims; do
    group+=(-Xlinker "-l$lib")
done
group+=(-Xlinker --end-group)
swift build -c release --product repo --static-swift-stdlib "${group[@]}" >&2
echo "$PWD/.build/release/repo"
