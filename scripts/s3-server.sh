#!/usr/bin/env bash
# Starts and stops a real S3 server for tests and benchmarks: Ceph's RADOS
# Gateway (radosgw) on a throw-away single-node Ceph cluster, all of it under
# one directory and on loopback only.
#
#   scripts/s3-server.sh start DIR   # DIR must be empty or absent
#   scripts/s3-server.sh stop DIR    # then the caller removes DIR
#
# `start` prints six shell-sourceable lines on stdout and nothing else:
#   S3_ENDPOINT=http://127.0.0.1:PORT
#   AWS_ACCESS_KEY_ID=...
#   AWS_SECRET_ACCESS_KEY=...
#   AWS_DEFAULT_REGION=us-east-1
#   SECOND_USER=repo-test-2 SECOND_ACCESS_KEY_ID=... SECOND_SECRET_ACCESS_KEY=...
# The second user owns nothing: tests grant it access with a bucket policy (the
# append-only tests allow it everything but s3:DeleteObject), as a host with
# narrower credentials than the administrator's.
# and fails (non-zero, the tail of the failing daemon's log on stderr, and
# whatever it had started stopped again) if the endpoint does not answer a
# signed S3 request in time.
#
# Why it is built this way:
# - One ceph-mon, one ceph-osd, one radosgw; no ceph-mgr (radosgw does not
#   need it). Pools have size 1 and 8 placement groups, so one OSD is enough.
# - The OSD uses the `memstore` object store: objects live in the OSD's
#   memory, no disk or block device is prepared, and the whole start takes a
#   few seconds. memstore writes everything it holds to its data directory on
#   a clean shutdown, so `stop` kills the OSD with SIGKILL instead: the data
#   is thrown away anyway. The OSD's size is S3_SERVER_MEMSTORE_BYTES (8 GiB
#   by default); memory is only used as objects are written. When it is
#   full, the OSD drops writes and S3 requests hang rather than fail, so give
#   a benchmark room (and the memory) for all it writes.
# - cephx is off (auth ... = none), but ceph-mon --mkfs still insists on a
#   keyring holding a mon. key, so one is generated under DIR. radosgw asks
#   for a "secure" connection to the monitor by default, which needs cephx:
#   it is told to use "crc". S3 requests are still authenticated: radosgw
#   checks AWS SigV4 signatures against the user that `start` creates with
#   radosgw-admin, with the fixed access key and secret below. Unsigned
#   requests are served as an anonymous user that owns nothing (creating a
#   bucket: 403).
# - radosgw's beast frontend gets tcp_nodelay=1: without it Nagle's algorithm and
#   delayed ACKs add about 40 ms to every request after the first on a kept-alive
#   connection (43 ms against 1 ms, measured), which would make any client that
#   reuses connections look slow.
# - Every file (config, keyring, monmap, mon store, logs, pid files, admin
#   sockets, crash dumps) is under DIR, and every command is given
#   `-c DIR/ceph.conf`, so /etc/ceph and /var/lib/ceph are never used and two
#   servers can run at once in different directories.
# - Ports: each start picks its own free ports on 127.0.0.1 for the monitor
#   and for radosgw, at random below the kernel's ephemeral range (so that
#   outgoing connections do not take them in the meantime); if another start
#   takes one first, that daemon is started again on another. The OSD binds
#   the first free ports of Ceph's own range (6800-7300) on 127.0.0.1 by
#   itself. Nothing listens on other addresses.
# - Speed: the monitor commits map changes every 50 ms instead of every
#   second (radosgw's first start creates its pools one map change at a
#   time), and the user is created before radosgw starts (radosgw-admin also
#   creates the pools and the default zone then).
# - radosgw serves path-style URLs (http://127.0.0.1:PORT/bucket/key); no
#   rgw_dns_name is set, so there is no virtual-host style. Its zonegroup is
#   "default"; SigV4 is accepted with any region in the credential scope.
#   us-east-1 is given so that clients send no LocationConstraint on
#   CreateBucket (radosgw refuses LocationConstraint=us-east-1).
# - Conditional writes, as measured with scripts/s3-check.py on Debian 12's
#   radosgw 16.2: PUT with If-None-Match: * gives 412 when the key exists.
#   On PUT, an ETag in If-Match or If-None-Match is compared without its
#   quotes: a quoted ETag (the form S3 returns) never matches. GET honours
#   If-Match and If-None-Match (304) with quoted ETags. CompleteMultipartUpload
#   ignores If-None-Match.
#
# Runs as root. Needs the Debian packages radosgw, ceph-mon, ceph-osd,
# ceph-common and curl (scripts/install-deps.sh), and python3 (standard
# library only). Environment: S3_SERVER_START_TIMEOUT (seconds, 90),
# S3_SERVER_MEMSTORE_BYTES.
set -euo pipefail

