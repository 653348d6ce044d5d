#!/usr/bin/env python3
"""Index-scale benchmark: does a large index slow down an unchanged re-store, and what does it
cost in memory?

Target (issue): with 5 million blobs indexed, re-storing an unchanged 1 GB stream stays within
15 % of the empty-repository time, and resident memory added per indexed blob is <= 16 bytes.

What it does, in --work DIR:
  1. `repo init` two repositories, "empty" and "full" (one cache directory for both);
  2. generates the input once (corpus.py sql, or seeded random bytes; reused by later runs);
  3. stores it once into each;
  4. adds --blobs synthetic blobs to "full" with `index-scale fill` (real encrypted index
     segments of 100k blobs in ~16 MiB packs of ~1 MiB blobs, with an empty placeholder file per pack
     so listing data/ costs what it would; the packs hold no data), then runs
     `repo snapshots` in both so catalog synchronisation happens outside the timed part;
  5. re-stores the unchanged input --warmup times per repository (untimed), then --rounds times,
     alternating which repository goes first, under GNU time (wall seconds, peak RSS);
  6. prints the median times, their ratio, and (peak RSS full - peak RSS empty) / --blobs.

How to run (release builds of both binaries):
  swift build -c release                                     # repo, in the top directory
  (cd Benchmarks && swift build -c release --product index-scale)
  python3 Benchmarks/index_scale.py                          # 5M blobs, 1000 MB, 3 rounds
  python3 Benchmarks/index_scale.py --blobs 200000 --mb 100  # a quick check of the tooling

The repositories are recreated on every run; the input is kept in --work for the next one.
Progress goes to standard error, the report to standard output.
"""
import argparse
import json
import os
import random
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from side_by_side import du, environment, log  # noqa: E402

PASSWORD = "index-scale password"


