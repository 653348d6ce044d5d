#!/usr/bin/env bash
# Base backups and point-in-time restore of a throwaway PostgreSQL cluster:
# first pg-backup, a second one of the unchanged cluster, one after a pgbench run, and
# pg-restore --target latest --start. Prints seconds and bytes added for each.
#
#   Benchmarks/pg_backup_bench.sh [--repo-bin PATH] [--scale N] [--work DIR]
#
# Needs PostgreSQL 15+ server binaries (/usr/lib/postgresql/*/bin) and, as root, the
# `postgres` user (the server and every repo command that writes the repository run as it).
set -euo pipefail
REPO_BIN=$(realpath "${REPO_BIN:-.build/debug/repo}"); SCALE=20; WORK=/tmp/pg-backup-bench
while [ $# -gt 0 ]; do
    case $1 in
        --repo-bin) REPO_BIN=$(realpath "$2"); shift 2 ;;
        --scale) SCALE=$2; shift 2 ;;
        --work) WORK=$2; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
PORT=$((20000 + RANDOM % 20000))
AS=(); [ "$(id -u)" -eq 0 ] && AS=(runuser -u postgres --)
stop() { for d in "$WORK/data" "$WORK/restores/latest"; do
    [ -f "$d/postmaster.pid" ] && "${AS[@]}" "$BIN/pg_ctl" -D "$d" -m immediate stop >/dev/null || true; done; }
trap stop EXIT
stop; rm -rf "$WORK"; mkdir -p "$WORK/restores"
[ "$(id -u)" -eq 0 ] && chown -R postgres: "$WORK"
export REPO_REPOSITORY=$WORK/repo REPO_PASSWORD=bench REPO_CACHE_DIR=$WORK/cache PGHOST=$WORK PGPORT=$PORT PGUSER=postgres
repo() { "${AS[@]}" env REPO_REPOSITORY="$REPO_REPOSITORY" REPO_PASSWORD="$REPO_PASSWORD" REPO_CACHE_DIR="$REPO_CACHE_DIR" \
    PGHOST="$PGHOST" PGPORT="$PGPORT" PGUSER="$PGUSER" "$REPO_BIN" "$@"; }
field() { python3 -c "import json,sys; d=json.load(sys.stdin); print(d['$1'])"; }

"${AS[@]}" "$BIN/initdb" -D "$WORK/data" -A trust -U postgres -N -E UTF8 --locale=C >/dev/null
repo init -q >/dev/null
cat >> "$WORK/data/postgresql.conf" <<EOF
archive_mode = on
archive_command = '$REPO_BIN wal-push --repo $WORK/repo %p'
max_wal_size = 4GB
EOF
"${AS[@]}" env REPO_PASSWORD="$REPO_PASSWORD" "$BIN/pg_ctl" -D "$WORK/data" -l "$WORK/log" -w \
    -o "-k $WORK -p $PORT -c listen_addresses= -F" start >/dev/null
"$BIN/pgbench" -i -s "$SCALE" -q postgres 2>/dev/null
psql -d postgres -qAtc CHECKPOINT
sleep 3
size=$(psql -d postgres -qAtc "SELECT pg_size_pretty(pg_database_size('postgres'))")
echo "cluster: pgbench scale $SCALE, database $size; repo: $("$REPO_BIN" --version); $(nproc) cores"

report() {
    local what=$1 out=$2
    printf '%-28s %7.2f s  %6s files read  %12s bytes added\n' "$what" "$(echo "$out" | field seconds)" \
        "$(( $(echo "$out" | field files) - $(echo "$out" | field unchanged_files) ))" "$(echo "$out" | field new_bytes)"
}
report "first pg-backup" "$(repo pg-backup --pgdata "$WORK/data" --fast --json)"
sleep 3
report "unchanged pg-backup" "$(repo pg-backup --pgdata "$WORK/data" --fast --json)"
"$BIN/pgbench" -c 2 -T 20 postgres >/dev/null 2>&1
psql -d postgres -qAtc CHECKPOINT
sleep 3
report "after 20 s of pgbench" "$(repo pg-backup --pgdata "$WORK/data" --fast --json)"
psql -d postgres -qAtc "SELECT pg_switch_wal()" >/dev/null
sleep 2

start=$(date +%s.%N)
out=$("$REPO_BIN" pg-restore --pgdata "$WORK/restores/latest" --target latest --start --json \
    --server-options "-k $WORK -p $((PORT + 1)) -c listen_addresses= -c archive_mode=off" 2>/dev/null)
end=$(date +%s.%N)
printf '%-28s %7.2f s  (restore %.2f s, recovery until promoted %.2f s, %s bytes)\n' "pg-restore --target latest" \
    "$(echo "$end - $start" | bc)" "$(echo "$out" | field seconds)" "$(echo "$out" | field recovery_seconds)" "$(echo "$out" | field bytes)"
