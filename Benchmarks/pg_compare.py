#!/usr/bin/env python3
"""repo against pgBackRest on the same PostgreSQL clusters and the same WAL, in one run.

Four measurements, each tool configured as its documentation says for archive_command and
nothing tuned beyond that: repo opens its repositories with a machine key file (`repo key add
--new-key-file F`, then `--key-file F`); pgBackRest uses `compress-type=zst`,
`compress-level=3`, synchronous archive-push (`archive-async=n`), `process-max` = the number of
cores for backup and restore, `start-fast=y`, and its own repository path.

  1. wal-push: wall time of the whole process (exec to exit) for one 16 MiB segment, over
     --segments distinct real segments that pgbench wrote, each pushed by `repo wal-push` and
     `pgbackrest archive-push` into seven archives, the order rotating from segment to segment:
     a fresh one per tool (each tool's default for WAL: repo zstd level 1, pgBackRest the
     configured level 3); one per tool pre-filled with --prefill segment objects (repo's also
     with --prefill-snapshots snapshots, `repo store` of tiny streams); and, as references,
     one per tool at zstd level 1 (`--compression zstd:1`, `--compress-level=1`) and one repo
     archive at level 3 (`--compression zstd:3`, against pgBackRest's fresh one). Pre-fill
     segments are a real segment's first page with its page address (offset 8) rewritten to
     the new name (FORMAT.md §27.3 checks only that long page header) and zeros after it, so
     they cost little disk; what grows is the number of objects, under the names pgBackRest
     files in its 256-segment directories. Also: process start and exit alone for each tool.
  2. Sustained archiving: a fresh cluster whose archive_command is one tool; `pgbench -i -s
     --archive-scale` then `pgbench -c 4 -j 2 -T --bench-seconds`; pg_wal/archive_status/*.ready
     counted every 0.2 s; WAL MB/s produced, max and final .ready count, time to drain,
     pg_stat_archiver.failed_count. --sustained-rounds runs per tool, alternating the order.
  3. Base backups of a >= 1 GB cluster (`pgbench -i -s --backup-scale`) whose archive_command
     pushes every segment into both archives (repo first, then pgBackRest): first, unchanged,
     and after `pgbench -T --bench-seconds`; pgBackRest full, incr, incr, and a full for
     reference. Wall time, CPU time, bytes added to each repository (du, without the WAL archive).
  4. Recovery (RTO): --wal-gib GiB of WAL after the base backups (pgbench -c 8 with
     asynchronous commit and checkpoint_timeout=1min, so full-page images keep the WAL coming),
     a target time T read from the server clock (then a write after T and pg_switch_wal,
     archived by both), and a restore to T with each tool, from the command's start until the
     server accepts connections and is paused at the target: `repo pg-restore --start` vs
     `pgbackrest restore` + `pg_ctl start -w` + polling every 0.2 s (as pg-restore polls); a
     pgBackRest restore with archive-async=y (its prefetching archive-get) as a reference;
     --restore-rounds of each, alternating the order, medians reported. Then, once, recovery
     with restore_command = cp from uncompressed copies of the same WAL in the page cache: how
     much of the time is PostgreSQL's replay. Every restored cluster must show the
     `sum(abalance)` read at T.

The page cache is dropped before each restore when /proc/sys/vm/drop_caches is writable. A
background libFuzzer run (`repo-fuzz`) is kept stopped during measurements, in SIGSTOP slices
of 4 s (a longer stop trips libFuzzer's wall-clock -timeout=10), and continued afterwards, also
on failure; CPU used meanwhile by processes outside this run is measured and printed. The repo
binary is copied into the work directory first (a rebuild during the run changes nothing).
Every server is stopped (`pg_ctl stop -m immediate`) and the work directory removed on exit.
Needs root (the servers and archive commands run as `postgres`), PostgreSQL 15 server
binaries, pgbackrest, and a release build of repo; about 25 minutes at the default sizes:

  python3 Benchmarks/pg_compare.py --repo-bin "$(scripts/build-release.sh)"
  python3 Benchmarks/pg_compare.py --quick          # small sizes, a trial run of every step
  python3 Benchmarks/pg_compare.py --load Benchmarks/results/pg_compare.json   # table only

Prints a table (ratio = pgBackRest / repo: above 1, repo is faster or smaller) and writes
JSON (--json, default Benchmarks/results/pg_compare.json; pg_compare-quick.json for --quick).
Progress goes to standard error.
"""
import argparse
import concurrent.futures
import contextlib
import datetime
import json
import os
import platform
import pwd
import re
import resource
import shlex
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

PGBIN = "/usr/lib/postgresql/15/bin"
SEGMENT = 16 * 1024 * 1024
PAGE = 8192
PASSWORD = "bench password"
HERE = os.path.dirname(os.path.abspath(__file__))
PG_USER = "postgres"


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


def die(msg):
    raise RuntimeError(msg)


# ---------------------------------------------------------------- processes and cleanup

class Fuzzer:
    """Keeps the background libFuzzer run (`repo-fuzz`) off the CPU during measurements.

    Not one long SIGSTOP: libFuzzer's -timeout=10 is wall time per input (SIGALRM), so a run
    stopped for more than 10 s reports a timeout on SIGCONT, writes a `*-timeout-*` artifact
    and exits. Instead the processes are stopped for STOP_SECONDS at a time and continued for
    RUN_SECONDS in between (at nice 19 they get little CPU then), found again by name each
    time (the fuzz script starts one process per harness) and signalled by pid."""

    STOP_SECONDS = 4.0
    RUN_SECONDS = 0.25

    def __init__(self):
        self.stopped = set()
        self.seen = set()
        self.active = 0
        self.cv = threading.Condition()
        self.thread = None

    def pids(self):
        out = subprocess.run(["pgrep", "-f", "repo-fuzz"], capture_output=True, text=True).stdout.split()
        return [int(p) for p in out if int(p) not in (os.getpid(), os.getppid())]

    def _stop(self):
        for pid in self.pids():
            try:
                os.kill(pid, signal.SIGSTOP)
                self.stopped.add(pid)
                self.seen.add(pid)
            except ProcessLookupError:
                pass

    def _cont(self):
        for pid in sorted(self.stopped):
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        self.stopped.clear()

    def _loop(self):
        while True:
            with self.cv:
                while self.active == 0:
                    self.cv.wait()
                self._stop()
                self.cv.wait(timeout=self.STOP_SECONDS)
                self._cont()
            time.sleep(self.RUN_SECONDS)

    def resume(self):
        with self.cv:
            self._cont()

    @contextlib.contextmanager
    def paused(self, measuring=True):
        with self.cv:
            if self.thread is None:
                self.thread = threading.Thread(target=self._loop, daemon=True)
                self.thread.start()
            self.active += 1
            self._stop()
            self.cv.notify_all()
        if LOAD and measuring:
            with LOAD.lock:
                LOAD.active += 1
        try:
            yield
        finally:
            if LOAD and measuring:
                with LOAD.lock:
                    LOAD.active -= 1
            with self.cv:
                self.active -= 1
                if self.active == 0:
                    self._cont()
                self.cv.notify_all()


class ForeignLoad:
    """CPU used by processes that are not this run's while measurements run: everything but
    this process's descendants, the servers of the work directory with their children and
    kernel threads (the fuzzers count: what they get between stops). Sampled once a second."""

    def __init__(self):
        self.active = 0
        self.seconds = 0.0          # wall seconds measured
        self.cpu = 0.0              # foreign CPU seconds in them
        self.top = {}               # command -> CPU seconds
        self.lock = threading.Lock()
        self.tick = os.sysconf("SC_CLK_TCK")
        threading.Thread(target=self.loop, daemon=True).start()

    def snapshot(self):
        procs = {}
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % d) as f:
                    st = f.read()
                rest = st.rsplit(")", 1)[1].split()
                with open("/proc/%s/cmdline" % d, "rb") as f:
                    cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
            except OSError:
                continue
            procs[int(d)] = (int(rest[1]), int(rest[11]) + int(rest[12]), cmd)
        ours = {}

        def is_ours(pid, depth=0):
            if pid in ours:
                return ours[pid]
            if pid not in procs or depth > 64:
                return False
            ppid, _, cmd = procs[pid]
            r = (pid == os.getpid() or pid == 2 or ppid == 2 or not cmd
                 or (C.work is not None and C.work in cmd) or (ppid > 1 and is_ours(ppid, depth + 1)))
            ours[pid] = r
            return r
        return {pid: (ticks, cmd) for pid, (ppid, ticks, cmd) in procs.items() if not is_ours(pid)}

    def loop(self):
        prev = None
        while True:
            time.sleep(1.0)
            with self.lock:
                active = self.active > 0
            if not active:
                prev = None
                continue
            cur = self.snapshot()
            if prev is not None:
                with self.lock:
                    self.seconds += 1.0
                    for pid, (ticks, cmd) in cur.items():
                        if pid in prev:
                            d = (ticks - prev[pid][0]) / self.tick
                            if d > 0:
                                self.cpu += d
                                key = cmd.split(" ")[0][-60:]
                                self.top[key] = self.top.get(key, 0.0) + d
            prev = cur

    def summary(self):
        top = sorted(self.top.items(), key=lambda kv: -kv[1])[:5]
        return {"measured_seconds": self.seconds, "foreign_cpu_seconds": round(self.cpu, 1),
                "foreign_cores": round(self.cpu / self.seconds, 3) if self.seconds else 0.0,
                "top": [[k, round(v, 1)] for k, v in top]}


