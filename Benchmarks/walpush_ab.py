#!/usr/bin/env python3
"""A/B of two `repo` binaries on `wal-push`: whole-process wall time per 16 MiB segment.

Each round makes a fresh repository (with a machine key file, no password KDF) per binary, then
pushes every segment with both binaries, alternating which goes first; running repo-fuzz
processes are stopped (SIGSTOP, under a second at a time) while a segment is timed. Prints the
median and mean per binary. Segments are real WAL files, e.g. what `archive_command = 'cp %p
DIR/%f'` collected while pgbench ran. A copied `repo` launcher (since 5d318b7) needs
`repo-core` copied beside it.

  python3 Benchmarks/walpush_ab.py --a /tmp/repo-old --b .build/release/repo \\
      --segments /tmp/pgw/segs --last 4 --rounds 6
"""
import argparse, glob, os, shutil, signal, statistics, subprocess, tempfile, time

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--a", required=True, help="first repo binary")
ap.add_argument("--b", required=True, help="second repo binary")
ap.add_argument("--segments", required=True, help="directory of WAL segment files")
ap.add_argument("--last", type=int, default=4, help="use the last N segments by name (default 4)")
ap.add_argument("--rounds", type=int, default=6)
a = ap.parse_args()

segs = sorted(glob.glob(os.path.join(a.segments, "*")))[-a.last:]
bins = {"a": a.a, "b": a.b}
env = dict(os.environ, REPO_PASSWORD="x")
work = tempfile.mkdtemp(prefix="walpush-ab-")


def fuzzers():
    out = subprocess.run(["pgrep", "-f", "repo-fuzz"], capture_output=True, text=True).stdout.split()
    return [int(p) for p in out]


res = {k: [] for k in bins}
try:
    for rnd in range(a.rounds):
        for name, b in bins.items():
            d = os.path.join(work, "%s%d" % (name, rnd))
            subprocess.run([b, "init", "-q", "--repo", d + "/r"], env=env, check=True, capture_output=True)
            subprocess.run([b, "key", "add", "-q", "--repo", d + "/r", "--new-key-file", d + "/k"], env=env, check=True, capture_output=True)
        for s in segs:
            order = list(bins.items()) if rnd % 2 == 0 else list(reversed(list(bins.items())))
            stopped = fuzzers()
            for p in stopped:
                os.kill(p, signal.SIGSTOP)
            try:
                for name, b in order:
                    d = os.path.join(work, "%s%d" % (name, rnd))
                    t = time.perf_counter()
                    subprocess.run([b, "wal-push", "-q", "--repo", d + "/r", "--key-file", d + "/k", s], check=True)
                    res[name].append((time.perf_counter() - t) * 1000)
            finally:
                for p in stopped:
                    os.kill(p, signal.SIGCONT)
            time.sleep(0.3)
finally:
    shutil.rmtree(work, ignore_errors=True)
for k, v in res.items():
    print("%s %s: median %.1f ms, mean %.1f ms, n=%d" % (k, bins[k], statistics.median(v), statistics.mean(v), len(v)))
