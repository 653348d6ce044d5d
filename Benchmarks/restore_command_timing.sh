#!/usr/bin/env bash
# How long PostgreSQL waits on `restore_command` during a point-in-time recovery from `repo`:
# restores the base backup of a kept `pg_compare.py` run (part 3), wraps the restore_command
# that `repo pg-restore` wrote with a timestamp before and after each call, replays to the
# target time T and prints the calls' median, mean and sum next to the whole recovery's time.
# The `date` calls of the wrapper add 1–2 ms a call to every figure alike.
#
#   python3 Benchmarks/pg_compare.py --only 3 --keep --work /tmp/pgc3w --repo-bin .build/release/repo
#   sudo Benchmarks/restore_command_timing.sh .build/release/repo /tmp/pgc3w "$(python3 -c \
#       'import json; print(json.load(open("Benchmarks/results/pg_compare.json"))["recovery"]["target_time"])')"
#
# Run as root (it drops the page cache and starts the server as postgres); PostgreSQL 15 from Debian.
set -euo pipefail
repo_bin=$(readlink -f "$1"); work=$2; target=$3; tag=${4:-timing}
pgbin=/usr/lib/postgresql/15/bin
data=$work/restore-$tag; spool=$work/spool-$tag; log=$work/restore-command-$tag.log; port=26799
stop() { runuser -u postgres -- "$pgbin/pg_ctl" -D "$data" stop -m immediate >/dev/null 2>&1 || true; }
stop
rm -rf "$data" "$spool" "$log"
mkdir -p "$spool"; chown postgres:postgres "$spool"; chmod 700 "$spool"
touch "$log"; chmod 666 "$log"
trap stop EXIT
REPO_CACHE_DIR=$work/cache-root "$repo_bin" pg-restore -q --repo "$work/main/repo" --key-file "$work/main/repo.key" \
    --pgdata "$data" --target-time "$target" --target-action pause >/dev/null
written=$(grep '^restore_command' "$data/postgresql.auto.conf" | tail -1 | sed "s/^restore_command = '//; s/'\$//")
echo "restore_command = 'echo S \$(date +%s.%N) >> $log; REPO_WAL_SPOOL=$spool $written; r=\$?; echo E \$(date +%s.%N) >> $log; exit \$r'" \
    >> "$data/postgresql.auto.conf"
sync; echo 3 > /proc/sys/vm/drop_caches
t0=$(date +%s.%N)
runuser -u postgres -- "$pgbin/pg_ctl" -D "$data" -l "$data/server.log" -w \
    -o "-k $work/sock -p $port -c listen_addresses= -c archive_mode=off" start >/dev/null
until [ "$(psql -h "$work/sock" -p $port -U postgres -qAtX -c 'select pg_get_wal_replay_pause_state()' postgres 2>/dev/null)" = paused ]; do
    sleep 0.1
done
t1=$(date +%s.%N)
python3 - "$log" "$t0" "$t1" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
d = [(float(b[1]) - float(a[1])) * 1000 for a, b in zip(rows, rows[1:]) if a[0] == "S" and b[0] == "E"]
print("recovery (server start until paused at T): %.1f s" % (float(sys.argv[3]) - float(sys.argv[2])))
print("restore_command: %d calls, median %.1f ms, mean %.1f ms, p90 %.1f ms, sum %.2f s"
      % (len(d), statistics.median(d), statistics.mean(d), sorted(d)[int(len(d) * 0.9)], sum(d) / 1000))
PY