FUZZ = Fuzzer()
LOAD = None


class Ctx:
    work = None
    keep = False
    repo_bin = None
    pgbr_bin = None
    sock = None
    clusters = []          # data directories that may have a running server
    cores = os.cpu_count() or 1


C = Ctx()


def pg_ids():
    pw = pwd.getpwnam(PG_USER)
    return pw.pw_uid, pw.pw_gid, pw.pw_dir


def pg_env(extra=None):
    _, _, home = pg_ids()
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": home, "LANG": "C.UTF-8", "TZ": "UTC"}
    env.update(extra or {})
    return env


def run(cmd, env=None, as_pg=True, check=True, stdin=None, timeout=None):
    """Runs cmd (as postgres through runuser by default); returns (seconds, stdout)."""
    full = (["runuser", "-u", PG_USER, "--"] if as_pg else []) + [str(c) for c in cmd]
    t0 = time.perf_counter()
    p = subprocess.run(full, env=env or pg_env(), input=stdin, capture_output=True, timeout=timeout)
    dt = time.perf_counter() - t0
    if check and p.returncode != 0:
        die("command failed (%d): %s\n%s%s" % (p.returncode, shlex.join(full), p.stdout.decode(errors="replace")[-1500:],
                                               p.stderr.decode(errors="replace")[-3000:]))
    return dt, p.stdout.decode(errors="replace")


def spawn_timed(cmd, env):
    """Runs cmd directly as postgres (setuid in the child, no runuser/PAM in between) and
    returns (wall seconds from spawn to exit, CPU seconds of the child and its threads and
    children, exit status, stderr)."""
    uid, gid, _ = pg_ids()
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, user=uid, group=gid, extra_groups=[], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd="/")
    # Reading stderr before wait4 is fine: the tools print nothing on success.
    err = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    dt = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    p.stderr.close()
    return dt, ru.ru_utime + ru.ru_stime, p.returncode, err.decode(errors="replace")


def children_cpu():
    """CPU seconds (user + system) of every child waited for so far, with their own children."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def mkdir_pg(path, mode=0o700):
    os.makedirs(path, exist_ok=True)
    uid, gid, _ = pg_ids()
    os.chown(path, uid, gid)
    os.chmod(path, mode)
    return path


def du(path, exclude=()):
    """Bytes allocated on disk (du), not following links; skips subtrees named in exclude."""
    total = 0
    ex = {os.path.join(path, e) for e in exclude}
    for root, dirs, files in os.walk(path):
        dirs[:] = [d for d in dirs if os.path.join(root, d) not in ex]
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_blocks * 512
            except FileNotFoundError:
                pass
    return total


def ancestors():
    pids, pid = set(), os.getpid()
    while pid > 1:
        pids.add(pid)
        try:
            with open("/proc/%d/stat" % pid) as f:
                pid = int(f.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            break
    return pids


def stray_pids():
    """Processes whose command line names the work directory (WAL prefetchers, pgBackRest's
    async archive-get) other than postgres servers: all started by this run."""
    out, mine = [], ancestors()
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) in mine:
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if C.work and C.work in cmd and "postgres" not in cmd.split(" ")[0]:
            out.append(int(d))
    return out


def kill_strays(wait=5.0):
    pids = stray_pids()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.time() + wait
    while pids and time.time() < deadline:
        pids = [p for p in pids if os.path.exists("/proc/%d" % p)]
        time.sleep(0.1)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def wait_strays(timeout):
    """Waits for detached helpers to finish on their own, then ends the rest."""
    deadline = time.time() + timeout
    while stray_pids() and time.time() < deadline:
        time.sleep(0.2)
    kill_strays()


def stop_server(datadir, mode="immediate"):
    if os.path.exists(os.path.join(datadir, "postmaster.pid")):
        run([PGBIN + "/pg_ctl", "-D", datadir, "-m", mode, "-w", "stop"], check=False, timeout=120)


def cleanup():
    for d in C.clusters:
        with contextlib.suppress(Exception):
            stop_server(d)
    with contextlib.suppress(Exception):
        kill_strays()
    FUZZ.resume()
    if C.work and not C.keep:
        shutil.rmtree(C.work, ignore_errors=True)


def drop_caches():
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


# ---------------------------------------------------------------- clusters

class Cluster:
    def __init__(self, name, port, archive_command):
        self.name = name
        self.dir = os.path.join(C.work, name)
        self.port = port
        self.archive_command = archive_command
        self.log = os.path.join(C.work, name + ".log")

    def init(self):
        run([PGBIN + "/initdb", "-D", self.dir, "-A", "trust", "-U", PG_USER, "-N", "-E", "UTF8", "--locale=C"])
        with open(os.path.join(self.dir, "postgresql.conf"), "a") as f:
            f.write("archive_mode = on\narchive_command = '%s'\nmax_wal_size = 4GB\n"
                    % self.archive_command.replace("'", "''"))
        return self

    def start(self):
        C.clusters.append(self.dir)
        run([PGBIN + "/pg_ctl", "-D", self.dir, "-l", self.log, "-w", "-t", "600",
             "-o", "-k %s -p %d -c listen_addresses=" % (C.sock, self.port), "start"])
        return self

    def stop(self, mode="fast"):
        stop_server(self.dir, mode)

    def sql(self, query, env=None):
        _, out = run([PGBIN + "/psql", "-h", C.sock, "-p", self.port, "-U", PG_USER, "-d", "postgres",
                      "-qAtX", "-v", "ON_ERROR_STOP=1", "-c", query], env=env, as_pg=False)
        return out.strip()

    def pgbench(self, args, env=None):
        e = dict(pg_env(), **(env or {}))
        _, out = run([PGBIN + "/pgbench", "-h", C.sock, "-p", self.port, "-U", PG_USER] + list(args) + ["postgres"],
                     env=e, as_pg=False)
        return out

    def lsn(self):
        return self.sql("SELECT pg_current_wal_lsn()")

    def lsn_diff(self, a, b):
        return int(self.sql("SELECT pg_wal_lsn_diff('%s', '%s')::bigint" % (a, b)))

    def ready(self):
        try:
            return sum(1 for n in os.listdir(os.path.join(self.dir, "pg_wal", "archive_status")) if n.endswith(".ready"))
        except FileNotFoundError:
            return 0

    def archiver(self):
        row = self.sql("SELECT archived_count, failed_count, coalesce(last_archived_wal, ''), "
                       "coalesce(last_failed_wal, '') FROM pg_stat_archiver").split("|")
        return {"archived_count": int(row[0]), "failed_count": int(row[1]), "last_archived_wal": row[2],
                "last_failed_wal": row[3]}

    def wait_archived(self, segment=None, timeout=3600):
        """Until no .ready file is left (and `segment`, if given, is archived)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.ready() == 0:
                a = self.archiver()
                if segment is None or a["last_archived_wal"][:24] >= segment:
                    return
            time.sleep(0.2)
        die("%s: WAL not archived after %d s: %s" % (self.name, timeout, self.archiver()))

    def switch_and_wait(self):
        seg = self.sql("SELECT pg_walfile_name(pg_switch_wal())")
        self.wait_archived(seg)
        return seg


# ---------------------------------------------------------------- the two tools

class RepoTool:
    def __init__(self, path):
        self.path = path
        mkdir_pg(os.path.dirname(path))
        self.key = os.path.join(os.path.dirname(path), os.path.basename(path) + ".key")
        self.cache = mkdir_pg(os.path.join(C.work, "cache"))

    def env(self, extra=None):
        return pg_env(dict({"REPO_CACHE_DIR": self.cache}, **(extra or {})))

    def create(self):
        run([C.repo_bin, "init", "-q", "--repo", self.path], env=self.env({"REPO_PASSWORD": PASSWORD}))
        run([C.repo_bin, "key", "add", "-q", "--repo", self.path, "--new-key-file", self.key],
            env=self.env({"REPO_PASSWORD": PASSWORD}))
        return self

    def args(self):
        return ["--repo", self.path, "--key-file", self.key]

    def push_cmd(self, wal):
        return [C.repo_bin, "wal-push", "-q"] + self.args() + [wal]

    def archive_command(self):
        return shlex.join([C.repo_bin, "wal-push", "-q"] + self.args()) + " %p"


class PgbrTool:
    def __init__(self, name, repo_path, cluster, archive_async=False, conf_name=None):
        self.stanza = name
        self.path = repo_path
        self.conf = os.path.join(C.work, "pgbackrest-%s.conf" % (conf_name or name))
        mkdir_pg(os.path.dirname(repo_path))
        for d in ("pgbr-log", "pgbr-lock", "pgbr-spool"):
            mkdir_pg(os.path.join(C.work, d))
        with open(self.conf, "w") as f:
            f.write("\n".join([
                "[global]",
                "repo1-path=%s" % repo_path,
                "repo1-retention-full=100",
                "compress-type=zst",
                "compress-level=3",
                "archive-async=%s" % ("y" if archive_async else "n"),
                "process-max=%d" % C.cores,
                "start-fast=y",
                "log-path=%s/pgbr-log" % C.work,
                "lock-path=%s/pgbr-lock" % C.work,
                "spool-path=%s/pgbr-spool" % C.work,
                "log-level-console=warn",
                "",
                "[%s]" % name,
                "pg1-path=%s" % cluster.dir,
                "pg1-port=%d" % cluster.port,
                "pg1-socket-path=%s" % C.sock,
                "pg1-user=%s" % PG_USER,
                ""]))
        os.chmod(self.conf, 0o644)

    def base(self):
        return [C.pgbr_bin, "--config=" + self.conf, "--stanza=" + self.stanza]

    def create(self):
        mkdir_pg(self.path, 0o750)
        run(self.base() + ["stanza-create"])
        return self

    def push_cmd(self, wal):
        return self.base() + ["archive-push", wal]

    def archive_command(self):
        return shlex.join(self.base() + ["archive-push"]) + " %p"

    def info(self):
        _, out = run(self.base() + ["info", "--output=json"])
        return json.loads(out)[0]


