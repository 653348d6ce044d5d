#!/usr/bin/env python3
"""repo and restic against the same real S3 server, in one run (issue 13).

Starts one Ceph RADOS Gateway on loopback (scripts/s3-server.sh, memstore OSD, about 2 s) in the
work directory, always stops it again (also on failure and Ctrl-C), and measures two things.
radosgw is restarted once with `tcp_nodelay=1` on its beast frontend first: as s3-server.sh
starts it, Nagle's algorithm and the client's delayed ACK make every request after the first on
a kept-alive connection wait about 40 ms on loopback (--rgw-nagle keeps it so, to measure that).

1. The side-by-side series of Benchmarks/side_by_side.py, over S3: on the `sql` corpus of
   corpus.py (pg_dump plain format) both tools get, interleaved inside each phase and the order
   alternated from round to round,
     first      store of day 1 into an empty repository
     next-day   store of day 2
     unchanged  store of day 2 again
     dump       restore of the day-2 snapshot to /dev/null
   repo at s3:http://127.0.0.1:PORT/repo-rN/repo, restic at s3:http://127.0.0.1:PORT/restic-rN
   (a fresh bucket and cache directory per round; restic addresses a custom endpoint path-style).
   Reported: seconds and MB/s (median of --rounds), restic's time / repo's time per phase (above
   1: repo faster; the issue's target is 1.5), peak RSS and CPU seconds of the client, the
   requests repo counted itself (`repo store -v`, the stderr line `repo: S3: N requests (…)`),
   the requests radosgw logged for each command of either tool (its access log, by operation),
   radosgw + OSD CPU seconds, and the bytes each repository holds in the bucket afterwards.

2. Open at scale: a repository with --scale-packs packs (10,000) and --scale-segments index
   segments (2,000), then `repo snapshots -v` (opening: cold cache once, then warm) and
   `repo store -v` of a --store-mib (16) MiB random stream, next to the same commands on an empty
   repository in the same server, with seconds and request counts. The repository is built
   cheaply: one `repo store` of a tiny distinct stream writes exactly one data pack, one tree pack
   and one index segment, so (packs - 2 x segments) / 2 stores come first and `repo prune
   --safety-margin 0` merges their segments into one (prune writes up to 8,192 packs per segment
   and, with every pack fully used, repacks nothing), then `segments` more stores follow. The
   stores run --scale-jobs at a time, each worker with its own cache directory, against a local
   directory (no network, a machine key file instead of the password KDF), and the finished
   repository is uploaded object by object into the bucket: the layout on S3 is the same as on
   disk (FORMAT.md §29), so repo opens it as if it had been written over S3. The local build is
   kept in --work and reused by the next run with the same sizes. Last, another host (a fresh
   cache) runs `forget --prune`, removing all but the newest --store-mib stream, and this host's
   next `snapshots -v` shows what reading only the index segments that prune wrote costs.

  python3 Benchmarks/s3_compare.py --repo-bin .build/release/repo --mb 300 --rounds 3 --work /tmp/s3bench
  python3 Benchmarks/s3_compare.py --mb 20 --rounds 1 --scale-packs 400 --scale-segments 80 \\
      --json /tmp/s3.json --text /tmp/s3.txt          # a quick check of the tooling
  python3 Benchmarks/s3_compare.py --load Benchmarks/results/s3_compare.json   # report only

Needs: the release binary, restic (apt-get install -y restic), GNU time, and what
scripts/s3-server.sh needs (radosgw, ceph-mon, ceph-osd, ceph-common, curl: scripts/install-deps.sh).
Writes --json (Benchmarks/results/s3_compare.json) and --text (…/s3_compare.txt) and prints the
text; progress goes to standard error. Everything written to the server stays in its memory
(memstore), so keep --mb x --rounds well below the server's few GB.
"""
import argparse
import datetime
import hashlib
import hmac
import http.client
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from side_by_side import PASSWORD, environment, first_line, log, make_inputs  # noqa: E402

PHASES = (("first", "first"), ("next_day", "next-day"), ("unchanged", "unchanged"), ("dump", "dump"))
TARGET = 1.5
CLK_TCK = os.sysconf("SC_CLK_TCK")
MEASURED = []  # every command measured against the server, for the "other processes" figure


