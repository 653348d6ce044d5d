#!/usr/bin/env bash
# Mount benchmark (release build): sequential read through the mount vs `repo dump` of the same
# snapshot, time to first byte after open, and listing 1,000 snapshots.
# Usage: Benchmarks/mount_bench.sh [SIZE_MB]   (needs root or fuse3 access; uses /tmp)
set -euo pipefail
REPO_BIN=${REPO_BIN:-$(cd "$(dirname "$0")/.." && pwd)/.build/release/repo}
MB=${1:-400}
W=$(mktemp -d /tmp/repo-mbench-XXXX)
export REPO_REPOSITORY=$W/repo REPO_PASSWORD=bench REPO_CACHE_DIR=$W/cache
trap 'fusermount3 -u -z $W/mnt 2>/dev/null || true; kill $MPID 2>/dev/null || true; rm -rf $W' EXIT
$REPO_BIN init -q
# A dump-like input: compressible text mixed with random blocks.
python3 - "$MB" > $W/input <<'PY'
import os, sys
mb = int(sys.argv[1]); out = sys.stdout.buffer
line = b"".join(b"%d\talpha-bravo %d\t%d.%02d\t2024-05-01 12:00:00+00\n" % (i, i * 7919 % 100000, i % 9999, i % 100) for i in range(20000))
for i in range(mb):
    out.write(os.urandom(1 << 19) if i % 2 else line[: 1 << 20][: 1 << 19] + os.urandom(1 << 19))
PY
$REPO_BIN store -q --name big.dump < $W/input > /dev/null
sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
t0=$(date +%s.%N); $REPO_BIN dump latest > /dev/null; t1=$(date +%s.%N)
dump=$(echo "$t1 - $t0" | bc)
mkdir $W/mnt; $REPO_BIN mount $W/mnt 2>$W/mount.log & MPID=$!
for i in $(seq 100); do grep -q " $W/mnt " /proc/mounts && break; sleep 0.1; done
F=$W/mnt/by-name/big.dump/latest/big.dump
t0=$(date +%s.%N); head -c 1 "$F" > /dev/null; t1=$(date +%s.%N)
ttfb=$(echo "($t1 - $t0) * 1000" | bc)
t0=$(date +%s.%N); dd if="$F" of=/dev/null bs=1M status=none; t1=$(date +%s.%N)
mnt=$(echo "$t1 - $t0" | bc)
cmp -s "$F" $W/input && same=yes || same=NO
kill -INT $MPID; wait $MPID || true
# 1,000 small snapshots, then list them through a fresh mount.
for i in $(seq 1000); do echo "$i" | $REPO_BIN store -q --name s$((i % 20)).sql --time "2024-01-01T00:00:00Z" --tag t$((i % 5)) > /dev/null & 
  if (( i % 8 == 0 )); then wait; fi; done; wait
$REPO_BIN mount $W/mnt 2>>$W/mount.log & MPID=$!
for i in $(seq 100); do grep -q " $W/mnt " /proc/mounts && break; sleep 0.1; done
t0=$(date +%s.%N); n=$(ls -l $W/mnt/snapshots | wc -l); t1=$(date +%s.%N)
list=$(echo "($t1 - $t0) * 1000" | bc)
kill -INT $MPID; wait $MPID || true
size=$(stat -c %s $W/input)
printf "input %d MB; dump %.2f s (%.0f MB/s); mount dd %.2f s (%.0f MB/s); ratio %.2f; bytes equal: %s\n" \
  $((size / 1000000)) $dump $(echo "$size / $dump / 1000000" | bc -l) $mnt $(echo "$size / $mnt / 1000000" | bc -l) $(echo "$dump / $mnt" | bc -l) $same
printf "first byte after open: %.0f ms; ls -l of snapshots/ (%d entries): %.0f ms\n" $ttfb $((n - 2)) $list