def run(cmd, env, stdin=None, timed=False):
    """Runs cmd (under GNU time if timed); returns (wall seconds, peak RSS in KiB or None)."""
    tfile = None
    if timed:
        fd, tfile = tempfile.mkstemp()
        os.close(fd)
        cmd = ["/usr/bin/time", "-f", "%M", "-o", tfile] + cmd
    with open(stdin, "rb") if stdin else open(os.devnull, "rb") as f:
        t0 = time.perf_counter()
        p = subprocess.run(cmd, stdin=f, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        dt = time.perf_counter() - t0
    rss = None
    if tfile:
        with open(tfile) as f:
            lines = f.read().strip().splitlines()
        os.unlink(tfile)
        rss = int(lines[-1]) if lines and lines[-1].isdigit() else None
    if p.returncode != 0:
        sys.exit("command failed (%d): %s\n%s" % (p.returncode, " ".join(map(shlex.quote, cmd)),
                                                  p.stderr.decode(errors="replace")[-2000:]))
    return dt, rss, p.stdout.decode(errors="replace")


def make_input(a):
    """Generates (or reuses) the input stream; returns its path."""
    path = os.path.join(a.work, "input-%s-%dmb-s%d.%s" % (a.input, a.mb, a.seed, "sql" if a.input == "sql" else "bin"))
    if os.path.exists(path):
        return path
    log("generating %d MB of %s input" % (a.mb, a.input))
    with open(path + ".tmp", "wb") as f:
        if a.input == "sql":
            subprocess.run([sys.executable, os.path.join(HERE, "corpus.py"), "sql", "--mb", str(a.mb),
                            "--seed", str(a.seed), "--jobs", str(os.cpu_count() or 1)], stdout=f, check=True)
        else:
            rng = random.Random(a.seed)
            for _ in range(a.mb):
                f.write(rng.randbytes(1_000_000))
    os.replace(path + ".tmp", path)
    return path


class Repo:
    def __init__(self, name, a, cache):
        self.name, self.dir, self.bin = name, os.path.join(a.work, name), a.repo_bin
        self.env = dict(os.environ, REPO_REPOSITORY=self.dir, REPO_PASSWORD=PASSWORD, REPO_CACHE_DIR=cache)
        self.times, self.rss = [], []

    def init(self):
        run([self.bin, "init"], self.env)

    def store(self, path, timed=False):
        dt, rss, _ = run([self.bin, "store", "--name", "index-scale"], self.env, stdin=path, timed=timed)
        if timed:
            self.times.append(dt)
            self.rss.append(rss)
        return dt

    def cache_bytes(self):
        """Size of this repository's cache subdirectory (named by the repository id in its config)."""
        with open(os.path.join(self.dir, "config")) as f:
            rid = json.load(f)["id"]
        return du(os.path.join(self.env["REPO_CACHE_DIR"], rid))

    def snapshots(self):
        return run([self.bin, "snapshots"], self.env)[0]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repo-bin", default=os.path.join(TOP, ".build/release/repo"), help="repo binary (release build)")
    p.add_argument("--tool", default=os.path.join(HERE, ".build/release/index-scale"), help="index-scale binary")
    p.add_argument("--blobs", type=int, default=5_000_000, help="synthetic blobs added to the full repository")
    p.add_argument("--mb", type=int, default=1000, help="input size in MB")
    p.add_argument("--input", choices=("sql", "random"), default="sql", help="corpus.py sql, or seeded random bytes")
    p.add_argument("--seed", type=int, default=1, help="input seed")
    p.add_argument("--rounds", type=int, default=3, help="timed re-stores per repository (median)")
    p.add_argument("--warmup", type=int, default=1, help="untimed re-stores per repository first")
    p.add_argument("--no-pack-files", action="store_true",
                   help="do not create empty placeholder files for the synthetic packs (by default they exist, "
                        "so the data/ listing every command does on open is as large as in a real repository)")
    p.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "repo-index-scale"), help="work directory")
    a = p.parse_args()
    a.repo_bin, a.tool, a.work = map(os.path.abspath, (a.repo_bin, a.tool, a.work))
    for path, how in ((a.repo_bin, "swift build -c release"),
                      (a.tool, "cd Benchmarks && swift build -c release --product index-scale")):
        if not os.access(path, os.X_OK):
            sys.exit("%s is missing: build it with `%s` (or pass its path)" % (path, how))
    if not os.access("/usr/bin/time", os.X_OK):
        sys.exit("/usr/bin/time (GNU time) is needed for peak RSS: apt-get install time")

    os.makedirs(a.work, exist_ok=True)
    cache = os.path.join(a.work, "cache")
    for d in ("empty", "full", "cache"):
        shutil.rmtree(os.path.join(a.work, d), ignore_errors=True)
    empty, full = Repo("empty", a, cache), Repo("full", a, cache)
    for r in (empty, full):
        r.init()
    data = make_input(a)
    size = os.path.getsize(data)

    for r in (empty, full):
        log("%s: first store of %d MB: %.1f s" % (r.name, size // 1_000_000, r.store(data)))
    log("full: adding %d synthetic blobs" % a.blobs)
    t0 = time.perf_counter()
    _, _, out = run([a.tool, "fill", "--repo", full.dir, "--blobs", str(a.blobs), "--cache-dir", cache]
                    + ([] if a.no_pack_files else ["--pack-files"]), full.env)
    fill_s = time.perf_counter() - t0
    log("  " + out.strip())
    sync = {r.name: r.snapshots() for r in (empty, full)}
    log("catalog sync (`repo snapshots`): empty %.1f s, full %.1f s" % (sync["empty"], sync["full"]))
    for i in range(a.warmup):
        for r in (empty, full):
            log("%s: warm-up re-store %d: %.2f s" % (r.name, i + 1, r.store(data)))
    for i in range(a.rounds):
        for r in ((empty, full) if i % 2 == 0 else (full, empty)):
            r.store(data, timed=True)
            log("%s: round %d: %.2f s, peak RSS %.1f MB" % (r.name, i + 1, r.times[-1], r.rss[-1] / 1024))

    te, tf = statistics.median(empty.times), statistics.median(full.times)
    re_, rf = statistics.median(empty.rss), statistics.median(full.rss)
    per_blob = (rf - re_) * 1024 / a.blobs
    print("index scale: %d blobs indexed, unchanged re-store of %.0f MB (%s), median of %d rounds"
          % (a.blobs, size / 1e6, a.input, a.rounds))
    print("  %-28s %10s %12s" % ("", "seconds", "peak RSS MB"))
    print("  %-28s %10.2f %12.1f" % ("empty repository", te, re_ / 1024))
    print("  %-28s %10.2f %12.1f" % ("%d-blob repository" % a.blobs, tf, rf / 1024))
    print("  time ratio full/empty: %.3f (%+.1f %%; target <= +15 %%)" % (tf / te, (tf / te - 1) * 100))
    print("  resident memory per indexed blob: %.1f bytes (target <= 16)" % per_blob)
    print("  all rounds: empty %s s; full %s s" % (" ".join("%.2f" % t for t in empty.times),
                                                  " ".join("%.2f" % t for t in full.times)))
    print("  fill %.1f s; catalog sync after fill %.1f s; cache (catalog, filter) empty %.1f MB, full %.1f MB"
          % (fill_s, sync["full"], empty.cache_bytes() / 1e6, full.cache_bytes() / 1e6))
    env = environment(a)
    print("  machine: %s\n  repo: %s\n  command: %s" % (env["machine"], env["versions"]["repo"], env["command"]))


if __name__ == "__main__":
    main()
