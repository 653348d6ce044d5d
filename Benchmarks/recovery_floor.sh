#!/usr/bin/env bash
# How fast recovery could be if fetching WAL cost nothing: on the work directory of a kept
# `pg_compare.py --only 3` run, restores repo's base backup (not timed) and replays to the
# target time T three ways, alternating, each from a dropped page cache, timed from the
# server's start until it is paused at T:
#   repo     the restore_command `repo pg-restore` writes, prefetching live (as in pg_compare.py);
#   spooled  the same command with every segment already decompressed and synced in its spool
#            (what is left: replay plus one `repo wal-fetch` process per segment);
#   mv       restore_command = mv from uncompressed copies of the WAL synced beforehand on the
#            same file system (no archive, no decompression, no data to write at fetch time:
#            replay plus one sh + mv per segment, a floor no restore_command can go below).
# MODES (default all three) picks some of them. It prints each round's seconds and the disk's written / read MB and busy seconds meanwhile
# (/proc/diskstats of the device holding WORK), then each mode's median.
#
#   python3 Benchmarks/pg_compare.py --only 3 --keep --work /tmp/pgc3w --json /tmp/pgc3.json
#   sudo Benchmarks/recovery_floor.sh .build/release/repo /tmp/pgc3w "$(python3 -c \
#       'import json; print(json.load(open("/tmp/pgc3.json"))["recovery"]["target_time"])')" 3 [MODES]
#
# Run as root (drops the page cache; the server runs as postgres); PostgreSQL 15 from Debian.
set -euo pipefail
shopt -s inherit_errexit     # a failure inside one() (run as $(one …)) ends the script
repo_bin=$(readlink -f "$1"); work=$2; target=$3; rounds=${4:-3}; modes=${5:-repo spooled mv}
pgbin=/usr/lib/postgresql/15/bin
data=$work/restore-floor; spool=$work/spool-floor; staged=$work/floor-wal; port=26797
dev=$(basename "$(df --output=source "$work" | tail -1)")
stop() { runuser -u postgres -- "$pgbin/pg_ctl" -D "$data" stop -m immediate >/dev/null 2>&1 || true; }
# This run's prefetchers only: their command lines name this work directory's repository.
stop_prefetchers() { pkill -f -- "--repo $work/main/repo .*--prefetch-worker" || true; }
trap 'stop; stop_prefetchers; rm -rf "$data" "$spool" "$staged"' EXIT
disk() { awk -v d="$dev" '$3 == d { print $10, $6, $13 }' /proc/diskstats; }
one() {   # MODE: prints "seconds written_MB read_MB busy_s"
    stop; stop_prefetchers
    rm -rf "$data" "$spool" "$staged"
    mkdir -p "$spool"; chown postgres:postgres "$spool"; chmod 700 "$spool"
    REPO_CACHE_DIR=$work/cache-root "$repo_bin" pg-restore -q --repo "$work/main/repo" --key-file "$work/main/repo.key" \
        --pgdata "$data" --target-time "$target" --target-action pause >/dev/null
    local written
    written=$(grep '^restore_command' "$data/postgresql.auto.conf" | tail -1 | sed "s/^restore_command = '//; s/'\$//")
    case $1 in
    repo) echo "restore_command = 'REPO_WAL_SPOOL=$spool $written'" >> "$data/postgresql.auto.conf" ;;
    spooled)
        # The prefetcher itself fills the spool with every segment of timeline 1.
        runuser -u postgres -- "$repo_bin" wal-fetch --repo "$work/main/repo" --key-file "$work/main/repo.key" --spool "$spool" \
            --prefetch 100000 --prefetch-worker 000000010000000000000000 /dev/null
        echo "restore_command = 'REPO_WAL_SPOOL=$spool $written'" >> "$data/postgresql.auto.conf" ;;
    mv)
        runuser -u postgres -- cp -r "$work/main/plain-wal" "$staged"
        echo "restore_command = 'mv $staged/%f %p'" >> "$data/postgresql.auto.conf" ;;
    esac
    sync; echo 3 > /proc/sys/vm/drop_caches
    local d0 d1 t0 t1
    d0=$(disk); t0=$(date +%s.%N)
    runuser -u postgres -- "$pgbin/pg_ctl" -D "$data" -l "$data/server.log" -w \
        -o "-k $work/sock -p $port -c listen_addresses= -c archive_mode=off" start >/dev/null
    until [ "$(psql -h "$work/sock" -p $port -U postgres -qAtX -c 'select pg_get_wal_replay_pause_state()' postgres 2>/dev/null)" = paused ]; do
        if ! runuser -u postgres -- "$pgbin/pg_ctl" -D "$data" status >/dev/null; then   # recovery failed
            echo "recovery_floor.sh: the server stopped before reaching T ($1); its log ends:" >&2
            tail -5 "$data/server.log" >&2
            exit 1
        fi
        sleep 0.1
    done
    t1=$(date +%s.%N); d1=$(disk)
    stop
    python3 -c 'import sys; a = sys.argv[3].split(); b = sys.argv[4].split()
print("%.2f %d %d %.1f" % (float(sys.argv[2]) - float(sys.argv[1]), (int(b[0]) - int(a[0])) * 512 >> 20,
      (int(b[1]) - int(a[1])) * 512 >> 20, (int(b[2]) - int(a[2])) / 1000))' "$t0" "$t1" "$d0" "$d1"
}
declare -A all
for r in $(seq "$rounds"); do
    for m in $modes; do
        x=$(one $m)
        echo "round $r: $m $x (s to paused at T, disk written MB, read MB, busy s)"
        all[$m]="${all[$m]:-} ${x%% *}"
    done
done
for m in $modes; do
    python3 -c 'import statistics, sys; v = list(map(float, sys.argv[2:]))
print("%-8s median %.2f s (%s)" % (sys.argv[1], statistics.median(v), " / ".join("%.1f" % x for x in v)))' $m ${all[$m]}
done