class Level:
    """A tool pushing at another compression level (repo: --compression zstd:N; pgBackRest:
    --compress-level=N), into its own archive."""

    def __init__(self, tool, level):
        self.tool, self.level = tool, level

    def push_cmd(self, wal):
        cmd = self.tool.push_cmd(wal)
        if isinstance(self.tool, RepoTool):
            return cmd[:-1] + ["--compression", "zstd:%d" % self.level, wal]
        return cmd[:-2] + ["--compress-level=%d" % self.level] + cmd[-2:]


# ---------------------------------------------------------------- helpers for figures

def median(xs):
    return statistics.median(xs)


def p90(xs):
    xs = sorted(xs)
    if len(xs) < 2:
        return xs[0]
    return statistics.quantiles(xs, n=10, method="inclusive")[8]


def segno(name):
    return int(name[8:16], 16) * 0x100 + int(name[16:24], 16)


def segname(tli, no):
    return "%08X%08X%08X" % (tli, no // 0x100, no % 0x100)


def is_segment(name):
    return re.fullmatch(r"[0-9A-F]{24}", name) is not None


def pg_time_now(cluster):
    """Server clock in UTC: (RFC 3339 for repo, PostgreSQL's text form for pgBackRest)."""
    row = cluster.sql("SELECT to_char(t, 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), to_char(t, 'YYYY-MM-DD HH24:MI:SS.US') || '+00' "
                      "FROM (SELECT clock_timestamp() AT TIME ZONE 'UTC' AS t) s")
    a, b = row.split("|")
    return a, b


# ---------------------------------------------------------------- 1. wal-push

def collect_segments(cluster, samples, n, scale):
    cluster.pgbench(["-i", "-s", scale, "-q"])
    cluster.sql("CHECKPOINT")
    start = cluster.sql("SELECT pg_walfile_name(pg_current_wal_lsn())")
    log("segments: pgbench -c 4 -j 2 until %d full segments after %s are archived" % (n, start))
    deadline = time.time() + 900
    while True:
        names = sorted(x for x in os.listdir(samples) if is_segment(x) and x > start)
        if len(names) >= n:
            return names[:n]
        if time.time() > deadline:
            die("only %d segments after 15 minutes of pgbench" % len(names))
        cluster.pgbench(["-c", "4", "-j", "2", "-T", "5"], env={"PGOPTIONS": "-c synchronous_commit=off"})
        time.sleep(0.5)


def push_series(segs, tools, label):
    """Pushes every segment with each tool (rotating which goes first); returns per-tool lists
    of wall and CPU seconds."""
    res = {name: {"wall": [], "cpu": []} for name, _ in tools}
    env = pg_env()
    for i, seg in enumerate(segs):
        k = i % len(tools)
        order = tools[k:] + tools[:k]
        for name, tool in order:
            dt, cpu, rc, err = spawn_timed(tool.push_cmd(seg), env)
            if rc != 0:
                die("%s push of %s failed (%d): %s" % (name, seg, rc, err))
            res[name]["wall"].append(dt)
            res[name]["cpu"].append(cpu)
    for name, _ in tools:
        log("%s %s: median %.1f ms, p90 %.1f ms" % (label, name, 1000 * median(res[name]["wall"]), 1000 * p90(res[name]["wall"])))
    return res


def summarize_push(r):
    return {"median_ms": 1000 * median(r["wall"]), "p90_ms": 1000 * p90(r["wall"]), "min_ms": 1000 * min(r["wall"]),
            "max_ms": 1000 * max(r["wall"]), "cpu_median_ms": 1000 * median(r["cpu"]),
            "samples_ms": [round(1000 * x, 2) for x in r["wall"]]}


def prefill(segs, repo, pgbr, count, snapshots, first_page):
    """Fills both archives with `count` segment objects (names from 1 upwards that are not one
    of segs) and repo with `snapshots` tiny stored streams."""
    real = {segno(os.path.basename(s)) for s in segs}
    names, no = [], 1
    while len(names) < count:
        if no not in real:
            names.append(segname(1, no))
        no += 1
    fill = mkdir_pg(os.path.join(C.work, "m1", "fill"), 0o755)
    env = pg_env()
    totals = {"repo": 0.0, "pgbackrest": 0.0}
    lock = threading.Lock()

    def one(name):
        d = os.path.join(fill, name[-4:])
        os.makedirs(d, exist_ok=True)
        os.chmod(d, 0o755)
        path = os.path.join(d, name)
        page = bytearray(first_page)
        struct.pack_into("<Q", page, 8, segno(name) * SEGMENT)
        with open(path, "wb") as f:
            f.write(page)
            f.truncate(SEGMENT)
        os.chmod(path, 0o644)
        for tname, tool in (("repo", repo), ("pgbackrest", pgbr)):
            dt, _, rc, err = spawn_timed(tool.push_cmd(path), env)
            if rc != 0:
                die("prefill %s push of %s failed (%d): %s" % (tname, name, rc, err))
            with lock:
                totals[tname] += dt
        os.unlink(path)
        os.rmdir(d)

    t0 = time.time()
    with concurrent.futures.ThreadPoolExecutor(max_workers=2 * C.cores) as ex, FUZZ.paused(measuring=False):
        for i, _ in enumerate(ex.map(one, names)):
            if (i + 1) % 1000 == 0:
                log("prefill: %d/%d segments (%.0f s)" % (i + 1, len(names), time.time() - t0))
    seg_seconds = time.time() - t0

    def store(i):
        cmd = [C.repo_bin, "store", "-q"] + repo.args() + ["--name", "prefill-%04d" % i]
        for attempt in range(5):
            try:
                return run(cmd, env=repo.env(), stdin=b"tiny stream %d\n" % i)[0]
            except RuntimeError:
                if attempt == 4:
                    raise
                time.sleep(0.5)

    t0 = time.time()
    with concurrent.futures.ThreadPoolExecutor(max_workers=C.cores) as ex, FUZZ.paused(measuring=False):
        store_times = list(ex.map(store, range(snapshots)))
    snap_seconds = time.time() - t0
    wal_dir = os.path.join(repo.path, "wal", "00000001")
    objects = len([n for n in os.listdir(wal_dir) if is_segment(n)])
    snaps = len(os.listdir(os.path.join(repo.path, "snapshots")))
    pgbr_objects = 0
    for root, _, files in os.walk(os.path.join(pgbr.path, "archive")):
        pgbr_objects += sum(1 for f in files if re.match(r"[0-9A-F]{24}-", f))
    log("prefill: %d segments in %.0f s (mean push: repo %.1f ms, pgbackrest %.1f ms), %d snapshots in %.0f s"
        % (count, seg_seconds, 1000 * totals["repo"] / count, 1000 * totals["pgbackrest"] / count, snapshots, snap_seconds))
    return {"segments": count, "repo_wal_objects": objects, "repo_snapshots": snaps, "pgbackrest_wal_objects": pgbr_objects,
            "segment_seconds": seg_seconds, "snapshot_seconds": snap_seconds,
            "mean_prefill_push_ms": {k: 1000 * v / count for k, v in totals.items()},
            "mean_store_ms": 1000 * statistics.mean(store_times) if store_times else None,
            "repo_wal_dir_entries": len(os.listdir(wal_dir))}


def bench_wal_push(a, port):
    log("1. wal-push: segment source cluster")
    samples = mkdir_pg(os.path.join(C.work, "m1", "samples"), 0o755)
    cl = Cluster("m1-data", port, "test ! -f %s/%%f && cp %%p %s/%%f" % (samples, samples)).init().start()
    seg_names = collect_segments(cl, samples, a.segments, a.source_scale)
    segdir = mkdir_pg(os.path.join(C.work, "m1", "segs"), 0o755)
    segs = []
    for n in seg_names:
        dst = os.path.join(segdir, n)
        shutil.copyfile(os.path.join(samples, n), dst)
        os.chmod(dst, 0o644)
        with open(dst, "rb") as f:      # in the page cache for both tools
            while f.read(1 << 20):
                pass
        segs.append(dst)
    with open(segs[0], "rb") as f:
        first_page = f.read(PAGE)
    log("segments: %s … %s" % (seg_names[0], seg_names[-1]))

    repo = RepoTool(os.path.join(C.work, "m1", "repo-fresh")).create()
    pgbr = PgbrTool("m1fresh", os.path.join(C.work, "m1", "pgbr-fresh"), cl).create()
    repo_g = RepoTool(os.path.join(C.work, "m1", "repo-grown")).create()
    pgbr_g = PgbrTool("m1grown", os.path.join(C.work, "m1", "pgbr-grown"), cl).create()
    repo_1 = RepoTool(os.path.join(C.work, "m1", "repo-level1")).create()
    repo_3 = RepoTool(os.path.join(C.work, "m1", "repo-level3")).create()
    pgbr_1 = PgbrTool("m1level1", os.path.join(C.work, "m1", "pgbr-level1"), cl).create()

    log("1. wal-push: pre-filling two of the archives (%d segments, %d snapshots)" % (a.prefill, a.prefill_snapshots))
    pre = prefill(segs, repo_g, pgbr_g, a.prefill, a.prefill_snapshots, first_page)
    env = pg_env()
    os.sync()
    time.sleep(5)       # let writeback of the pre-fill settle before timing
    with FUZZ.paused():
        base = [spawn_timed(["/bin/true"], env)[0] for _ in range(20)]
        # Process start and exit alone: repo refuses a name that is not a WAL file's before it
        # opens anything; `pgbackrest version` loads and prints only.
        startup = {"repo": [spawn_timed([C.repo_bin, "wal-push", "-q", "/nonexistent/not-a-wal-file"], env)[0] for _ in range(20)],
                   "pgbackrest": [spawn_timed([C.pgbr_bin, "version"], env)[0] for _ in range(20)]}
        # Each segment goes into all four archives, the order rotating from segment to segment,
        # so that drift of this shared machine hits fresh and grown, repo and pgBackRest alike.
        # References, not the configuration under test: level 1 for both (repo wal-push
        # --compression zstd:1, which is also repo's default for WAL; pgbackrest
        # --compress-level=1), and repo at level 3 like pgBackRest's fresh archive
        # (--compression zstd:3), each into an archive of its own.
        res = push_series(segs, [("repo", repo), ("pgbackrest", pgbr), ("repo grown", repo_g), ("pgbackrest grown", pgbr_g),
                                 ("repo level 1", Level(repo_1, 1)), ("pgbackrest level 1", Level(pgbr_1, 1)),
                                 ("repo level 3", Level(repo_3, 3))], "wal-push")
    fresh = {"repo": res["repo"], "pgbackrest": res["pgbackrest"]}
    grown = {"repo": res["repo grown"], "pgbackrest": res["pgbackrest grown"]}
    level1 = {"repo": res["repo level 1"], "pgbackrest": res["pgbackrest level 1"]}
    stored = {"repo": du(os.path.join(repo.path, "wal")) / len(segs),
              "pgbackrest": du(os.path.join(pgbr.path, "archive")) / len(segs)}
    stored1 = {"repo": du(os.path.join(repo_1.path, "wal")) / len(segs),
               "pgbackrest": du(os.path.join(pgbr_1.path, "archive")) / len(segs)}
    stored3 = {"repo": du(os.path.join(repo_3.path, "wal")) / len(segs), "pgbackrest": stored["pgbackrest"]}
    level3 = {"repo": res["repo level 3"], "pgbackrest": res["pgbackrest"]}
    cl.stop("immediate")
    shutil.rmtree(cl.dir, ignore_errors=True)
    return {"segments": seg_names, "spawn_baseline_ms": 1000 * median(base),
            "startup_ms": {k: 1000 * median(v) for k, v in startup.items()},
            "fresh": {k: summarize_push(v) for k, v in fresh.items()},
            "grown": {k: summarize_push(v) for k, v in grown.items()},
            "level1": {k: summarize_push(v) for k, v in level1.items()},
            "level3": {k: summarize_push(v) for k, v in level3.items()},
            "prefill": pre, "stored_bytes_per_segment": stored, "stored_bytes_per_segment_level1": stored1,
            "stored_bytes_per_segment_level3": stored3}


# ---------------------------------------------------------------- 2. sustained archiving

def bench_sustained(a, tool_name, port):
    log("2. sustained archiving with %s" % tool_name)
    base = os.path.join(C.work, "m2-" + tool_name)
    mkdir_pg(base, 0o755)
    cl = Cluster("m2-%s-data" % tool_name, port, "true")
    if tool_name == "repo":
        tool = RepoTool(os.path.join(base, "repo")).create()
    else:
        tool = PgbrTool("m2", os.path.join(base, "pgbr"), cl)
    cl.archive_command = tool.archive_command()
    cl.init().start()
    if tool_name == "pgbackrest":
        tool.create()
    cl.sql("CHECKPOINT")
    samples = []
    stop = threading.Event()

    def sampler():
        t0 = time.perf_counter()
        while not stop.is_set():
            samples.append((time.perf_counter() - t0, cl.ready()))
            time.sleep(0.2)

    with FUZZ.paused():
        lsn0 = cl.lsn()
        th = threading.Thread(target=sampler, daemon=True)
        t0 = time.perf_counter()
        th.start()
        cl.pgbench(["-i", "-s", a.archive_scale, "-q"])
        t1, lsn1 = time.perf_counter(), cl.lsn()
        out = cl.pgbench(["-c", "4", "-j", "2", "-T", a.bench_seconds])
        t2, lsn2 = time.perf_counter(), cl.lsn()
        final_ready = cl.ready()
        while cl.ready() > 0 and time.perf_counter() - t2 < 1800:
            time.sleep(0.2)
        t3 = time.perf_counter()
        stop.set()
        th.join()
    arch = cl.archiver()
    m = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", out)
    w_init, w_run = cl.lsn_diff(lsn1, lsn0), cl.lsn_diff(lsn2, lsn1)
    r = {"wal_bytes": w_init + w_run, "seconds": t2 - t0, "wal_mb_per_s": (w_init + w_run) / 1e6 / (t2 - t0),
         "init_wal_mb_per_s": w_init / 1e6 / (t1 - t0), "run_wal_mb_per_s": w_run / 1e6 / (t2 - t1),
         "init_seconds": t1 - t0, "run_seconds": t2 - t1, "tps": float(m.group(1)) if m else None,
         "max_ready": max(c for _, c in samples), "final_ready": final_ready, "drain_seconds": t3 - t2,
         "archived_count": arch["archived_count"], "failed_count": arch["failed_count"],
         "ready_samples": [[round(t, 2), c] for t, c in samples]}
    log("%s: %.0f MB WAL in %.1f s (%.1f MB/s), max .ready %d, final %d, drained in %.1f s, failed %d"
        % (tool_name, r["wal_bytes"] / 1e6, r["seconds"], r["wal_mb_per_s"], r["max_ready"], final_ready,
           r["drain_seconds"], r["failed_count"]))
    cl.stop("immediate")
    shutil.rmtree(base, ignore_errors=True)
    shutil.rmtree(cl.dir, ignore_errors=True)
    return r


# ---------------------------------------------------------------- 3. base backups, 4. recovery

def repo_backup_bytes(repo):
    return du(repo.path, exclude=("wal",))


def pgbr_backup_bytes(pgbr):
    return du(os.path.join(pgbr.path, "backup"))


def bench_backups_and_recovery(a, port):
    log("3. base backups: cluster with archive_command into both archives")
    cl = Cluster("main-data", port, "true")
    repo = RepoTool(os.path.join(C.work, "main", "repo")).create()
    pgbr = PgbrTool("main", os.path.join(C.work, "main", "pgbr"), cl)
    # A third copy, uncompressed, for the replay floor of 4.
    plain = mkdir_pg(os.path.join(C.work, "main", "plain-wal"), 0o755)
    cl.archive_command = repo.archive_command() + " && " + pgbr.archive_command() + " && cp %%p %s/%%f" % plain
    cl.init().start()
    pgbr.create()
    t0 = time.time()
    cl.pgbench(["-i", "-s", a.backup_scale, "-q"])
    cl.sql("CHECKPOINT")
    cl.switch_and_wait()
    dbsize = int(cl.sql("SELECT pg_database_size('postgres')"))
    log("pgbench -i -s %d: database %.2f GB (%.0f s with archiving into both)" % (a.backup_scale, dbsize / 1e9, time.time() - t0))
    if not a.quick and dbsize < 1e9:
        log("warning: the database is smaller than 1 GB")
    repo_env = repo.env({"PGHOST": C.sock, "PGPORT": str(cl.port), "PGUSER": PG_USER})

    def repo_backup(label):
        before, cpu0 = repo_backup_bytes(repo), children_cpu()
        dt, out = run([C.repo_bin, "pg-backup", "--json", "--fast", "--pgdata", cl.dir] + repo.args(), env=repo_env)
        j = json.loads(out)
        r = {"seconds": dt, "cpu_seconds": children_cpu() - cpu0, "bytes_added": repo_backup_bytes(repo) - before, "files": j["files"],
             "files_read": j["files"] - j["unchanged_files"], "new_bytes": j["new_bytes"], "start_lsn": j["start_lsn"],
             "stop_lsn": j["stop_lsn"], "stop_time": j["stop_time"]}
        log("repo pg-backup (%s): %.1f s, %d bytes added" % (label, dt, r["bytes_added"]))
        return r

    def pgbr_backup(kind, label):
        before, cpu0 = pgbr_backup_bytes(pgbr), children_cpu()
        dt, _ = run(pgbr.base() + ["backup", "--type=" + kind])
        cpu = children_cpu() - cpu0
        info = pgbr.info()["backup"][-1]
        r = {"seconds": dt, "cpu_seconds": cpu, "bytes_added": pgbr_backup_bytes(pgbr) - before, "type": info["type"],
             "label": info["label"], "start_lsn": info["lsn"]["start"], "stop_lsn": info["lsn"]["stop"],
             "repo_size": info["info"]["repository"]["delta"]}
        log("pgbackrest backup --type=%s (%s): %.1f s, %d bytes added" % (kind, label, dt, r["bytes_added"]))
        return r

    res = {"database_bytes": dbsize, "scale": a.backup_scale}
    with FUZZ.paused():
        time.sleep(3)   # repo trusts a file's times only when older than the parent's start − 2 s
        res["repo_first"] = repo_backup("first")
        res["pgbr_full"] = pgbr_backup("full", "first")
        time.sleep(3)
        res["repo_unchanged"] = repo_backup("unchanged")
        res["pgbr_incr_unchanged"] = pgbr_backup("incr", "unchanged")
        out = cl.pgbench(["-c", "4", "-j", "2", "-T", a.bench_seconds])
        m = re.search(r"tps = ([0-9.]+) \(without", out)
        res["pgbench_tps"] = float(m.group(1)) if m else None
        cl.sql("CHECKPOINT")
        cl.switch_and_wait()
        time.sleep(3)
        res["pgbr_incr_after"] = pgbr_backup("incr", "after pgbench")
        res["pgbr_full_reference"] = pgbr_backup("full", "reference")
        res["repo_after"] = repo_backup("after pgbench")
    backups = res

    # ---- 4. WAL after the base backups, a target time, restores
    # pgbench's TPC-B writes ~0.5 KB of WAL per transaction once every page it touches has had
    # its full-page image after a checkpoint; a checkpoint a minute keeps full-page images
    # coming, so the GiBs take minutes instead of a quarter of an hour.
    log("4. recovery: generating %.1f GiB of WAL (pgbench -c 8 -j 2, synchronous_commit=off, checkpoint_timeout=1min)"
        % a.wal_gib)
    cl.sql("ALTER SYSTEM SET checkpoint_timeout = '1min'")
    cl.sql("SELECT pg_reload_conf()")
    start_lsn = cl.lsn()
    t0 = time.time()
    want = a.wal_gib * 2 ** 30
    while cl.lsn_diff(cl.lsn(), start_lsn) < want:
        cl.pgbench(["-c", "8", "-j", "2", "-T", str(a.chunk_seconds)], env={"PGOPTIONS": "-c synchronous_commit=off"})
        log("WAL since the backups: %.2f GiB (%d .ready)" % (cl.lsn_diff(cl.lsn(), start_lsn) / 2 ** 30, cl.ready()))
    gen_seconds = time.time() - t0
    cl.sql("ALTER SYSTEM RESET checkpoint_timeout")
    cl.sql("SELECT pg_reload_conf()")
    cl.wait_archived()
    sum_t = int(cl.sql("SELECT sum(abalance) FROM pgbench_accounts"))
    t_rfc, t_pg = pg_time_now(cl)
    lsn_t = cl.lsn()
    time.sleep(1.0)
    cl.sql("UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid <= 1000")
    cl.sql("UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid <= 1000")
    cl.switch_and_wait()
    arch = cl.archiver()
    wal = {"generated_bytes": cl.lsn_diff(lsn_t, start_lsn), "generate_seconds": gen_seconds,
           "replay_bytes_repo": cl.lsn_diff(lsn_t, backups["repo_after"]["start_lsn"]),
           "replay_bytes_pgbackrest": cl.lsn_diff(lsn_t, backups["pgbr_full_reference"]["start_lsn"]),
           "archive_bytes_repo": du(os.path.join(repo.path, "wal")),
           "archive_bytes_pgbackrest": du(os.path.join(pgbr.path, "archive")),
           "archived_count": arch["archived_count"], "failed_count": arch["failed_count"]}
    log("target T = %s, sum(abalance) = %d; WAL to replay %.2f GiB (repo) / %.2f GiB (pgBackRest); archives %.2f / %.2f GB"
        % (t_rfc, sum_t, wal["replay_bytes_repo"] / 2 ** 30, wal["replay_bytes_pgbackrest"] / 2 ** 30,
           wal["archive_bytes_repo"] / 1e9, wal["archive_bytes_pgbackrest"] / 1e9))
    cl.stop("fast")

    rec = {"target_time": t_rfc, "sum_at_target": sum_t, "wal": wal, "page_cache_dropped": None}
    opts_port = [port + 1, port + 2, port + 3]

    def replay_log(logfile):
        """From the server log: WAL files restored from the archive, and the seconds from the
        first to the last of them."""
        stamps = []
        pat = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) \S+ \[\d+\] LOG:  restored log file")
        with open(logfile, errors="replace") as f:
            for line in f:
                m = pat.match(line)
                if m:
                    stamps.append(datetime.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f"))
        span = (stamps[-1] - stamps[0]).total_seconds() if len(stamps) > 1 else 0.0
        return {"files_restored": len(stamps), "first_to_last_restored_seconds": span,
                "ms_per_file": 1000 * span / (len(stamps) - 1) if len(stamps) > 1 else None}

    def check_restored(datadir, p):
        q = lambda s: run([PGBIN + "/psql", "-h", C.sock, "-p", p, "-U", PG_USER, "-d", "postgres", "-qAtX", "-c", s],
                          as_pg=False)[1].strip()
        s = int(q("SELECT sum(abalance) FROM pgbench_accounts"))
        state = q("SELECT pg_is_in_recovery(), pg_get_wal_replay_pause_state(), pg_last_wal_replay_lsn()")
        with open(os.path.join(datadir, "postgresql.auto.conf")) as f:
            rc = [l.strip() for l in f if l.startswith("restore_command")]
        return {"sum": s, "sum_ok": s == sum_t, "state": state, "restore_command": rc[-1] if rc else None}

    def opts(p):
        return "-k %s -p %d -c listen_addresses= -c archive_mode=off" % (C.sock, p)

    def wait_paused(d, p, logname):
        while True:
            if not os.path.exists(os.path.join(d, "postmaster.pid")):
                die("the restored server in %s stopped:\n%s" % (d, open(os.path.join(d, logname)).read()[-3000:]))
            _, st = run([PGBIN + "/psql", "-h", C.sock, "-p", p, "-U", PG_USER, "-d", "postgres", "-qAtX", "-c",
                         "SELECT pg_is_in_recovery(), CASE WHEN pg_is_in_recovery() THEN pg_get_wal_replay_pause_state() END"],
                        as_pg=False, check=False)
            st = st.strip()
            if st in ("t|paused", "f|"):
                return "paused" if st == "t|paused" else "promoted"
            time.sleep(0.2)         # as repo pg-restore --start polls

    def finish(d):
        stop_server(d)
        wait_strays(30)             # repo's detached prefetcher, pgBackRest's async archive-get
        shutil.rmtree(d, ignore_errors=True)

    spool = os.path.join(C.work, "spool-repo")
    env = dict(pg_env(), REPO_CACHE_DIR=os.path.join(C.work, "cache-root"), REPO_WAL_SPOOL=spool)

    def repo_restore(p):
        d = os.path.join(C.work, "restore-repo")
        C.clusters.append(d)
        shutil.rmtree(spool, ignore_errors=True)     # nothing prefetched by an earlier round
        mkdir_pg(spool)
        with FUZZ.paused():
            rec["page_cache_dropped"] = drop_caches()
            dt, out = run([C.repo_bin, "pg-restore", "--json"] + repo.args() +
                          ["--pgdata", d, "--target-time", t_rfc, "--target-action", "pause", "--start",
                           "--server-options", opts(p)], env=env, as_pg=False)
        j = json.loads(out)
        r = dict({"seconds": dt, "restore_seconds": j["seconds"], "recovery_seconds": j["recovery_seconds"],
                  "outcome": j["outcome"], "bytes": j["bytes"]}, **check_restored(d, p),
                 **replay_log(os.path.join(d, "pg-restore-start.log")))
        log("repo pg-restore: %.1f s (restore %.1f s, recovery %.1f s), %s" % (dt, j["seconds"], j["recovery_seconds"] or 0, r))
        finish(d)
        return r

    def pgbr_restore(key, p, tool):
        d = mkdir_pg(os.path.join(C.work, "restore-" + key))
        C.clusters.append(d)
        shutil.rmtree(os.path.join(C.work, "pgbr-spool", "archive"), ignore_errors=True)
        with FUZZ.paused():
            drop_caches()
            t0 = time.perf_counter()
            run(tool.base() + ["restore", "--pg1-path=" + d, "--type=time", "--target=" + t_pg, "--target-action=pause"])
            t1 = time.perf_counter()
            run([PGBIN + "/pg_ctl", "-D", d, "-l", os.path.join(d, "pg-start.log"), "-w", "-t", "3600", "-o", opts(p), "start"])
            t2 = time.perf_counter()
            outcome = wait_paused(d, p, "pg-start.log")
            t3 = time.perf_counter()
        r = dict({"seconds": t3 - t0, "restore_seconds": t1 - t0, "start_seconds": t2 - t1,
                  "recovery_seconds": t3 - t1, "outcome": outcome},
                 **check_restored(d, p), **replay_log(os.path.join(d, "pg-start.log")))
        log("pgbackrest restore (%s): %.1f s (restore %.1f s, start+recovery %.1f s), %s"
            % (tool.conf, r["seconds"], r["restore_seconds"], r["recovery_seconds"], r))
        finish(d)
        return r

    # The same repository through a configuration with archive-async=y: archive-get then
    # fetches ahead into its spool (archive-get-queue-max, default 128 MiB), as repo's wal-fetch does.
    pgbr_async = PgbrTool("main", pgbr.path, cl, archive_async=True, conf_name="main-async")
    kinds = [("repo", lambda: repo_restore(opts_port[0])),
             ("pgbackrest", lambda: pgbr_restore("pgbr", opts_port[1], pgbr)),
             ("pgbackrest_async", lambda: pgbr_restore("pgbr-async", opts_port[2], pgbr_async))]
    rounds = {k: [] for k, _ in kinds}
    for i in range(a.restore_rounds):
        log("restore round %d of %d" % (i + 1, a.restore_rounds))
        for k, fn in (kinds if i % 2 == 0 else list(reversed(kinds))):
            rounds[k].append(fn())
    for k, rs in rounds.items():
        rec[k] = {"seconds": median([r["seconds"] for r in rs]), "restore_seconds": median([r["restore_seconds"] for r in rs]),
                  "recovery_seconds": median([r["recovery_seconds"] for r in rs]),
                  "ms_per_file": median([r["ms_per_file"] for r in rs if r["ms_per_file"]]),
                  "sum_ok": all(r["sum_ok"] for r in rs), "sum": [r["sum"] for r in rs],
                  "seconds_each": [round(r["seconds"], 2) for r in rs], "rounds": rs}

    # Reference: PostgreSQL's replay of the same WAL, uncompressed, from files already in the
    # page cache (restore_command = cp: one sh and cp per file), on repo's base backup (its
    # restore not timed), from server start until paused at T: recovery when fetching is a copy
    # from memory, i.e. how much of the time is replay.
    d = os.path.join(C.work, "restore-floor")
    C.clusters.append(d)
    drop_caches()     # as before the timed restores, whose data files are then fresh in the cache
    run([C.repo_bin, "pg-restore", "--json"] + repo.args() + ["--pgdata", d, "--target-time", t_rfc, "--target-action", "pause"],
        env=env, as_pg=False)
    with open(os.path.join(d, "postgresql.auto.conf"), "a") as f:
        f.write("restore_command = 'cp %s/%%f %%p'\n" % plain)
    p = opts_port[2] + 1
    with FUZZ.paused():
        for n in sorted(os.listdir(plain)):
            with open(os.path.join(plain, n), "rb") as f:
                while f.read(1 << 20):
                    pass
        t1 = time.perf_counter()
        run([PGBIN + "/pg_ctl", "-D", d, "-l", os.path.join(d, "pg-start.log"), "-w", "-t", "3600", "-o", opts(p), "start"])
        wait_paused(d, p, "pg-start.log")
        t3 = time.perf_counter()
    rec["cp_reference"] = dict({"recovery_seconds": t3 - t1}, **check_restored(d, p), **replay_log(os.path.join(d, "pg-start.log")))
    log("restore_command = cp reference: %s" % rec["cp_reference"])
    finish(d)
    return backups, rec


# ---------------------------------------------------------------- report

def machine():
    model, flags = "", set()
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name") and not model:
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    with open("/proc/meminfo") as f:
        mem = int(f.readline().split()[1]) * 1024
    features = [n for n, f in (("AVX-512", "avx512f"), ("SHA-NI", "sha_ni"), ("AES-NI", "aes")) if f in flags]
    fs = subprocess.run(["df", "-T", C.work], capture_output=True, text=True).stdout.splitlines()[-1].split()
    return {"cores": C.cores, "cpu": model, "features": features, "memory_gb": round(mem / 1e9, 1),
            "kernel": platform.release(), "work_fs": "%s on %s" % (fs[1], fs[0])}


def versions():
    v = lambda cmd: subprocess.run(cmd, capture_output=True, text=True).stdout.strip()
    import hashlib
    with open(C.repo_bin, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    return {"repo": v([C.repo_bin, "--version"]), "repo_bin": C.repo_src, "repo_bin_sha256": digest,
            "repo_bin_mtime": datetime.datetime.fromtimestamp(os.stat(C.repo_src).st_mtime, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "pgbackrest": v([C.pgbr_bin, "version"]),
            "postgres": v([PGBIN + "/postgres", "--version"]),
            "repo_git": v(["git", "-C", os.path.dirname(HERE), "rev-parse", "--short", "HEAD"])}


def fmt_ratio(pgbr, repo):
    return "%.2fx" % (pgbr / repo) if repo else "-"


def report(R):
    L = []
    m, v = R["machine"], R["versions"]
    L.append("repo vs pgBackRest on PostgreSQL (%s)%s" % (R["date"], "  [--quick: small sizes]" if R["quick"] else ""))
    L.append("command:  %s" % R["command"])
    L.append("machine:  %d cores, %s (%s), %.0f GB RAM, Linux %s, %s"
             % (m["cores"], m["cpu"], ", ".join(m["features"]), m["memory_gb"], m["kernel"], m["work_fs"]))
    L.append("versions: %s (%s built %s, sha256 %s…, git HEAD %s); %s; %s"
             % (v["repo"], v["repo_bin"], v.get("repo_bin_mtime", "?"), v.get("repo_bin_sha256", "?")[:12], v["repo_git"],
                v["pgbackrest"], v["postgres"]))
    L.append("pgBackRest: compress-type=zst compress-level=3 archive-async=n process-max=%d start-fast=y; "
             "repo: %s, --key-file" % (m["cores"], "its defaults (WAL zstd level 1, backups level 3)"
                                         if "level3" in R.get("wal_push", {"level3": 1}) else "zstd level 3 (default)"))
    L.append("ratio = pgBackRest / repo (above 1: repo faster, or smaller); background repo-fuzz processes stopped "
             "during the measurements: %d (4 s SIGSTOP, 0.25 s SIGCONT, repeated)" % R.get("fuzzer_processes_stopped", 0))
    fl = R.get("foreign_load")
    if fl:
        L.append("other processes during the measurements: %.2f cores on average (%.0f CPU s in %.0f s)%s"
                 % (fl["foreign_cores"], fl["foreign_cpu_seconds"], fl["measured_seconds"],
                    "; most: " + ", ".join("%s %.0f s" % (k, v) for k, v in fl["top"][:3]) if fl["foreign_cpu_seconds"] >= 1 else ""))
    L.append("")
    if "wal_push" in R:
        w = R["wal_push"]
        f, g, pre = w["fresh"], w["grown"], w["prefill"]
        n = len(w["segments"])
        L.append("1. wal-push of one 16 MiB segment, whole process (%d real pgbench segments, same files for both)" % n)
        L.append("   %-44s %10s %12s %8s" % ("", "repo", "pgBackRest", "ratio"))
        rows = [("fresh repository   median ms", f["repo"]["median_ms"], f["pgbackrest"]["median_ms"]),
                ("                   p90 ms", f["repo"]["p90_ms"], f["pgbackrest"]["p90_ms"]),
                ("                   CPU ms (median)", f["repo"]["cpu_median_ms"], f["pgbackrest"]["cpu_median_ms"]),
                ("grown archive      median ms", g["repo"]["median_ms"], g["pgbackrest"]["median_ms"]),
                ("                   p90 ms", g["repo"]["p90_ms"], g["pgbackrest"]["p90_ms"])]
        for label, r, p in rows:
            L.append("   %-44s %10.1f %12.1f %8s" % (label, r, p, fmt_ratio(p, r)))
        s = w["stored_bytes_per_segment"]
        L.append("   %-44s %10.2f %12.2f %8s" % ("stored MB per segment", s["repo"] / 1e6, s["pgbackrest"] / 1e6,
                                                  fmt_ratio(s["pgbackrest"], s["repo"])))
        l1, s1 = w["level1"], w["stored_bytes_per_segment_level1"]
        refs = [("zstd level 1, both (reference) median ms", l1["repo"]["median_ms"], l1["pgbackrest"]["median_ms"]),
                ("                   CPU ms (median)", l1["repo"]["cpu_median_ms"], l1["pgbackrest"]["cpu_median_ms"]),
                ("                   stored MB per segment", s1["repo"] / 1e6, s1["pgbackrest"] / 1e6)]
        if "level3" in w:
            l3, s3 = w["level3"], w["stored_bytes_per_segment_level3"]
            refs += [("zstd level 3, both (reference) median ms", l3["repo"]["median_ms"], l3["pgbackrest"]["median_ms"]),
                     ("                   CPU ms (median)", l3["repo"]["cpu_median_ms"], l3["pgbackrest"]["cpu_median_ms"]),
                     ("                   stored MB per segment", s3["repo"] / 1e6, s3["pgbackrest"] / 1e6)]
        for label, r, p in refs:
            L.append("   %-44s %10.2f %12.2f %8s" % (label, r, p, fmt_ratio(p, r)) if "MB" in label else
                     "   %-44s %10.1f %12.1f %8s" % (label, r, p, fmt_ratio(p, r)))
        L.append("   %-44s %10.1f %12.1f" % ("start and exit only (see note) ms", w["startup_ms"]["repo"],
                                                  w["startup_ms"]["pgbackrest"]))
        L.append("   grown = %d segment objects in each archive (repo: %d in wal/00000001/) + %d repo snapshots; "
                 "repo grown/fresh median: %.2f" % (pre["segments"], pre["repo_wal_objects"], pre["repo_snapshots"],
                                                    g["repo"]["median_ms"] / f["repo"]["median_ms"]))
        L.append("   repo grown vs pgBackRest fresh, median: %s; spawning /bin/true the same way: %.2f ms"
                 % (fmt_ratio(f["pgbackrest"]["median_ms"], g["repo"]["median_ms"]), w["spawn_baseline_ms"]))
        L.append("   start and exit only: `repo wal-push` of a name that is not a WAL file's (refused before it opens "
                 "anything), `pgbackrest version`\n"
                 "   every segment is pushed into all %d archives, the order rotating; pgBackRest at level 3 (the configuration "
                 "under test), repo at its default (%s)" % (7 if "level3" in w else 6,
                                                           "zstd level 1 for WAL" if "level3" in w else "the repository's level 3"))
        L.append("")
    if "sustained" in R:
        s = R["sustained"]
        r, p = s["repo"]["rounds"], s["pgbackrest"]["rounds"]
        L.append("2. Sustained archiving: pgbench -i -s %s, then pgbench -c 4 -j 2 -T %s; archive_command = one tool; "
                 "a fresh cluster per run" % (R["args"]["archive_scale"], R["args"]["bench_seconds"]))
        L.append("   %d run(s) per tool, alternating the order; values of each run" % len(r))
        L.append("   %-36s %18s %18s" % ("", "repo", "pgBackRest"))
        for label, key, f_ in (("WAL produced MB", "wal_bytes", lambda x: "%.0f" % (x / 1e6)),
                               ("WAL MB/s (whole run)", "wal_mb_per_s", "%.1f".__mod__),
                               ("  during pgbench -i", "init_wal_mb_per_s", "%.1f".__mod__),
                               ("  during pgbench -T", "run_wal_mb_per_s", "%.1f".__mod__),
                               ("pgbench tps", "tps", "%.0f".__mod__),
                               ("max .ready", "max_ready", str), ("final .ready (pgbench end)", "final_ready", str),
                               ("seconds to drain after pgbench", "drain_seconds", "%.1f".__mod__),
                               ("archived_count", "archived_count", str), ("failed_count", "failed_count", str)):
            L.append("   %-36s %18s %18s" % (label, " / ".join(f_(x[key]) for x in r), " / ".join(f_(x[key]) for x in p)))
        L.append("")
    if "backups" in R:
        b = R["backups"]
        L.append("3. Base backups: database %.2f GB (pgbench -s %d), WAL archived into both; time s / MB added (no WAL)"
                 % (b["database_bytes"] / 1e9, b["scale"]))
        L.append("   %-22s %14s %24s %8s %8s" % ("", "repo", "pgBackRest", "time", "bytes"))
        for label, rk, pk in (("first", "repo_first", "pgbr_full"), ("unchanged", "repo_unchanged", "pgbr_incr_unchanged"),
                              ("after pgbench -T", "repo_after", "pgbr_incr_after")):
            r, p = b[rk], b[pk]
            L.append("   %-22s %6.1f s %7.1f MB  %-6s %6.1f s %7.1f MB %8s %8s"
                     % (label, r["seconds"], r["bytes_added"] / 1e6, p["type"], p["seconds"], p["bytes_added"] / 1e6,
                        fmt_ratio(p["seconds"], r["seconds"]), fmt_ratio(p["bytes_added"], r["bytes_added"])))
        p = b["pgbr_full_reference"]
        L.append("   %-22s %17s  %-6s %6.1f s %7.1f MB" % ("reference (after)", "", p["type"], p["seconds"], p["bytes_added"] / 1e6))
        L.append("   CPU s of the command (user+sys, with its children): repo %s; pgBackRest %s (full, incr, incr, full)"
                 % (" / ".join("%.1f" % b[k]["cpu_seconds"] for k in ("repo_first", "repo_unchanged", "repo_after")),
                    " / ".join("%.1f" % b[k]["cpu_seconds"] for k in ("pgbr_full", "pgbr_incr_unchanged", "pgbr_incr_after",
                                                                         "pgbr_full_reference"))))
        L.append("")
    if "recovery" in R:
        c = R["recovery"]
        w = c["wal"]
        L.append("4. Recovery to a target time T: %.2f GiB of WAL after the base backups (repo replays %.2f GiB, "
                 "pgBackRest %.2f GiB); archives %.2f GB (repo) / %.2f GB (pgBackRest); page cache %s"
                 % (w["generated_bytes"] / 2 ** 30, w["replay_bytes_repo"] / 2 ** 30, w["replay_bytes_pgbackrest"] / 2 ** 30,
                    w["archive_bytes_repo"] / 1e9, w["archive_bytes_pgbackrest"] / 1e9,
                    "dropped before each restore" if c["page_cache_dropped"] else "warm (could not drop it)"))
        L.append("   median of %d restores per tool, alternating the order; each: %s"
                 % (R["args"]["restore_rounds"], ", ".join("%s %s s" % (k, "/".join("%.1f" % x for x in c[k]["seconds_each"]))
                                                             for k in ("repo", "pgbackrest", "pgbackrest_async"))))
        L.append("   %-36s %8s %10s %10s %12s %7s %s" % ("", "total s", "restore s", "recovery s", "WAL files/s", "ratio",
                                                         "sum(abalance) at T"))
        rr = c["repo"]
        for label, d in (("repo pg-restore --start", rr), ("pgbackrest restore + pg_ctl start", c["pgbackrest"]),
                         ("  same, archive-async (reference)", c["pgbackrest_async"])):
            rate = 1000 / d["ms_per_file"] if d.get("ms_per_file") else 0
            L.append("   %-36s %8.1f %10.1f %10.1f %12.1f %7s %s" % (label, d["seconds"], d["restore_seconds"], d["recovery_seconds"],
                                                               rate, fmt_ratio(d["seconds"], rr["seconds"]),
                                                               "ok" if d["sum_ok"] else "MISMATCH (%s)" % d["sum"]))
        f = c.get("cp_reference") or c["replay_floor"]
        L.append("   %-36s %8s %10s %10.1f %12.1f %7s %s" % ("restore_command = cp, cached (ref.)", "", "", f["recovery_seconds"],
                                                           1000 / f["ms_per_file"] if f.get("ms_per_file") else 0, "",
                                                           "ok" if f["sum_ok"] else "MISMATCH (%d)" % f["sum"]))
        L.append("   recovery s = server start until paused at T; WAL files/s = files restored from the archive, first to last "
                 "(server log); the WAL was made with checkpoint_timeout=1min;\n"
                 "   cp reference = the same WAL, uncompressed, copied by restore_command = cp from files already in the "
                 "page cache\n   (repo's base backup, its restore not timed): recovery when fetching a file is a copy "
                 "from memory, i.e. mostly PostgreSQL's replay")
        L.append("")
    if "targets" in R:
        L.append("targets: " + "; ".join("%s: %s" % (k, v) for k, v in R["targets"].items()))
    return "\n".join(L)


def targets(R):
    t = {}
    if "wal_push" in R:
        f, g = R["wal_push"]["fresh"], R["wal_push"]["grown"]
        x = f["pgbackrest"]["median_ms"] / f["repo"]["median_ms"]
        t["wal-push >= 2x faster (fresh)"] = "%s (%.2fx)" % ("met" if x >= 2 else "MISSED", x)
        x = g["pgbackrest"]["median_ms"] / g["repo"]["median_ms"]
        t["wal-push >= 2x faster (grown)"] = "%s (%.2fx)" % ("met" if x >= 2 else "MISSED", x)
    if "recovery" in R:
        c = R["recovery"]
        x = c["pgbackrest"]["seconds"] / c["repo"]["seconds"]
        t["RTO <= half of pgBackRest's"] = "%s (%.2fx)" % ("met" if x >= 2 else "MISSED", x)
        x = c["pgbackrest_async"]["seconds"] / c["repo"]["seconds"]
        t["vs pgBackRest archive-async"] = "%.2fx" % x
    return t


def esc(t):
    return str(t).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def svg_chart(R):
    """Horizontal bars: for each measurement, pgBackRest's time / repo's time (above 1: repo
    faster), with both times written beside the bar and the issue's 2x line; the run's date,
    machine and versions in the header."""
    rows = []
    if "wal_push" in R:
        w = R["wal_push"]
        for label, k in (("wal-push, fresh archive", "fresh"), ("wal-push, grown archive", "grown")):
            r, p = w[k]["repo"]["median_ms"], w[k]["pgbackrest"]["median_ms"]
            rows.append((label, p / r, "%.0f ms vs %.0f ms" % (r, p), True))
        if "level3" in w:
            r, p = w["level3"]["repo"]["median_ms"], w["level3"]["pgbackrest"]["median_ms"]
            rows.append(("wal-push, both zstd level 3 (ref.)", p / r, "%.0f ms vs %.0f ms" % (r, p), False))
    if "backups" in R:
        b = R["backups"]
        for label, rk, pk in (("base backup, first (full)", "repo_first", "pgbr_full"),
                              ("base backup, unchanged (incr)", "repo_unchanged", "pgbr_incr_unchanged"),
                              ("base backup, after pgbench (incr)", "repo_after", "pgbr_incr_after")):
            r, p = b[rk]["seconds"], b[pk]["seconds"]
            rows.append((label, p / r, "%.1f s vs %.1f s" % (r, p), False))
    if "recovery" in R:
        c = R["recovery"]
        r = c["repo"]["seconds"]
        rows.append(("recovery to T (RTO)", c["pgbackrest"]["seconds"] / r, "%.1f s vs %.1f s" % (r, c["pgbackrest"]["seconds"]), True))
        rows.append(("recovery, pgBackRest async (ref.)", c["pgbackrest_async"]["seconds"] / r,
                     "%.1f s vs %.1f s" % (r, c["pgbackrest_async"]["seconds"]), False))
    W, left, bar_h, gap, top_pad = 780, 250, 22, 10, 86
    plot_w = W - left - 170
    H = top_pad + len(rows) * (bar_h + gap) + 50
    top = max(3.0, max(x for _, x, _, _ in rows) * 1.1)
    v, m = R.get("versions", {}), R.get("machine", {})
    head = ["%s; %d cores, %s (%s), Linux %s" % (R.get("date", ""), m.get("cores", 0), m.get("cpu", "?"),
                                                 ", ".join(m.get("features", [])), m.get("kernel", "?")),
            "repo %s, pgBackRest %s, %s" % (v.get("repo_git", "?"), v.get("pgbackrest", "?").replace("pgBackRest ", ""),
                                             v.get("postgres", "?")),
            "python3 Benchmarks/pg_compare.py; pgBackRest compress-type=zst compress-level=3; repo's defaults"]
    o = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" '
         'font-family="Helvetica, Arial, sans-serif" font-size="12">' % (W, H, W, H),
         '<rect width="100%" height="100%" fill="white"/>',
         '<text x="10" y="22" font-size="16" font-weight="bold">repo against pgBackRest on PostgreSQL 15: '
         'pgBackRest\'s time / repo\'s time (higher is better)</text>']
    for i, line in enumerate(head):
        o.append('<text x="10" y="%d" fill="#555" font-size="10">%s</text>' % (40 + 13 * i, esc(line[:160])))
    x0 = left
    for t in range(0, int(top) + 1):
        x = x0 + plot_w * t / top
        o.append('<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="%s"/>' % (x, x, top_pad - 6, H - 40,
                                                                                "#c53030" if t == 2 else "#e2e2e2"))
        o.append('<text x="%.1f" y="%d" text-anchor="middle" fill="#555">%dx</text>' % (x, H - 26, t))
    for i, (label, ratio, detail, target) in enumerate(rows):
        y = top_pad + i * (bar_h + gap)
        color = ("#276749" if ratio >= 2 else "#c53030") if target else "#2b6cb0"
        o.append('<text x="%d" y="%.1f" text-anchor="end">%s</text>' % (left - 8, y + bar_h * 0.7, esc(label)))
        o.append('<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"><title>%s: %.2fx</title></rect>'
                 % (x0, y, plot_w * ratio / top, bar_h, color, esc(label), ratio))
        o.append('<text x="%.1f" y="%.1f" font-size="11">%.2fx  (%s)</text>'
                 % (x0 + plot_w * ratio / top + 6, y + bar_h * 0.7, ratio, esc(detail)))
    o.append('<text x="10" y="%d" fill="#555" font-size="11">green/red: a target of the issue (2x, red line), met or not; '
             'blue: for reference; times are repo vs pgBackRest</text>' % (H - 8))
    o.append("</svg>")
    return "\n".join(o) + "\n"


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repo-bin", default=os.path.join(os.path.dirname(HERE), ".build", "release", "repo"))
    ap.add_argument("--quick", action="store_true", help="small sizes: a trial run of every step")
    ap.add_argument("--segments", type=int, help="real segments pushed by each tool (default 25; quick 6)")
    ap.add_argument("--source-scale", type=int, help="pgbench scale of the segment source cluster (default 10; quick 2)")
    ap.add_argument("--prefill", type=int, help="segment objects in the grown archives (default 10000; quick 300)")
    ap.add_argument("--prefill-snapshots", type=int, help="snapshots in the grown repo (default 1000; quick 30)")
    ap.add_argument("--archive-scale", type=int, help="pgbench -i scale of 2. (default 50; quick 5)")
    ap.add_argument("--bench-seconds", type=int, help="pgbench -T of 2. and 3. (default 30; quick 5)")
    ap.add_argument("--backup-scale", type=int, help="pgbench -i scale of 3. (default 75; quick 5)")
    ap.add_argument("--wal-gib", type=float, help="GiB of WAL between base backups and T (default 2; quick 0.2)")
    ap.add_argument("--sustained-rounds", type=int, help="runs per tool of 2., alternating the order (default 2; quick 1)")
    ap.add_argument("--restore-rounds", type=int, help="restores per tool in 4., alternating the order (default 3; quick 1)")
    ap.add_argument("--chunk-seconds", type=int, default=20, help="pgbench -T per round while generating WAL")
    ap.add_argument("--only", default="1,2,3", help="measurements to run: 1 (wal-push), 2 (sustained), 3 (backups and recovery)")
    ap.add_argument("--work", help="work directory (default: a new one in /tmp; removed at the end)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--json", help="JSON output (default Benchmarks/results/pg_compare.json, pg_compare-quick.json with --quick)")
    ap.add_argument("--load", metavar="FILE", help="print the table of an earlier run's JSON (and store it in FILE) instead of running")
    ap.add_argument("--chart", metavar="FILE.svg", help="also write a bar chart of the ratios (with --load too)")
    a = ap.parse_args()
    if a.load:
        with open(a.load) as f:
            R = json.load(f)
        if "replay_floor" in R.get("recovery", {}):     # its name before the run of 2026-11-30 17:00
            R["recovery"]["cp_reference"] = R["recovery"].pop("replay_floor")
        R["table"] = report(R)
        print(R["table"])
        with open(a.load, "w") as f:
            json.dump(R, f, indent=1)
            f.write("\n")
        if a.chart:
            with open(a.chart, "w") as f:
                f.write(svg_chart(R))
        return
    defaults = {"segments": (25, 6), "source_scale": (10, 2), "prefill": (10000, 300), "prefill_snapshots": (1000, 30),
                "archive_scale": (50, 5), "bench_seconds": (30, 5), "backup_scale": (75, 5), "wal_gib": (2.0, 0.2), "restore_rounds": (3, 1), "sustained_rounds": (2, 1)}
    for k, (full, quick) in defaults.items():
        if getattr(a, k) is None:
            setattr(a, k, quick if a.quick else full)
    if a.quick:
        a.chunk_seconds = min(a.chunk_seconds, 5)
    if a.json is None:
        a.json = os.path.join(HERE, "results", "pg_compare-quick.json" if a.quick else "pg_compare.json")
    if os.geteuid() != 0:
        sys.exit("run as root: the servers and archive commands run as postgres (runuser)")
    C.repo_bin = os.path.realpath(a.repo_bin)
    if "/debug/" in C.repo_bin:
        sys.exit("a debug build is not for benchmarks: pass --repo-bin \"$(scripts/build-release.sh)\"")
    if not os.access(C.repo_bin, os.X_OK) or not os.access(C.repo_bin + "-core", os.X_OK):
        sys.exit("no repo and repo-core binaries at %s (scripts/build-release.sh builds them)" % C.repo_bin)
    C.pgbr_bin = shutil.which("pgbackrest") or sys.exit("pgbackrest is not installed")
    only = set(a.only.split(","))

    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, lambda signum, frame: sys.exit(128 + signum))
    C.keep = a.keep
    C.work = os.path.realpath(a.work) if a.work else tempfile.mkdtemp(prefix="pgc-", dir="/tmp")
    os.makedirs(C.work, exist_ok=True)
    uid, gid, _ = pg_ids()
    os.chown(C.work, uid, gid)
    os.chmod(C.work, 0o755)
    C.sock = mkdir_pg(os.path.join(C.work, "sock"), 0o755)
    # A copy: a rebuild of .build/release during the run must not change (or break) what is measured.
    C.repo_src = C.repo_bin
    # The launcher and repo-core, which it runs from its own directory.
    C.repo_bin = os.path.join(mkdir_pg(os.path.join(C.work, "bin"), 0o755), "repo")
    for src, dst in ((C.repo_src, C.repo_bin), (C.repo_src + "-core", C.repo_bin + "-core")):
        shutil.copy2(src, dst)
        os.chmod(dst, 0o755)
    port = 20000 + (os.getpid() % 20000)
    global LOAD
    LOAD = ForeignLoad()
    R = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "quick": a.quick,
         "command": shlex.join(["python3"] + sys.argv), "args": vars(a)}
    try:
        R["machine"], R["versions"] = machine(), versions()
        log("work directory %s; %s" % (C.work, R["versions"]))
        if "1" in only:
            R["wal_push"] = bench_wal_push(a, port)
        if "2" in only:
            runs = {"repo": [], "pgbackrest": []}
            for i in range(a.sustained_rounds):
                for t in (("repo", "pgbackrest") if i % 2 == 0 else ("pgbackrest", "repo")):
                    runs[t].append(bench_sustained(a, t, port + 10 + len(runs[t]) * 2 + (t == "pgbackrest")))
            R["sustained"] = {t: {"rounds": rs} for t, rs in runs.items()}
        if "3" in only:
            R["backups"], R["recovery"] = bench_backups_and_recovery(a, port + 20)
        R["targets"] = targets(R)
        R["fuzzer_processes_stopped"] = len(FUZZ.seen)
        R["foreign_load"] = LOAD.summary()
    finally:
        cleanup()
    text = report(R)
    print(text)
    R["table"] = text
    os.makedirs(os.path.dirname(os.path.abspath(a.json)), exist_ok=True)
    with open(a.json, "w") as f:
        json.dump(R, f, indent=1)
        f.write("\n")
    log("wrote %s" % a.json)
    if a.chart:
        with open(a.chart, "w") as f:
            f.write(svg_chart(R))
        log("wrote %s" % a.chart)


if __name__ == "__main__":
    main()
