#!/usr/bin/env python3
"""What one `repo wal-fetch` of an already spooled segment costs, whole process: the call
PostgreSQL's startup process waits for once per WAL segment during recovery (README, "Speed
against pgBackRest"). Uses the repository of a kept `pg_compare.py --only 3 --keep` run: the
first binary's prefetcher spools one segment, which is then linked back into the spool before
every call. The binaries are called in turn (interleaved), each with --prefetch 0 so that no
prefetcher starts; prints each one's median wall time, user and system CPU, and minor page
faults (os.wait4). A copied `repo` launcher needs `repo-core` beside it; passing
`.build/release/repo-core` measures the call without the launcher.

  python3 Benchmarks/pg_compare.py --only 3 --keep --work /tmp/pgc3w
  python3 Benchmarks/walfetch_calls.py --work /tmp/pgc3w --calls 300 OLD_BINARY NEW_BINARY
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
ap.add_argument("--work", required=True, help="work directory of a kept pg_compare.py run")
ap.add_argument("--calls", type=int, default=300, help="calls per binary")
ap.add_argument("binaries", nargs="+")
a = ap.parse_args()

bins = [os.path.realpath(b) for b in a.binaries]
repo, key = os.path.join(a.work, "main", "repo"), os.path.join(a.work, "main", "repo.key")
root = tempfile.mkdtemp(prefix="walfetch-calls-", dir=a.work)
try:
    spool_root = os.path.join(root, "spool")
    subprocess.run([bins[0], "wal-fetch", "--repo", repo, "--key-file", key, "--spool", spool_root, "--prefetch", "1",
                    "--prefetch-worker", "000000010000000000000000", os.devnull], check=True)
    (spool,) = [os.path.join(spool_root, d) for d in os.listdir(spool_root)]
    (name,) = [n for n in os.listdir(spool) if len(n) == 24]
    source, dest = os.path.join(root, "segment"), os.path.join(root, "dest")
    os.rename(os.path.join(spool, name), source)
    env = {"PATH": "/usr/bin:/bin", "REPO_WAL_SPOOL": spool_root}
    wall = {b: [] for b in bins}; user = {b: [] for b in bins}; system = {b: [] for b in bins}; faults = {b: [] for b in bins}
    for _ in range(a.calls):
        for b in bins:
            os.link(source, os.path.join(spool, name))
            argv = [b, "wal-fetch", "--repo", repo, "--key-file", key, "--prefetch", "0", name, dest]
            t0 = time.perf_counter()
            pid = os.posix_spawn(b, argv, env)
            _, status, ru = os.wait4(pid, 0)
            t1 = time.perf_counter()
            if os.waitstatus_to_exitcode(status) != 0 or not os.path.exists(dest):
                sys.exit("walfetch_calls.py: %s did not restore %s from the spool (status %d)" % (b, name, status))
            os.unlink(dest)
            wall[b].append((t1 - t0) * 1000); user[b].append(ru.ru_utime * 1000)
            system[b].append(ru.ru_stime * 1000); faults[b].append(ru.ru_minflt)
    for b in bins:
        print("%s: median %.2f ms a call (user %.2f ms, system %.2f ms, %d minor faults), %d calls"
              % (b, statistics.median(wall[b]), statistics.median(user[b]), statistics.median(system[b]),
                 statistics.median(faults[b]), a.calls))
finally:
    shutil.rmtree(root, ignore_errors=True)