ACCESS_KEY="REPOTESTACCESSKEY001"
SECRET_KEY="repotestsecretkey0000000000000000000001"
SECOND_USER="repo-test-2"
SECOND_ACCESS_KEY="REPOTESTACCESSKEY002"
SECOND_SECRET_KEY="repotestsecretkey0000000000000000000002"
REGION="us-east-1"
RGW_NAME="client.rgw.s3"
START_TIMEOUT="${S3_SERVER_START_TIMEOUT:-90}"
MEMSTORE_BYTES="${S3_SERVER_MEMSTORE_BYTES:-8589934592}"

usage() {
    echo "usage: $0 start DIR | stop DIR" >&2
    exit 2
}

[ $# -eq 2 ] || usage
CMD="$1"
DIR="$(realpath -m -- "$2")"
CONF="$DIR/ceph.conf"

log() { echo "s3-server: $*" >&2; }

# ceph CLI and radosgw-admin against this directory's cluster only.
ceph_cli() { timeout 60 ceph -c "$CONF" --connect-timeout 30 "$@" </dev/null 2>>"$DIR/log/cli.err"; }
rgw_admin() { timeout 60 radosgw-admin -c "$CONF" "$@" </dev/null 2>>"$DIR/log/cli.err"; }

# Prints a TCP port that is free on 127.0.0.1, chosen at random below the
# ephemeral range.
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

# PIDs of processes run with `-c DIR/ceph.conf`, whether or not they wrote a
# pid file (pid files are written a little after the fork, and removed on a
# clean exit).
pids_using_conf() {
    local p arg prev
    for p in /proc/[0-9]*; do
        prev=""
        while IFS= read -r -d '' arg; do
            if [ "$prev" = "-c" ] && [ "$arg" = "$CONF" ]; then
                echo "${p#/proc/}"
                break
            fi
            prev="$arg"
        done 2>/dev/null <"$p/cmdline" || true
    done
}

pid_uses_conf() {
    local pid="$1"
    [ -r "/proc/$pid/cmdline" ] && tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qxF -- "$CONF"
}

# True once PID has exited (a zombie has exited: it only waits for its
# parent, PID 1 for a daemon, to reap it).
gone() {
    [ ! -e "/proc/$1" ] || grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
}

# Sends SIG to PID if it is one of ours, waits up to 5 s, then SIGKILL.
stop_pid() {
    local pid="$1" sig="$2" i
    pid_uses_conf "$pid" || return 0
    kill "-$sig" "$pid" 2>/dev/null || return 0
    STOPPED+=("$pid")
    for i in $(seq 50); do
        gone "$pid" && return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    for i in $(seq 50); do
        gone "$pid" && return 0
        sleep 0.1
    done
    log "process $pid did not exit"
    return 1
}

pid_from_file() {
    local f="$DIR/run/$1.pid"
    [ -s "$f" ] && tr -dc '0-9' <"$f"
    return 0
}

STOPPED=()

do_stop() {
    local pid rc=0
    # radosgw first (it is a client of the others), then the OSD (SIGKILL, see
    # above), then the monitor; then anything else still using this config.
    pid="$(pid_from_file "$RGW_NAME")"; [ -z "$pid" ] || stop_pid "$pid" TERM || rc=1
    pid="$(pid_from_file osd.0)"; [ -z "$pid" ] || stop_pid "$pid" KILL || rc=1
    pid="$(pid_from_file mon.a)"; [ -z "$pid" ] || stop_pid "$pid" TERM || rc=1
    for pid in $(pids_using_conf); do
        [ "$pid" = "$$" ] && continue
        stop_pid "$pid" KILL || rc=1
    done
    rm -f "$DIR"/run/*.pid 2>/dev/null
    # A killed daemon stays a zombie until PID 1 reaps it; wait a moment for
    # that, so that it does not show in `ps` right after we return.
    local i
    for i in $(seq 30); do
        pid=""
        for pid in "${STOPPED[@]}"; do
            [ -e "/proc/$pid" ] && break
            pid=""
        done
        [ -n "$pid" ] || break
        sleep 0.1
    done
    return $rc
}

# While starting: the logs to show if the start fails, and why it failed.
CURRENT_LOG=""
FAIL_MSG=""
STARTED=0

fail() {
    FAIL_MSG="$*"
    exit 1
}

# EXIT trap of `start`: on any failure, show the logs and stop what started.
on_start_exit() {
    local rc=$? f
    [ "$STARTED" = 1 ] && return 0
    trap - EXIT INT TERM
    # Stop first: printing may fail (stderr closed, SIGPIPE).
    trap '' PIPE
    set +e
    do_stop
    {
        echo "s3-server: start failed: ${FAIL_MSG:-unexpected error (exit status $rc)}"
        for f in $CURRENT_LOG "$DIR/log/cli.err"; do
            if [ -s "$f" ]; then
                echo "---- last lines of $f ----"
                tail -n 30 "$f"
            fi
        done
    } >&2
    exit 1
}

write_conf() {
    local fsid="$1" mon_port="$2" rgw_port="$3"
    cat >"$CONF" <<EOF
[global]
fsid = $fsid
mon_host = v2:127.0.0.1:$mon_port
public_addr = 127.0.0.1
cluster_addr = 127.0.0.1
ms_bind_msgr1 = false
ms_bind_ipv6 = false
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
keyring = $DIR/keyring
run_dir = $DIR/run
admin_socket = $DIR/run/\$name.asok
crash_dir = $DIR/crash
mon_cluster_log_file = $DIR/log/cluster.log
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
osd_crush_chooseleaf_type = 0
mon_allow_pool_size_one = true
mon_warn_on_pool_no_redundancy = false
mon_max_pg_per_osd = 1000

[mon]
mon_data = $DIR/mon
log_file = $DIR/log/\$name.log
pid_file = $DIR/run/\$name.pid
# Fail at once if the port was taken meanwhile (start then picks another)
# instead of retrying 3 times 5 s apart.
ms_bind_retry_count = 1
mon_data_avail_crit = 0
mon_data_avail_warn = 0
mon_allow_pool_delete = true
# Commit map changes at once rather than batching them for 1 s: radosgw's
# first start makes about a dozen of them (pools), one after the other.
paxos_propose_interval = 0.05

[osd]
osd_data = $DIR/osd
osd_objectstore = memstore
memstore_device_bytes = $MEMSTORE_BYTES
log_file = $DIR/log/\$name.log
pid_file = $DIR/run/\$name.pid

[$RGW_NAME]
rgw_frontends = beast endpoint=127.0.0.1:$rgw_port tcp_nodelay=1
# radosgw defaults to "secure" mode towards the monitor, which needs cephx.
ms_mon_client_mode = crc
# Give up (and exit non-zero) instead of retrying for 5 minutes.
client_mount_timeout = $START_TIMEOUT
rgw_init_timeout = $START_TIMEOUT
rgw_data = $DIR/rgw
log_file = $DIR/log/\$name.log
pid_file = $DIR/run/\$name.pid
EOF
}

# Sets up and starts the monitor on a new port; returns 1 if it could not
# bind (another start took the port), fails on anything else.
start_mon() {
    local fsid="$1" mon_port="$2" rgw_port="$3"
    rm -rf "$DIR/mon" "$DIR/monmap"
    mkdir -p "$DIR/mon"
    write_conf "$fsid" "$mon_port" "$rgw_port"
    CURRENT_LOG="$DIR/log/mon.a.log $DIR/log/mon.out"
    monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$mon_port]" "$DIR/monmap" >>"$DIR/log/mon.out" 2>&1 \
        || fail "monmaptool"
    ceph-mon -c "$CONF" -i a --mkfs --monmap "$DIR/monmap" --keyring "$DIR/keyring" \
        </dev/null >>"$DIR/log/mon.out" 2>&1 || fail "ceph-mon --mkfs"
    if ! ceph-mon -c "$CONF" -i a </dev/null >>"$DIR/log/mon.out" 2>&1; then
        grep -qF "unable to bind monitor to v2:127.0.0.1:$mon_port/" "$DIR/log/mon.a.log" && return 1
        fail "ceph-mon"
    fi
    return 0
}

# Starts radosgw on RGW_PORT and waits until it answers HTTP; returns 1 if it
# could not bind the port (another start took it), fails on anything else.
start_rgw() {
    local rgw_port="$1" deadline="$2" endpoint="http://127.0.0.1:$1"
    sed -i "s/^rgw_frontends = .*/rgw_frontends = beast endpoint=127.0.0.1:$rgw_port tcp_nodelay=1/" "$CONF"
    rm -f "$DIR/run/$RGW_NAME.pid"
    CURRENT_LOG="$DIR/log/$RGW_NAME.log $DIR/log/rgw.out"
    # It daemonizes once it has its configuration from the monitor, before it
    # sets up its pools and zone and starts listening.
    radosgw -c "$CONF" -n "$RGW_NAME" </dev/null >>"$DIR/log/rgw.out" 2>&1 || fail "radosgw"
    until curl -s -o /dev/null --max-time 2 "$endpoint/"; do
        [ $SECONDS -lt $deadline ] || fail "radosgw did not answer on $endpoint within ${START_TIMEOUT}s"
        if ! alive "$RGW_NAME"; then
            sleep 0.5  # the pid file may not be written yet
            if ! alive "$RGW_NAME"; then
                grep -qF "failed to bind address 127.0.0.1:$rgw_port:" "$DIR/log/$RGW_NAME.log" && return 1
                fail "radosgw exited"
            fi
        fi
        if ! alive osd.0; then
            CURRENT_LOG="$DIR/log/osd.0.log $DIR/log/osd.out"
            fail "ceph-osd exited"
        fi
        sleep 0.2
    done
    return 0
}

# 0 once the endpoint answers a ListBuckets signed with SigV4 as the user,
# naming that user as the owner (signed here with the standard library, so
# boto3 is not needed).
s3_answers() {
    python3 - "$1" "$ACCESS_KEY" "$SECRET_KEY" "$REGION" <<'EOF'
import datetime, hashlib, hmac, sys, urllib.request
endpoint, key, secret, region = sys.argv[1:5]
host = endpoint.split("://", 1)[1]
now = datetime.datetime.now(datetime.timezone.utc)
amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
payload = hashlib.sha256(b"").hexdigest()
signed = "host;x-amz-content-sha256;x-amz-date"
canonical = f"GET\n/\n\nhost:{host}\nx-amz-content-sha256:{payload}\nx-amz-date:{amz_date}\n\n{signed}\n{payload}"
scope = f"{day}/{region}/s3/aws4_request"
to_sign = f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n" + hashlib.sha256(canonical.encode()).hexdigest()
k = ("AWS4" + secret).encode()
for part in (day, region, "s3", "aws4_request"):
    k = hmac.new(k, part.encode(), hashlib.sha256).digest()
signature = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
req = urllib.request.Request(endpoint + "/", headers={
    "x-amz-date": amz_date, "x-amz-content-sha256": payload,
    "Authorization": f"AWS4-HMAC-SHA256 Credential={key}/{scope}, "
                     f"SignedHeaders={signed}, Signature={signature}"})
try:
    with urllib.request.urlopen(req, timeout=5) as r:
        body = r.read()
except Exception as e:
    print(f"signed ListBuckets: {e}", file=sys.stderr)
    sys.exit(1)
# An anonymous ListBuckets also answers 200, with an empty owner.
if b"<ID>repo-test</ID>" not in body:
    print(f"signed ListBuckets: unexpected answer {body[:200]!r}", file=sys.stderr)
    sys.exit(1)
EOF
}

alive() {
    local pid
    pid="$(pid_from_file "$1")"
    [ -n "$pid" ] && pid_uses_conf "$pid"
}

do_start() {
    if [ -e "$DIR" ] && [ -n "$(ls -A "$DIR" 2>/dev/null)" ]; then
        log "$DIR is not empty"
        exit 2
    fi
    mkdir -p "$DIR"/{osd,run,log,rgw,crash}
    trap on_start_exit EXIT
    trap 'fail "interrupted"' INT TERM
    local deadline=$((SECONDS + START_TIMEOUT))

    # Only the monitor's mkfs needs these keys (cephx is off).
    ceph-authtool --create-keyring "$DIR/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
    ceph-authtool "$DIR/keyring" --gen-key -n client.admin --cap mon 'allow *' \
        --cap osd 'allow *' --cap mgr 'allow *' >/dev/null

    local fsid rgw_port mon_port tries=0
    fsid="$(cat /proc/sys/kernel/random/uuid)"
    rgw_port="$(free_port)"
    while :; do
        mon_port="$(free_port)"
        [ "$mon_port" != "$rgw_port" ] || continue
        start_mon "$fsid" "$mon_port" "$rgw_port" && break
        tries=$((tries + 1))
        [ $tries -lt 5 ] || fail "ceph-mon could not bind a port"
        log "port $mon_port was taken, trying another for ceph-mon"
    done

    # One OSD on memstore.
    CURRENT_LOG="$DIR/log/osd.0.log $DIR/log/osd.out"
    local osd_uuid osd_id
    osd_uuid="$(cat /proc/sys/kernel/random/uuid)"
    osd_id="$(ceph_cli osd new "$osd_uuid")" || fail "ceph osd new (monitor not answering?)"
    [ "$osd_id" = "0" ] || fail "unexpected OSD id '$osd_id'"
    ceph-osd -c "$CONF" -i 0 --mkfs --osd-uuid "$osd_uuid" </dev/null >>"$DIR/log/osd.out" 2>&1 \
        || fail "ceph-osd --mkfs"
    ceph-osd -c "$CONF" -i 0 </dev/null >>"$DIR/log/osd.out" 2>&1 || fail "ceph-osd"

    # The S3 user. radosgw-admin also creates radosgw's pools and its default
    # realm, zonegroup and zone. It runs before radosgw starts: radosgw-admin
    # notifies every radosgw watching the cluster of the new user, and a
    # radosgw that had exited (port taken, below) would make it wait 30 s for
    # that watch to time out.
    CURRENT_LOG="$DIR/log/osd.0.log"
    rgw_admin user create --uid=repo-test --display-name="repo test user" \
        --access-key="$ACCESS_KEY" --secret-key="$SECRET_KEY" >>"$DIR/log/cli.out" \
        || fail "radosgw-admin user create"
    rgw_admin user create --uid="$SECOND_USER" --display-name="repo test user 2" \
        --access-key="$SECOND_ACCESS_KEY" --secret-key="$SECOND_SECRET_KEY" >>"$DIR/log/cli.out" \
        || fail "radosgw-admin user create (second user)"

    tries=0
    until start_rgw "$rgw_port" "$deadline"; do
        tries=$((tries + 1))
        [ $tries -lt 5 ] || fail "radosgw could not bind a port"
        log "port $rgw_port was taken, trying another for radosgw"
        rgw_port="$(free_port)"
    done
    local endpoint="http://127.0.0.1:$rgw_port"

    until s3_answers "$endpoint" 2>>"$DIR/log/cli.err"; do
        [ $SECONDS -lt $deadline ] || fail "radosgw did not answer a signed request within ${START_TIMEOUT}s"
        sleep 0.2
    done
    STARTED=1
    trap - EXIT INT TERM

    echo "S3_ENDPOINT=$endpoint"
    echo "AWS_ACCESS_KEY_ID=$ACCESS_KEY"
    echo "AWS_SECRET_ACCESS_KEY=$SECRET_KEY"
    echo "AWS_DEFAULT_REGION=$REGION"
    echo "SECOND_USER=$SECOND_USER SECOND_ACCESS_KEY_ID=$SECOND_ACCESS_KEY SECOND_SECRET_ACCESS_KEY=$SECOND_SECRET_KEY"
}

case "$CMD" in
    start) do_start ;;
    stop) do_stop ;;
    *) usage ;;
esac
