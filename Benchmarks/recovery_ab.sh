#!/usr/bin/env bash
# Interleaved A/B of two repo binaries on the recovery of pg_compare.py's part 4: each round
# restores the kept run's base backup with `repo pg-restore --start` to the target time T, as
# pg_compare.py does it (page cache dropped first, REPO_WAL_SPOOL set, the same server
# options), alternating the binaries, and prints every round and each binary's median.
#
#   python3 Benchmarks/pg_compare.py --only 3 --keep --work /tmp/pgc3w --json /tmp/pgc3.json
#   sudo Benchmarks/recovery_ab.sh OLD NEW /tmp/pgc3w "$(python3 -c \
#       'import json; print(json.load(open("/tmp/pgc3.json"))["recovery"]["target_time"])')" 3
#
# Run as root (drops the page cache; pg-restore --start runs the server as postgres).
set -euo pipefail
a=$(readlink -f "$1"); b=$(readlink -f "$2"); work=$3; target=$4; rounds=${5:-3}
pgbin=/usr/lib/postgresql/15/bin
data=$work/restore-ab; spool=$work/spool-ab; port=26802
stop() { runuser -u postgres -- "$pgbin/pg_ctl" -D "$data" stop -m immediate >/dev/null 2>&1 || true; }
# This run's prefetchers only: their command lines name this work directory's repository.
stop_prefetchers() { pkill -f -- "--repo $work/main/repo .*--prefetch-worker" || true; }
trap 'stop; stop_prefetchers; rm -rf "$data"' EXIT
one() {   # BINARY: prints "total_s recovery_s"
    stop; rm -rf "$data" "$spool"
    mkdir -p "$spool"; chown postgres:postgres "$spool"; chmod 700 "$spool"
    sync; echo 3 > /proc/sys/vm/drop_caches
    local t0 t1 out
    t0=$(date +%s.%N)
    out=$(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$(getent passwd postgres | cut -d: -f6)" LANG=C.UTF-8 TZ=UTC \
          REPO_CACHE_DIR="$work/cache-root" REPO_WAL_SPOOL="$spool" \
          "$1" pg-restore --json --repo "$work/main/repo" --key-file "$work/main/repo.key" --pgdata "$data" \
          --target-time "$target" --target-action pause --start \
          --server-options "-k $work/sock -p $port -c listen_addresses= -c archive_mode=off")
    t1=$(date +%s.%N)
    stop
    stop_prefetchers
    python3 -c 'import json, sys; j = json.loads(sys.argv[1]); assert j["outcome"] == "paused", j
print("%.2f %.2f" % (float(sys.argv[3]) - float(sys.argv[2]), j["recovery_seconds"]))' "$out" "$t0" "$t1"
}
ra=(); rb=()
for r in $(seq "$rounds"); do
    x=$(one "$a"); y=$(one "$b")
    echo "round $r: A $x  B $y (total s, recovery s)"
    ra+=("${x%% *}"); rb+=("${y%% *}")
done
python3 - "${#ra[@]}" "${ra[@]}" "${rb[@]}" <<'PY'
import statistics, sys
n = int(sys.argv[1]); a = list(map(float, sys.argv[2:2 + n])); b = list(map(float, sys.argv[2 + n:]))
print("median total: A %.2f s, B %.2f s, A/B %.3f" % (statistics.median(a), statistics.median(b), statistics.median(a) / statistics.median(b)))
PY
