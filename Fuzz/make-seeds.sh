#!/usr/bin/env bash
# Regenerates seed inputs from a real repository: builds `repo`, makes a small repository with
# streams, a backed-up tree (non-UTF-8 names, symlinks, a file long enough for content lists),
# a pin and a default policy, then lets the fuzz binary (built by scripts/fuzz.sh) decrypt its
# objects and write one seed per object and harness, re-sealed under the harnesses' fixed key
# where encrypted. The seeds are merged into Fuzz/corpus/<harness>/ (libFuzzer -merge=1, so
# only inputs that add coverage are kept).
#
#   Fuzz/make-seeds.sh            # after scripts/fuzz.sh has built Fuzz/.build/release/repo-fuzz
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
swift build --product repo >/dev/null
repo="$PWD/.build/debug/repo"
fuzz="$PWD/Fuzz/.build/release/repo-fuzz"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export REPO_REPOSITORY="$work/repo" REPO_PASSWORD=seeds REPO_CACHE_DIR="$work/cache"

"$repo" init -q --chunk-avg 4K --compression zstd:3
printf 'CREATE TABLE t (id int);\nCOPY t FROM stdin;\n1\n2\n\\.\n' | "$repo" store -q --name db.sql --tag nightly --time 2024-05-01T02:00:00Z >/dev/null
head -c 3000 /dev/urandom | "$repo" store -q --name random.bin --host db1 >/dev/null
"$repo" store -q --stream a.sql='echo a' --stream b.sql='printf "b%.0s" $(seq 1 5000)' >/dev/null
mkdir -p "$work/tree/dir/sub" "$work/tree/empty"
printf 'hello\n' >"$work/tree/dir/hello.txt"
head -c 400000 /dev/urandom >"$work/tree/dir/big.bin"          # > 64 chunks: content lists
printf 'x' >"$work/tree/$(printf 'caf\351')"                       # a name that is not UTF-8
ln -s ../dir/hello.txt "$work/tree/dir/sub/link"
ln "$work/tree/dir/hello.txt" "$work/tree/dir/hardlink"
setfattr -n user.note -v fuzz "$work/tree/dir/hello.txt" 2>/dev/null || true
"$repo" backup -q "$work/tree" --tag tree >/dev/null
"$repo" pin latest --until 2030-01-01 --reason "legal hold" >/dev/null
"$repo" policy set --keep-hot 7d --keep-warm 30d --keep-cold 7y --keep-tag release --tz Europe/Berlin >/dev/null

export ASAN_OPTIONS="detect_leaks=0:${ASAN_OPTIONS:-}"
# A Swift trap must reach libFuzzer as a deadly signal, not through the runtime's backtracer.
export SWIFT_BACKTRACE=enable=no
REPO_FUZZ_SEEDS="$work/repo:$work/seeds" "$fuzz"
for dir in "$work"/seeds/*/; do
    h=$(basename "$dir")
    mkdir -p "Fuzz/corpus/$h" "$work/merged/$h"
    REPO_FUZZ_HARNESS="$h" "$fuzz" -merge=1 "$work/merged/$h" "Fuzz/corpus/$h" "$dir" >/dev/null 2>&1
    rm -rf "Fuzz/corpus/$h" && mv "$work/merged/$h" "Fuzz/corpus/$h"
    echo "$h: $(ls "Fuzz/corpus/$h" | wc -l) inputs, $(du -sk "Fuzz/corpus/$h" | cut -f1) KB"
done
