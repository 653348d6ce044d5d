#!/usr/bin/env bash
# Starts and stops moto's standalone S3 server (an in-memory AWS mock written
# in Python) on loopback, with the same interface and output as
# scripts/s3-server.sh, for tests that want a light S3 without Ceph:
#
#   scripts/moto-server.sh start DIR   # DIR must be empty or absent
#   scripts/moto-server.sh stop DIR    # then the caller removes DIR
#
# `start` prints S3_ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
# AWS_DEFAULT_REGION lines on stdout and nothing else; on failure it exits
# non-zero with the tail of the server's log on stderr.
#
# Unlike radosgw, moto does not check signatures: any access key and secret
# are accepted, and unsigned requests too. Use scripts/s3-server.sh to test
# authentication and anything where a real server's behaviour matters.
#
# Port: picked at random among free ones on 127.0.0.1 below the kernel's
# ephemeral range; if another start takes it first, another is tried. The
# log and pid file are under DIR. Needs python3 with moto[server]
# (`pip install 'moto[server]'`).
set -euo pipefail

ACCESS_KEY="motoaccesskey"
SECRET_KEY="motosecretkey"
REGION="us-east-1"
START_TIMEOUT="${S3_SERVER_START_TIMEOUT:-30}"

[ $# -eq 2 ] || { echo "usage: $0 start DIR | stop DIR" >&2; exit 2; }
CMD="$1"
DIR="$(realpath -m -- "$2")"
PIDFILE="$DIR/moto.pid"
LOG="$DIR/moto.log"

free_port() {
    python3 - <<'EOF'
import random, socket
for _ in range(200):
    port = random.randint(20000, 32000)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        s.close()
    print(port)
    break
else:
    raise SystemExit("no free port found")
EOF
}

# True if PID is the moto server started for DIR (its log is our log).
ours() {
    [ -e "/proc/$1" ] && [ "$(readlink "/proc/$1/fd/1" 2>/dev/null)" = "$LOG" ]
}

gone() {
    [ ! -e "/proc/$1" ] || grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
}

do_stop() {
    local pid i
    [ -s "$PIDFILE" ] || return 0
    pid="$(tr -dc '0-9' <"$PIDFILE")"
    if [ -n "$pid" ] && ours "$pid"; then
        kill -TERM "$pid" 2>/dev/null || true
        for i in $(seq 50); do
            gone "$pid" && break
            sleep 0.1
        done
        gone "$pid" || kill -KILL "$pid" 2>/dev/null || true
        for i in $(seq 30); do
            [ -e "/proc/$pid" ] || break
            sleep 0.1
        done
    fi
    rm -f "$PIDFILE"
}

fail() {
    echo "moto-server: start failed: $*" >&2
    if [ -s "$LOG" ]; then
        echo "---- last lines of $LOG ----" >&2
        tail -n 30 "$LOG" >&2 || true
    fi
    do_stop || true
    exit 1
}

do_start() {
    if [ -e "$DIR" ] && [ -n "$(ls -A "$DIR" 2>/dev/null)" ]; then
        echo "moto-server: $DIR is not empty" >&2
        exit 2
    fi
    mkdir -p "$DIR"
    python3 -c 'import moto.server' 2>/dev/null || fail "python3 cannot import moto.server (pip install 'moto[server]')"
    trap 'fail interrupted' INT TERM
    local port pid tries=0 deadline=$((SECONDS + START_TIMEOUT))
    while :; do
        port="$(free_port)"
        # setsid: not in the caller's process group, so that its Ctrl-C does
        # not reach the server; stdout and stderr to the log so that a caller
        # reading our stdout to its end is not kept waiting.
        setsid python3 -m moto.server -H 127.0.0.1 -p "$port" </dev/null >"$LOG" 2>&1 &
        pid=$!
        echo "$pid" >"$PIDFILE"
        until curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$port/"; do
            if gone "$pid"; then
                grep -q "Address already in use" "$LOG" || fail "moto server exited"
                tries=$((tries + 1))
                [ $tries -lt 5 ] || fail "no port could be bound"
                echo "moto-server: port $port was taken, trying another" >&2
                continue 2
            fi
            [ $SECONDS -lt $deadline ] || fail "no answer on port $port within ${START_TIMEOUT}s"
            sleep 0.2
        done
        break
    done
    trap - INT TERM
    echo "S3_ENDPOINT=http://127.0.0.1:$port"
    echo "AWS_ACCESS_KEY_ID=$ACCESS_KEY"
    echo "AWS_SECRET_ACCESS_KEY=$SECRET_KEY"
    echo "AWS_DEFAULT_REGION=$REGION"
}

case "$CMD" in
    start) do_start ;;
    stop) do_stop ;;
    *) echo "usage: $0 start DIR | stop DIR" >&2; exit 2 ;;
esac
