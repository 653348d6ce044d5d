#!/usr/bin/env python3
"""Side-by-side benchmark: repo against restic and borg on the same files, in one run.

Every tool gets the same series on the same input, interleaved tool by tool inside each round
so that drift of this shared machine hits all of them alike:

  first     store of day 1 into an empty repository
  next-day  store of day 2 (appended, updated and inserted rows)
  unchanged store of day 2 again
  dump      restore of the day-2 snapshot to /dev/null

It also measures the limits on the same file: `zstd -T2 -<level>` and `openssl dgst -sha256`.
Reports MB/s (input bytes / wall seconds; median of --rounds), peak RSS (GNU time) and the
repository size after the series. Release builds only: pass --repo-bin .build/release/repo.

  python3 Benchmarks/side_by_side.py --repo-bin .build/release/repo --mb 300
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

PASSWORD = "bench password"


def run(cmd, stdin=None, env=None, stdout=subprocess.DEVNULL):
    """Runs cmd under GNU time; returns (seconds, peak RSS in MB)."""
    fd, tfile = tempfile.mkstemp()
    os.close(fd)
    full = ["/usr/bin/time", "-f", "%M", "-o", tfile] + cmd
    with open(stdin, "rb") if stdin else open(os.devnull, "rb") as f:
        t0 = time.perf_counter()
        p = subprocess.run(full, stdin=f, stdout=stdout, stderr=subprocess.PIPE, env=env)
        dt = time.perf_counter() - t0
    with open(tfile) as f:
        rss = int(f.read().strip().splitlines()[-1]) / 1024
    os.unlink(tfile)
    if p.returncode != 0:
        sys.exit("command failed (%d): %s\n%s" % (p.returncode, " ".join(cmd), p.stderr.decode()[-2000:]))
    return dt, rss


def du(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except FileNotFoundError:
                pass
    return total


class Tool:
    def __init__(self, name, work):
        self.name, self.work = name, work
        self.dir = os.path.join(work, name)
        self.env = dict(os.environ)


class Repo(Tool):
    def __init__(self, work, binary, level):
        super().__init__("repo", work)
        self.bin, self.level = binary, level
        self.env.update(REPO_REPOSITORY=self.dir + "/repository", REPO_PASSWORD=PASSWORD, REPO_CACHE_DIR=self.dir + "/cache")

    def init(self):
        run([self.bin, "init", "--compression", "zstd:%d" % self.level], env=self.env)

    def store(self, path):
        return run([self.bin, "store", "--name", "db.sql"], stdin=path, env=self.env)

    def dump(self):
        return run([self.bin, "dump", "latest"], env=self.env)

    def size(self):
        return du(self.dir + "/repository")


class Restic(Tool):
    def __init__(self, work):
        super().__init__("restic", work)
        self.env.update(RESTIC_REPOSITORY=self.dir + "/repository", RESTIC_PASSWORD=PASSWORD,
                        RESTIC_CACHE_DIR=self.dir + "/cache")

    def init(self):
        run(["restic", "init", "-q"], env=self.env)

    def store(self, path):
        return run(["restic", "backup", "-q", "--stdin", "--stdin-filename", "db.sql"], stdin=path, env=self.env)

    def dump(self):
        return run(["restic", "dump", "-q", "latest", "db.sql"], env=self.env)

    def size(self):
        return du(self.dir + "/repository")


class Borg(Tool):
    def __init__(self, work, level):
        super().__init__("borg", work)
        self.level, self.n = level, 0
        self.env.update(BORG_REPO=self.dir + "/repository", BORG_PASSPHRASE=PASSWORD, BORG_BASE_DIR=self.dir + "/base",
                        BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK="yes")

    def init(self):
        run(["borg", "init", "--encryption", "repokey-blake2"], env=self.env)

    def store(self, path):
        self.n += 1
        return run(["borg", "create", "--compression", "zstd,%d" % self.level, "::s%d" % self.n, "-"], stdin=path, env=self.env)

    def dump(self):
        return run(["borg", "extract", "--stdout", "::s%d" % self.n], env=self.env)

    def size(self):
        return du(self.dir + "/repository")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo-bin", default=".build/release/repo")
    ap.add_argument("--mb", type=int, default=300, help="size of the generated SQL dump")
    ap.add_argument("--day1", help="use this file as day 1 instead of generating one")
    ap.add_argument("--day2", help="use this file as day 2")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--level", type=int, default=3, help="zstd level for repo, borg and the zstd limit")
    ap.add_argument("--tools", default="repo,restic,borg")
    ap.add_argument("--work", default=None, help="scratch directory (default: a new temp dir)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()

    work = a.work or tempfile.mkdtemp(prefix="repo-bench-")
    here = os.path.dirname(os.path.abspath(__file__))
    day1, day2 = a.day1, a.day2
    if not day1:
        day1, day2 = os.path.join(work, "day1.sql"), os.path.join(work, "day2.sql")
        for path, extra in ((day1, []), (day2, ["--next-day"])):
            with open(path, "w") as f:
                subprocess.run([sys.executable, os.path.join(here, "corpus.py"), "sql", "--mb", str(a.mb)] + extra, stdout=f, check=True)
    size1, size2 = os.path.getsize(day1), os.path.getsize(day2)
    mb = lambda n, s: n / s / 1e6

    results = {}
    for r in range(a.rounds):
        tools = []
        for name in a.tools.split(","):
            t = {"repo": lambda: Repo(os.path.join(work, "r%d" % r), os.path.abspath(a.repo_bin), a.level),
                 "restic": lambda: Restic(os.path.join(work, "r%d" % r)),
                 "borg": lambda: Borg(os.path.join(work, "r%d" % r), a.level)}[name]()
            shutil.rmtree(t.dir, ignore_errors=True)
            os.makedirs(t.dir)
            t.init()
            tools.append(t)
        for phase, path, size in (("first", day1, size1), ("next-day", day2, size2), ("unchanged", day2, size2)):
            for t in tools:
                dt, rss = t.store(path)
                results.setdefault((t.name, phase), []).append((mb(size, dt), rss))
        for t in tools:
            dt, rss = t.dump()
            results.setdefault((t.name, "dump"), []).append((mb(size2, dt), rss))
            results.setdefault((t.name, "size"), []).append((t.size(), 0))
        for t in tools:
            shutil.rmtree(t.dir, ignore_errors=True)
        # Limits on the same file, same run.
        dt, _ = run(["zstd", "-T2", "-%d" % a.level, "-c", day1])
        results.setdefault(("zstd -T2 -%d" % a.level, "first"), []).append((mb(size1, dt), 0))
        dt, _ = run(["openssl", "dgst", "-sha256", day1])
        results.setdefault(("sha256", "first"), []).append((mb(size1, dt), 0))

    med = lambda k, i=0: statistics.median(v[i] for v in results[k]) if k in results else None
    names = a.tools.split(",")
    rows = []
    for n in names:
        rows.append({"tool": n, "first": med((n, "first")), "next_day": med((n, "next-day")), "unchanged": med((n, "unchanged")),
                     "dump": med((n, "dump")), "peak_rss_mb": max(v[1] for k, vs in results.items() if k[0] == n for v in vs),
                     "repo_size_mb": med((n, "size")) / 1e6})
    limits = {"zstd": med(("zstd -T2 -%d" % a.level, "first")), "sha256": med(("sha256", "first"))}
    if a.json:
        print(json.dumps({"input_mb": [size1 / 1e6, size2 / 1e6], "rows": rows, "limits": limits}, indent=2))
    else:
        print("input: day 1 %.0f MB, day 2 %.0f MB; %d round(s); %s" % (size1 / 1e6, size2 / 1e6, a.rounds, work))
        print("%-8s %10s %10s %10s %10s %9s %10s" % ("tool", "first", "next-day", "unchanged", "dump", "peak RSS", "repo size"))
        for row in rows:
            print("%-8s %7.0f MB/s %5.0f MB/s %5.0f MB/s %5.0f MB/s %6.0f MB %7.0f MB" % (
                row["tool"], row["first"], row["next_day"], row["unchanged"], row["dump"], row["peak_rss_mb"], row["repo_size_mb"]))
        print("limits on day 1: zstd -T2 -%d %.0f MB/s, openssl sha256 %.0f MB/s" % (a.level, limits["zstd"], limits["sha256"]))
    if not a.work:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