class CommandFailed(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# A minimal S3 client (standard library only): create a bucket, put objects, list a prefix. Used
# to upload the open-at-scale repository and to measure what each tool left in the bucket.

class S3:
    def __init__(self, endpoint, key, secret, region):
        self.host = urllib.parse.urlsplit(endpoint).netloc
        self.key, self.secret, self.region = key, secret, region
        self.local = threading.local()

    def _sign(self, method, path, query, payload_hash):
        now = datetime.datetime.now(datetime.timezone.utc)
        amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
        q = "&".join("%s=%s" % (urllib.parse.quote(k, safe="-_.~"), urllib.parse.quote(v, safe="-_.~"))
                     for k, v in sorted(query.items()))
        signed = "host;x-amz-content-sha256;x-amz-date"
        canonical = "\n".join([method, urllib.parse.quote(path, safe="/-_.~"), q, "host:" + self.host,
                               "x-amz-content-sha256:" + payload_hash, "x-amz-date:" + amz_date, "", signed, payload_hash])
        scope = "%s/%s/s3/aws4_request" % (day, self.region)
        to_sign = "AWS4-HMAC-SHA256\n%s\n%s\n%s" % (amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest())
        k = ("AWS4" + self.secret).encode()
        for part in (day, self.region, "s3", "aws4_request"):
            k = hmac.new(k, part.encode(), hashlib.sha256).digest()
        sig = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
        return q, {"x-amz-date": amz_date, "x-amz-content-sha256": payload_hash,
                   "Authorization": "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s" % (
                       self.key, scope, signed, sig)}

    def request(self, method, path, query=None, body=b"", ok=(200, 204)):
        query = query or {}
        for attempt in range(3):
            q, headers = self._sign(method, path, query, hashlib.sha256(body).hexdigest())
            conn = getattr(self.local, "conn", None)
            if conn is None:
                conn = self.local.conn = http.client.HTTPConnection(self.host, timeout=120)
            try:
                conn.request(method, urllib.parse.quote(path, safe="/-_.~") + ("?" + q if q else ""), body=body,
                             headers=headers)
                r = conn.getresponse()
                data = r.read()
            except (OSError, http.client.HTTPException):
                conn.close()
                self.local.conn = None
                if attempt == 2:
                    raise
                time.sleep(0.5)
                continue
            if r.status in ok:
                return data
            if r.status >= 500 and attempt < 2:
                time.sleep(0.5)
                continue
            raise RuntimeError("S3 %s %s: HTTP %d %s" % (method, path, r.status, data[:300]))

    def create_bucket(self, bucket):
        self.request("PUT", "/" + bucket, ok=(200, 204, 409))

    def put(self, bucket, key, data):
        self.request("PUT", "/%s/%s" % (bucket, key), body=data)

    def list(self, bucket, prefix=""):
        """[(key, size)] under prefix (ListObjectsV2, all pages)."""
        out, token = [], None
        ns = "{http://s3.amazonaws.com/doc/2006-03-01/}"
        while True:
            q = {"list-type": "2", "max-keys": "1000", "prefix": prefix}
            if token:
                q["continuation-token"] = token
            root = ET.fromstring(self.request("GET", "/" + bucket, q))
            for c in root.findall(ns + "Contents"):
                out.append((c.find(ns + "Key").text, int(c.find(ns + "Size").text)))
            if root.findtext(ns + "IsTruncated") != "true":
                return out
            token = root.findtext(ns + "NextContinuationToken")


# ---------------------------------------------------------------------------------------------
# The server: start/stop, its access log (requests per command) and its CPU time.

# radosgw's beast frontend logs one line per request at its default log level:
#   ... beast: 0x7f..: 127.0.0.1 - repo-test [30/Nov/2026:18:33:18.099 +0000] "PUT /bucket/key HTTP/1.1" 200 287 ...
ACCESS = re.compile(rb'beast: \S+: \S+ - \S+ \[[^\]]*\] "([A-Z]+) (\S+) HTTP/[0-9.]+" (\d+)')


def operation(method, target):
    """The S3 operation of a request line (path style), named as in IAM / repo's -v line."""
    path, _, query = target.partition("?")
    parts = path.split("/", 2)
    key = parts[2] if len(parts) > 2 else ""
    q = urllib.parse.parse_qs(query, keep_blank_values=True)
    if not key:
        if method == "GET":
            if "location" in q:
                return "GetBucketLocation"
            return "ListBucket"
        return {"HEAD": "HeadBucket", "PUT": "CreateBucket", "DELETE": "DeleteBucket", "POST": "DeleteObjects"}.get(method, method)
    if method == "PUT":
        return "UploadPart" if "partNumber" in q else "PutObject"
    if method == "POST":
        return "CreateMultipartUpload" if "uploads" in q else "CompleteMultipartUpload"
    if method == "DELETE":
        return "AbortMultipartUpload" if "uploadId" in q else "DeleteObject"
    return {"GET": "GetObject", "HEAD": "HeadObject"}.get(method, method)


class Server:
    def __init__(self, directory):
        self.dir = os.path.abspath(directory)
        self.script = os.path.join(TOP, "scripts", "s3-server.sh")
        self.log = os.path.join(self.dir, "log", "client.rgw.s3.log")
        self.env = {}
        self.started = False

    def start(self):
        if os.path.exists(self.dir):  # a server left by an earlier run: stop it, then start afresh
            subprocess.run([self.script, "stop", self.dir], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            shutil.rmtree(self.dir)
        t0 = time.perf_counter()
        self.started = True  # stop() also cleans up after a failed start
        p = subprocess.run([self.script, "start", self.dir], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if p.returncode != 0:
            raise CommandFailed("scripts/s3-server.sh start failed:\n" + p.stderr.decode(errors="replace")[-3000:])
        for line in p.stdout.decode().splitlines():
            k, _, v = line.partition("=")
            self.env[k] = v
        self.endpoint = self.env["S3_ENDPOINT"]
        log("s3 server: %s (started in %.1f s)" % (self.endpoint, time.perf_counter() - t0))
        self.client = S3(self.endpoint, self.env["AWS_ACCESS_KEY_ID"], self.env["AWS_SECRET_ACCESS_KEY"],
                         self.env["AWS_DEFAULT_REGION"])

    def set_tcp_nodelay(self):
        """Restarts radosgw with `tcp_nodelay=1` on its beast frontend. As scripts/s3-server.sh
        starts it, radosgw leaves Nagle's algorithm on: it writes an answer in two pieces, the
        second waits for the client's ACK of the first, and the client delays that ACK by 40 ms,
        so every request after the first on a kept-alive connection takes about 43 ms on loopback
        (1 ms with tcp_nodelay; a new connection per request: 1 ms as well)."""
        conf = os.path.join(self.dir, "ceph.conf")
        with open(conf) as f:
            text = f.read()
        if "tcp_nodelay" in text:
            return
        pidfile = os.path.join(self.dir, "run", "client.rgw.s3.pid")
        with open(pidfile) as f:
            pid = int(f.read().strip())
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            try:
                with open("/proc/%d/status" % pid) as f:
                    if re.search(r"^State:\s*Z", f.read(), re.M):
                        break
            except OSError:
                break
            time.sleep(0.1)
        else:
            os.kill(pid, signal.SIGKILL)
        if os.path.exists(pidfile):
            os.unlink(pidfile)
        with open(conf, "w") as f:
            f.write(re.sub(r"^(rgw_frontends = .*)$", r"\1 tcp_nodelay=1", text, flags=re.M))
        with open(os.path.join(self.dir, "log", "rgw.out"), "ab") as out:
            subprocess.run(["radosgw", "-c", conf, "-n", "client.rgw.s3"], stdin=subprocess.DEVNULL, stdout=out,
                           stderr=out, check=True)
        deadline = time.monotonic() + 60
        while True:
            try:
                self.client.request("GET", "/", ok=(200,))
                break
            except (OSError, RuntimeError, http.client.HTTPException):
                if time.monotonic() > deadline:
                    raise CommandFailed("radosgw did not answer within 60 s after its restart with tcp_nodelay=1")
                time.sleep(0.2)
        log("s3 server: radosgw restarted with tcp_nodelay=1")

    def stop(self):
        if self.started:
            self.started = False
            subprocess.run([self.script, "stop", self.dir], stdout=subprocess.DEVNULL)
            log("s3 server stopped")

    def version(self):
        v = first_line(["radosgw", "--version"])
        m = re.search(r"ceph version (\S+)", v)
        return "radosgw " + m.group(1) if m else v

    def cpu(self):
        """CPU seconds used so far by radosgw and the OSD."""
        total = 0
        for name in ("client.rgw.s3", "osd.0"):
            try:
                with open(os.path.join(self.dir, "run", name + ".pid")) as f:
                    pid = f.read().strip()
                with open("/proc/%s/stat" % pid) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])
            except (OSError, ValueError, IndexError):
                pass
        return total / CLK_TCK

    def quiet_offset(self):
        """The access log's size once it has stopped growing (its writer thread flushes a little
        after each request), so that a command's lines are all in before the next is counted."""
        last, since, t0 = -1, time.monotonic(), time.monotonic()
        while time.monotonic() - t0 < 5:
            size = os.path.getsize(self.log)
            if size != last:
                last, since = size, time.monotonic()
            elif time.monotonic() - since >= 0.25:
                break
            time.sleep(0.05)
        return last

    def requests(self, start, end, bucket):
        """{operation: count} and {status: count} of the non-2xx answers, for bucket, between two
        offsets of the access log."""
        with open(self.log, "rb") as f:
            f.seek(start)
            chunk = f.read(end - start)
        ops, errors = {}, {}
        for m in ACCESS.finditer(chunk):
            method, target, status = m.group(1).decode(), m.group(2).decode(), int(m.group(3))
            if target.split("/")[1].split("?")[0] != bucket:
                continue
            op = operation(method, target)
            ops[op] = ops.get(op, 0) + 1
            if not 200 <= status < 300:
                errors[str(status)] = errors.get(str(status), 0) + 1
        return ops, errors


# ---------------------------------------------------------------------------------------------
# Running and measuring one command.

SELF_COUNT = re.compile(r"repo: S3: (\d+) requests? \(([^)]*)\)")


def parse_self_count(stderr):
    """repo's own `-v` request line: (total, {operation: count}), or (None, {})."""
    m = None
    for m in SELF_COUNT.finditer(stderr):
        pass
    if not m:
        return None, {}
    ops = {}
    for part in m.group(2).split(","):
        name, _, n = part.strip().rpartition(" ")
        if name:
            ops[name.replace("s3:", "")] = int(n)
    return int(m.group(1)), ops


def run(cmd, env, stdin=None, server=None, bucket=None):
    """Runs cmd under GNU time; returns a dict: seconds, peak RSS, client CPU, the requests repo
    counted itself (if it printed them), the server's count for bucket and its CPU seconds.
    Raises CommandFailed with the command line and its error output if it fails."""
    fd, tfile = tempfile.mkstemp()
    os.close(fd)
    if server:
        off0, cpu0 = server.quiet_offset(), server.cpu()
    busy0 = cpu_busy()
    with open(stdin, "rb") if stdin else open(os.devnull, "rb") as f:
        t0 = time.perf_counter()
        p = subprocess.run(["/usr/bin/time", "-f", "%M %U %S", "-o", tfile] + cmd, stdin=f,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        dt = time.perf_counter() - t0
    busy = cpu_busy() - busy0
    with open(tfile) as f:
        tl = f.read().strip().splitlines()
    os.unlink(tfile)
    err = p.stderr.decode(errors="replace")
    if p.returncode != 0:
        raise CommandFailed("command failed (exit %d): %s\n%s" % (p.returncode, " ".join(cmd), err[-3000:]))
    rss, user, sys_ = tl[-1].split()
    out = {"s": dt, "rss_mb": int(rss) / 1024, "cpu_s": float(user) + float(sys_)}
    total, ops = parse_self_count(err)
    if total is not None:
        out["requests"], out["request_ops"] = total, ops
    warnings = [l for l in err.splitlines() if "warning" in l.lower() or "retry" in l.lower()]
    if warnings:
        out["warnings"] = warnings[:10]
    if server:
        server_cpu = server.cpu() - cpu0
        ops, errors = server.requests(off0, server.quiet_offset(), bucket)
        out.update(server_requests=sum(ops.values()), server_ops=ops, server_errors=errors, server_cpu_s=server_cpu,
                   others_cpu_s=max(0.0, busy - out["cpu_s"] - server_cpu))
        MEASURED.append(out)
    return out


def clean_env(extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REPO_", "RESTIC_", "AWS_"))}
    env.update(extra)
    return env


class RepoS3:
    name = "repo"

    def __init__(self, a, server, bucket, cache, stream):
        self.bin, self.server, self.bucket, self.stream = a.repo_bin, server, bucket, stream
        self.location = "s3:%s/%s/repo" % (server.endpoint, bucket)
        self.env = clean_env(dict(server.env, REPO_REPOSITORY=self.location, REPO_PASSWORD=PASSWORD, REPO_CACHE_DIR=cache))

    def cmd(self, *args, stdin=None):
        return run([self.bin] + list(args), self.env, stdin, self.server, self.bucket)

    def init(self):
        return self.cmd("init", "-v")

    def store(self, path):
        return self.cmd("store", "-v", "--name", self.stream, stdin=path)

    def dump(self):
        return self.cmd("dump", "-v", "latest")

    def size(self):
        return sum(s for _, s in self.server.client.list(self.bucket, "repo/"))


class ResticS3:
    name = "restic"

    def __init__(self, a, server, bucket, cache, stream):
        self.server, self.bucket, self.stream = server, bucket, stream
        self.env = clean_env(dict(server.env, RESTIC_REPOSITORY="s3:%s/%s" % (server.endpoint, bucket),
                                  RESTIC_PASSWORD=PASSWORD, RESTIC_CACHE_DIR=cache))

    def cmd(self, *args, stdin=None):
        return run(["restic"] + list(args), self.env, stdin, self.server, self.bucket)

    def init(self):
        return self.cmd("init", "-q")

    def store(self, path):
        return self.cmd("backup", "-q", "--stdin", "--stdin-filename", self.stream, stdin=path)

    def dump(self):
        return self.cmd("dump", "-q", "latest", self.stream)

    def size(self):
        return sum(s for _, s in self.server.client.list(self.bucket))


def describe(m):
    """A one-line note of a measurement for the progress log."""
    s = "%6.2f s, client CPU %5.2f s, %5.0f MB RSS" % (m["s"], m["cpu_s"], m["rss_mb"])
    if "requests" in m:
        s += ", repo counted %d requests" % m["requests"]
    if "server_requests" in m:
        s += ", server logged %d (radosgw+osd CPU %.2f s)" % (m["server_requests"], m["server_cpu_s"])
    if m.get("server_errors"):
        s += ", non-2xx %s" % m["server_errors"]
    return s


# ---------------------------------------------------------------------------------------------
# 1. The side-by-side series over S3.

def series(kind, day1, day2, a, server, work):
    size = {"first": os.path.getsize(day1), "next-day": os.path.getsize(day2), "unchanged": os.path.getsize(day2),
            "dump": os.path.getsize(day2)}
    stream = {"sql": "db.sql", "csv": "export.csv"}.get(kind, kind + ".tar")
    runs = {}  # (tool, phase) -> [measurement]
    sizes = {}
    for r in range(a.rounds):
        tools = []
        for cls, bucket in ((RepoS3, "repo-r%d" % r), (ResticS3, "restic-r%d" % r)):
            cache = os.path.join(work, "r%d" % r, cls.name + "-cache")
            shutil.rmtree(cache, ignore_errors=True)
            t = cls(a, server, bucket, cache, stream)
            t.init()
            tools.append(t)
        if r % 2 == 1:
            tools.reverse()
        for phase, label in PHASES:
            for t in tools:
                m = t.dump() if phase == "dump" else t.store(day1 if phase == "first" else day2)
                m["mb_s"] = size[label] / m["s"] / 1e6
                log("%s round %d: %-9s %-6s %s" % (kind, r + 1, label, t.name, describe(m)))
                runs.setdefault((t.name, phase), []).append(m)
        for t in tools:
            sizes.setdefault(t.name, []).append(t.size())
            shutil.rmtree(os.path.join(work, "r%d" % r, t.name + "-cache"), ignore_errors=True)

    def pick(tool, phase):
        """The median seconds, and the round whose time is the median (lower median) for counts."""
        ms = sorted(runs[(tool, phase)], key=lambda m: m["s"])
        mid = ms[(len(ms) - 1) // 2]
        return dict(mid, s=statistics.median(m["s"] for m in ms), mb_s=statistics.median(m["mb_s"] for m in ms),
                    all_s=[m["s"] for m in runs[(tool, phase)]])

    rows = {}
    for tool in ("repo", "restic"):
        rows[tool] = {phase: pick(tool, phase) for phase, _ in PHASES}
        rows[tool]["peak_rss_mb"] = max(m["rss_mb"] for (t, _), ms in runs.items() if t == tool for m in ms)
        rows[tool]["repo_size_mb"] = statistics.median(sizes[tool]) / 1e6
    ratios = {phase: rows["restic"][phase]["s"] / rows["repo"][phase]["s"] for phase, _ in PHASES}
    return {"corpus": kind, "input_mb": [size["first"] / 1e6, size["next-day"] / 1e6], "rounds": a.rounds,
            "rows": rows, "ratio_restic_over_repo": ratios}


# ---------------------------------------------------------------------------------------------
# 2. Open at scale.

def tiny_stream(i, seed):
    """A small distinct stream (about 1 KiB): one data blob, so one data pack per store."""
    rng = random.Random("scale-%d-%d" % (seed, i))
    return ("scale store %d\n" % i).encode() + rng.randbytes(1024)


def build_scale(a, work):
    """Builds (or reuses) the local repository with about --scale-packs packs and
    --scale-segments index segments; returns its description."""
    name = "scale-%dp-%ds-s%d" % (a.scale_packs, a.scale_segments, a.seed)
    base = os.path.join(work, name)
    done = os.path.join(base, "done.json")
    if os.path.exists(done):
        with open(done) as f:
            info = json.load(f)
        log("open at scale: reusing %s (%d packs, %d segments, %d snapshots; built in %.0f s)" % (
            base, info["packs"], info["segments"], info["snapshots"], info["build_s"]))
        return base, info
    shutil.rmtree(base, ignore_errors=True)
    os.makedirs(base)
    repo_dir, keyfile = os.path.join(base, "repository"), os.path.join(base, "machine.key")
    env = clean_env(dict(REPO_REPOSITORY=repo_dir, REPO_PASSWORD=PASSWORD, REPO_CACHE_DIR=os.path.join(base, "cache")))
    t_start = time.perf_counter()
    run([a.repo_bin, "init"], env)
    run([a.repo_bin, "key", "add", "--new-key-file", keyfile], env)
    kenv = clean_env(dict(REPO_REPOSITORY=repo_dir, REPO_KEY_FILE=keyfile))
    segments = a.scale_segments
    first = max(0, (a.scale_packs - 2 * segments) // 2)  # stores whose segments prune merges
    phases = {}

    def stores(lo, hi, label):
        counter = {"n": 0}
        lock = threading.Lock()
        t0 = time.perf_counter()

        def worker(w):
            wenv = dict(kenv, REPO_CACHE_DIR=os.path.join(base, "cache-w%d" % w))
            for i in range(lo + w, hi, a.scale_jobs):
                p = subprocess.run([a.repo_bin, "store", "-q", "--name", "s%d" % i], input=tiny_stream(i, a.seed),
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=wenv)
                if p.returncode != 0:
                    raise CommandFailed("command failed (exit %d): repo store -q --name s%d (local)\n%s" % (
                        p.returncode, i, p.stderr.decode(errors="replace")[-2000:]))
                with lock:
                    counter["n"] += 1
                    n = counter["n"]
                if n % 500 == 0:
                    el = time.perf_counter() - t0
                    log("open at scale: %s: %d of %d stores, %.0f s (%.0f ms a store)" % (label, n, hi - lo, el, el / n * 1000))

        with ThreadPoolExecutor(a.scale_jobs) as ex:
            for f in [ex.submit(worker, w) for w in range(a.scale_jobs)]:
                f.result()
        return time.perf_counter() - t0

    if first:
        phases["stores_before_prune"] = {"stores": first, "s": stores(0, first, "stores before prune")}
        t0 = time.perf_counter()
        run([a.repo_bin, "prune", "--safety-margin", "0"], kenv)
        phases["prune"] = {"s": time.perf_counter() - t0, "segments_after": len(os.listdir(os.path.join(repo_dir, "index")))}
        log("open at scale: prune merged the index into %d segment(s) in %.1f s" % (
            phases["prune"]["segments_after"], phases["prune"]["s"]))
    phases["stores_after_prune"] = {"stores": segments, "s": stores(first, first + segments, "stores after prune")}
    count = lambda sub: sum(len(fs) for _, _, fs in os.walk(os.path.join(repo_dir, sub)))
    info = {"packs": count("data"), "segments": count("index"), "snapshots": count("snapshots"),
            "bytes": sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(repo_dir) for f in fs),
            "stores": first + segments, "jobs": a.scale_jobs, "phases": phases, "build_s": time.perf_counter() - t_start}
    for d in os.listdir(base):
        if d.startswith("cache"):
            shutil.rmtree(os.path.join(base, d), ignore_errors=True)
    with open(done, "w") as f:
        json.dump(info, f, indent=2)
    log("open at scale: built %d packs, %d segments, %d snapshots in %.0f s" % (
        info["packs"], info["segments"], info["snapshots"], info["build_s"]))
    return base, info


def upload(server, local_repo, bucket, prefix, jobs=8):
    """Puts every object of a local repository under bucket/prefix/ (not `reserve`, which S3
    repositories do not have, nor locks)."""
    server.client.create_bucket(bucket)
    names = []
    for root, _, files in os.walk(local_repo):
        for f in files:
            rel = os.path.relpath(os.path.join(root, f), local_repo)
            if rel == "reserve" or rel.startswith("locks/"):
                continue
            names.append(rel)

    def put(rel):
        with open(os.path.join(local_repo, rel), "rb") as f:
            server.client.put(bucket, prefix + "/" + rel, f.read())

    with ThreadPoolExecutor(jobs) as ex:
        list(ex.map(put, names))
    return len(names)


def open_at_scale(a, server, work):
    base, info = build_scale(a, work)
    t0 = time.perf_counter()
    n = upload(server, os.path.join(base, "repository"), "scale", "repo")
    upload_s = time.perf_counter() - t0
    listed = server.client.list("scale", "repo/")
    on_s3 = {k: sum(1 for key, _ in listed if key.startswith("repo/%s/" % k)) for k in ("data", "index", "snapshots")}
    log("open at scale: uploaded %d objects in %.0f s; in the bucket: %d packs, %d index segments, %d snapshots" % (
        n, upload_s, on_s3["data"], on_s3["index"], on_s3["snapshots"]))

    stream_files = []
    for r in range(a.scale_rounds):
        path = os.path.join(work, "random-%dmib-%d.bin" % (a.store_mib, r))
        if not os.path.exists(path):
            with open(path, "wb") as f:
                f.write(random.Random("store-%d-%d" % (a.seed, r)).randbytes(a.store_mib << 20))
        stream_files.append(path)

    repos = {}
    for label, bucket in (("scale", "scale"), ("empty", "scale-empty")):
        cache = os.path.join(work, "scale-cache-" + label)
        shutil.rmtree(cache, ignore_errors=True)
        t = RepoS3(a, server, bucket, cache, "x")
        repos[label] = t
    repos["empty"].init()
    res = {"scale": {}, "empty": {}}
    for label, t in repos.items():
        m = t.cmd("snapshots", "-v")
        log("open at scale: %-5s snapshots -v, cold cache: %s" % (label, describe(m)))
        res[label]["snapshots_cold"] = m
    for r in range(a.scale_rounds):
        order = ("scale", "empty") if r % 2 == 0 else ("empty", "scale")
        for what in ("snapshots_warm", "store"):
            for label in order:
                t = repos[label]
                if what == "store":
                    m = t.cmd("store", "-v", "--name", "x", stdin=stream_files[r])
                else:
                    m = t.cmd("snapshots", "-v")
                log("open at scale: %-5s %-14s round %d: %s" % (label, what, r + 1, describe(m)))
                res[label].setdefault(what, []).append(m)
    # Another host prunes (a fresh cache: it reads the whole index, as prune does from the
    # backend anyway): forget all but the newest --store-mib stream, prune; then this host's next
    # open, with its warm cache, reads only the index segments that prune wrote.
    pruner = RepoS3(a, server, "scale", os.path.join(work, "scale-cache-pruner"), "x")
    shutil.rmtree(os.path.join(work, "scale-cache-pruner"), ignore_errors=True)
    m = pruner.cmd("forget", "-v", "--keep-hot", "0", "--keep-warm", "0", "--keep-cold", "0", "--keep-last", "1",
                   "--prune", "--safety-margin", "0")
    log("open at scale: scale forget --prune by another host: %s" % describe(m))
    res["scale"]["prune_elsewhere"] = m
    m = repos["scale"].cmd("snapshots", "-v")
    log("open at scale: scale snapshots -v after that prune, warm cache: %s" % describe(m))
    res["scale"]["snapshots_after_prune"] = m
    for label in res:
        for what in ("snapshots_warm", "store"):
            ms = sorted(res[label][what], key=lambda m: m["s"])
            mid = ms[(len(ms) - 1) // 2]
            res[label][what] = dict(mid, s=statistics.median(m["s"] for m in ms), all_s=[m["s"] for m in res[label][what]])
    for d in ("scale-cache-scale", "scale-cache-empty", "scale-cache-pruner"):
        shutil.rmtree(os.path.join(work, d), ignore_errors=True)
    return {"target_packs": a.scale_packs, "target_segments": a.scale_segments, "built": info, "on_s3": on_s3,
            "uploaded_objects": n, "upload_s": upload_s, "store_mib": a.store_mib, "rounds": a.scale_rounds,
            "results": res}


# ---------------------------------------------------------------------------------------------
# Report.

def machine_info():
    flags = set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    wanted = ("sha_ni", "avx512f", "avx512bw", "avx512vl", "avx2", "aes", "vaes", "vpclmulqdq", "pclmulqdq")
    return {"cpu_flags": {k: k in flags for k in wanted}, "cores": os.cpu_count()}


def cpu_busy():
    """Seconds of CPU time the whole machine has been busy (all cores), from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v) - v[3] - v[4]) / CLK_TCK  # minus idle and iowait


def ops_text(ops):
    return ", ".join("%s %d" % (k, n) for k, n in sorted(ops.items(), key=lambda kv: (-kv[1], kv[0])))


def text_report(d):
    L = ["repo vs restic over S3 (Ceph radosgw on loopback, one server for both, memstore OSD)",
         "machine:  " + d["machine"],
         "cpu:      %d cores; %s" % (d["cpu"]["cores"], ", ".join("%s %s" % (k, "yes" if v else "no")
                                                               for k, v in d["cpu"]["cpu_flags"].items())),
         "versions: " + ", ".join(d["versions"].values()),
         "command:  " + d["command"],
         "server:   " + d.get("server_config", "?"),
         "when:     %s; load average %s at the start, %s at the end; other processes used %.2f cores on average while the timed commands ran" % (
             d["date"], d["load_start"], d["load_end"], d.get("others_cores", 0))]
    c = d.get("series")
    if c:
        rows = c["rows"]
        L += ["", "1. %s corpus over S3: day 1 %.0f MB, day 2 %.0f MB; median of %d round%s, interleaved "
              "(order alternated each round)" % (c["corpus"], c["input_mb"][0], c["input_mb"][1], c["rounds"],
                                                 "" if c["rounds"] == 1 else "s"),
              "   ratio = restic's seconds / repo's seconds (above 1: repo faster; target >= %.1f)" % TARGET, "",
              "   %-10s %14s %14s %8s  %-5s  %s" % ("phase", "repo", "restic", "ratio", "1.5x?",
                                                  "requests (radosgw log): repo / restic")]
        for phase, label in PHASES:
            rp, rs = rows["repo"][phase], rows["restic"][phase]
            ratio = c["ratio_restic_over_repo"][phase]
            L.append("   %-10s %5.2f s %4.0f MB/s %5.2f s %4.0f MB/s %7.2fx  %-5s  %d / %d" % (
                label, rp["s"], rp["mb_s"], rs["s"], rs["mb_s"], ratio, "yes" if ratio >= TARGET else "no",
                rp["server_requests"], rs["server_requests"]))
        L += ["", "   repo's own count (-v), per command:"]
        for phase, label in PHASES:
            rp = rows["repo"][phase]
            L.append("     %-10s %s requests (%s)" % (label, rp.get("requests", "?"), ops_text(rp.get("request_ops", {}))))
        L += ["", "   restic, as radosgw logged it:"]
        for phase, label in PHASES:
            rs = rows["restic"][phase]
            L.append("     %-10s %d requests (%s)" % (label, rs["server_requests"], ops_text(rs["server_ops"])))
        L += ["", "   %-10s %20s %20s %22s" % ("CPU s", "repo client", "restic client", "radosgw+osd repo/restic")]
        for phase, label in PHASES:
            rp, rs = rows["repo"][phase], rows["restic"][phase]
            L.append("   %-10s %20.2f %20.2f %15.2f / %.2f" % (label, rp["cpu_s"], rs["cpu_s"], rp["server_cpu_s"], rs["server_cpu_s"]))
        L.append("   peak RSS: repo %.0f MB, restic %.0f MB; in the bucket after the series: repo %.0f MB, restic %.0f MB" % (
            rows["repo"]["peak_rss_mb"], rows["restic"]["peak_rss_mb"], rows["repo"]["repo_size_mb"], rows["restic"]["repo_size_mb"]))
        if c["rounds"] > 1:
            L.append("   all rounds, seconds: " + "; ".join(
                "%s: %s" % (label, ", ".join("%s %s" % (t, " ".join("%.2f" % x for x in rows[t][phase]["all_s"]))
                                             for t in ("repo", "restic"))) for phase, label in PHASES))
        errs = {t: {p: rows[t][p]["server_errors"] for p, _ in PHASES if rows[t][p].get("server_errors")} for t in rows}
        if any(errs.values()):
            L.append("   non-2xx answers (median round): " + json.dumps(errs))
    s = d.get("scale")
    if s:
        b, res = s["built"], s["results"]
        L += ["", "2. open at scale: %d packs, %d index segments, %d snapshots in the bucket (target %d packs, %d segments)" % (
            s["on_s3"]["data"], s["on_s3"]["index"], s["on_s3"]["snapshots"], s["target_packs"], s["target_segments"]),
              "   built locally in %.0f s (%d tiny stores, %d at a time%s), uploaded as %d objects in %.0f s" % (
                  b["build_s"], b["stores"], b["jobs"],
                  ", prune --safety-margin 0 between" if "prune" in b["phases"] else "", s["uploaded_objects"], s["upload_s"]),
              "   warm rows: median of %d rounds, interleaved with the same commands on an empty repository" % s["rounds"], "",
              "   %-34s %-42s %s" % ("command", "at scale", "empty repository")]
        for what, label in (("snapshots_cold", "snapshots -v, cold cache (first)"), ("snapshots_warm", "snapshots -v, warm cache"),
                            ("store", "store -v, %d MiB random, warm" % s["store_mib"])):
            cells = []
            for repo in ("scale", "empty"):
                m = res[repo][what]
                cells.append("%6.2f s, %d requests" % (m["s"], m.get("requests", -1)))
            L.append("   %-34s %-42s %s" % (label, cells[0], cells[1]))
        for what, label in (("prune_elsewhere", "forget --prune, another host"), ("snapshots_after_prune", "snapshots -v, warm, after it")):
            m = res["scale"].get(what)
            if m:
                L.append("   %-34s %6.2f s, %d requests" % (label, m["s"], m.get("requests", -1)))
        L += ["", "   requests, as repo counted them (-v):"]
        for what in ("snapshots_cold", "snapshots_warm", "store", "prune_elsewhere", "snapshots_after_prune"):
            for repo in ("scale", "empty"):
                m = res[repo].get(what)
                if not m:
                    continue
                L.append("     %-15s %-6s %s (client CPU %.2f s, radosgw+osd CPU %.2f s, radosgw logged %d)" % (
                    what, repo, ops_text(m.get("request_ops", {})), m["cpu_s"], m["server_cpu_s"], m["server_requests"]))
        if s["rounds"] > 1:
            L.append("   all rounds, seconds: " + "; ".join("%s %s %s" % (w, r, " ".join("%.2f" % x for x in res[r][w]["all_s"]))
                                                        for w in ("snapshots_warm", "store") for r in ("scale", "empty")))
    return "\n".join(L)

def svg_chart(d):
    """Bar chart of the series: MB/s per phase, repo beside restic, with restic's time / repo's
    time over each pair (the issue's target is 1.5); the run's machine, versions and command in
    the header."""
    c = d["series"]
    flags = ", ".join(k for k in ("sha_ni", "avx512f", "aes") if d["cpu"]["cpu_flags"].get(k))
    head = [d["machine"], "%s; CPU flags: %s" % (", ".join(d["versions"].values()), flags or "none of sha_ni, avx512f, aes"),
            "%s; median of %d rounds; %s" % (d["date"], c["rounds"], d["command"])]
    W, H, left, top_pad, plot_h = 760, 420, 60, 95, 250
    plot_w = W - left - 30
    tools = (("repo", "#2b6cb0"), ("restic", "#dd6b20"))
    vals = [c["rows"][t][k]["mb_s"] for t, _ in tools for k, _ in PHASES]
    step = 50 if max(vals) <= 400 else 100
    top = step * (int(max(vals) * 1.15 / step) + 1)
    o = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" '
         'font-family="Helvetica, Arial, sans-serif" font-size="12">' % (W, H, W, H),
         '<rect width="100%" height="100%" fill="white"/>',
         '<text x="%d" y="24" font-size="16" font-weight="bold">repo and restic over S3 (radosgw on loopback), '
         '%s corpus: MB/s, higher is better</text>' % (left, esc(c["corpus"]))]
    for i, line in enumerate(head):
        o.append('<text x="%d" y="%d" fill="#555" font-size="10">%s</text>' % (left, 44 + 14 * i, esc(line[:150])))
    ybase = top_pad + plot_h
    t = 0
    while t <= top:
        y = ybase - plot_h * t / top
        o.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#e2e2e2"/>' % (left, left + plot_w, y, y))
        o.append('<text x="%d" y="%.1f" text-anchor="end" fill="#555">%d</text>' % (left - 6, y + 4, t))
        t += step
    o.append('<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="#333"/>' % (left, left + plot_w, ybase, ybase))
    gw = plot_w / len(PHASES)
    bw = 48
    for pi, (key, label) in enumerate(PHASES):
        gx = left + pi * gw + (gw - bw * len(tools)) / 2
        for ti, (tool, color) in enumerate(tools):
            v = c["rows"][tool][key]["mb_s"]
            h = plot_h * v / top
            x = gx + ti * bw
            o.append('<rect x="%.1f" y="%.1f" width="%d" height="%.1f" fill="%s"><title>%s %s: %.0f MB/s</title></rect>' % (
                x + 2, ybase - h, bw - 4, h, color, tool, label, v))
            o.append('<text x="%.1f" y="%.1f" text-anchor="middle" font-size="10">%.0f</text>' % (x + bw / 2, ybase - h - 3, v))
        ratio = c["ratio_restic_over_repo"][key]
        peak = max(c["rows"][tool][key]["mb_s"] for tool, _ in tools)
        o.append('<text x="%.1f" y="%.1f" text-anchor="middle" font-weight="bold" fill="%s">%.2fx</text>' % (
            left + pi * gw + gw / 2, ybase - plot_h * peak / top - 18, "#276749" if ratio >= TARGET else "#c53030", ratio))
        o.append('<text x="%.1f" y="%d" text-anchor="middle">%s</text>' % (left + pi * gw + gw / 2, ybase + 16, label))
    ly, lx = ybase + 42, left
    for tool, color in tools:
        o.append('<rect x="%d" y="%d" width="12" height="12" fill="%s"/>' % (lx, ly - 10, color))
        o.append('<text x="%d" y="%d">%s</text>' % (lx + 18, ly, tool))
        lx += 80
    o.append('<text x="%d" y="%d" fill="#555" font-size="11">above each pair: restic\'s time / repo\'s time '
             '(green: at least the %.1fx target)</text>' % (lx + 10, ly, TARGET))
    o.append("</svg>")
    return "\n".join(o) + "\n"


def esc(t):
    return str(t).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo-bin", default=os.path.join(TOP, ".build/release/repo"))
    ap.add_argument("--corpus", default="sql", help="corpus.py kind for the series (default sql: pg_dump plain format)")
    ap.add_argument("--mb", type=int, default=300, help="size of the generated day-1 input")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--parts", type=int, default=30, help="parts of the directory kinds (not sql)")
    ap.add_argument("--jobs", type=int, default=min(4, os.cpu_count() or 1), help="processes generating the corpus")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--scale-packs", type=int, default=10000)
    ap.add_argument("--scale-segments", type=int, default=2000)
    ap.add_argument("--scale-jobs", type=int, default=3, help="stores at a time while building the scale repository")
    ap.add_argument("--scale-rounds", type=int, default=3)
    ap.add_argument("--store-mib", type=int, default=16)
    ap.add_argument("--rgw-nagle", action="store_true",
                    help="keep radosgw as s3-server.sh starts it (Nagle on: ~40 ms per request on a reused "
                         "connection); by default it is restarted with tcp_nodelay=1")
    ap.add_argument("--skip-series", action="store_true")
    ap.add_argument("--skip-scale", action="store_true")
    ap.add_argument("--work", default=None, help="scratch directory, kept: inputs and the scale build are reused "
                                                 "(default: a new temp dir, removed)")
    ap.add_argument("--json", default=os.path.join(HERE, "results", "s3_compare.json"))
    ap.add_argument("--text", default=os.path.join(HERE, "results", "s3_compare.txt"))
    ap.add_argument("--load", metavar="FILE.json", help="print the report of a saved run")
    ap.add_argument("--chart", metavar="FILE.svg", help="also write a bar chart of the series (with --load too)")
    a = ap.parse_args()

    if a.load:
        with open(a.load) as f:
            loaded = json.load(f)
        print(text_report(loaded))
        if a.chart and loaded.get("series"):
            with open(a.chart, "w") as f:
                f.write(svg_chart(loaded))
        return
    a.repo_bin = os.path.abspath(a.repo_bin)
    for tool in ("restic", "radosgw"):
        if not shutil.which(tool):
            sys.exit("%s is missing (apt-get install -y restic; scripts/install-deps.sh for radosgw)" % tool)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    work = a.work or tempfile.mkdtemp(prefix="repo-s3-bench-")
    os.makedirs(work, exist_ok=True)
    work = os.path.abspath(work)

    data = environment(a)
    data["versions"] = {k: v for k, v in data["versions"].items() if k in ("repo", "restic", "python")}
    data["cpu"] = machine_info()
    data["date"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    data["load_start"] = open("/proc/loadavg").read().split()[0]
    server = Server(os.path.join(work, "s3-server"))
    t0 = time.perf_counter()
    code = 0
    try:
        if not a.skip_series:
            day1, day2 = make_inputs(a.corpus, a, work, HERE)
        server.start()
        data["versions"]["radosgw"] = server.version()
        if a.rgw_nagle:
            data["server_config"] = ("radosgw as scripts/s3-server.sh starts it: beast frontend without tcp_nodelay "
                                     "(about 40 ms per request on a kept-alive connection: Nagle + delayed ACK)")
        else:
            server.set_tcp_nodelay()
            data["server_config"] = ("radosgw restarted by this script with rgw_frontends ... tcp_nodelay=1 "
                                     "(without it every request on a kept-alive connection waits about 40 ms: "
                                     "Nagle + delayed ACK; --rgw-nagle measures that)")
        t0 = time.perf_counter()
        if not a.skip_series:
            data["series"] = series(a.corpus, day1, day2, a, server, work)
        if not a.skip_scale:
            data["scale"] = open_at_scale(a, server, work)
    except CommandFailed as e:
        log(str(e))
        data["error"] = str(e)
        code = 1
    except KeyboardInterrupt:
        log("interrupted")
        code = 130
    finally:
        elapsed = time.perf_counter() - t0
        server.stop()
        if not a.work:
            shutil.rmtree(work, ignore_errors=True)
    if code == 130:
        sys.exit(code)
    # Other processes' CPU while the timed commands ran: the machine's busy time minus the
    # command's own and the server's.
    timed = sum(m["s"] for m in MEASURED)
    data["others_cores"] = sum(m["others_cpu_s"] for m in MEASURED) / timed if timed else 0
    data["load_end"] = open("/proc/loadavg").read().split()[0]
    data["elapsed_s"] = elapsed
    text = text_report(data) if code == 0 else text_report(data) + "\n\nrun failed:\n" + data["error"]
    if code == 0:
        for path, body in ((a.json, json.dumps(data, indent=2, default=str)), (a.text, text + "\n")):
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            with open(path, "w") as f:
                f.write(body)
        if a.chart and data.get("series"):
            with open(a.chart, "w") as f:
                f.write(svg_chart(data))
    print(text)
    sys.exit(code)


if __name__ == "__main__":
    main()
