#!/usr/bin/env python3
"""Tree workloads, repo against restic (and borg) on the same files in one run.

Generates a partition-export tree like a TimescaleDB/ClickHouse export directory: P partition
directories, each with one CSV export and a few binary column files plus small mark files.
Then, per tool, interleaved: first backup, incremental backup after 1 % of the files changed
and one partition was added, and a full restore. Optionally the same for a tree of 100,000
small files. Prints seconds, MB/s and peak RSS per step, and the ratios against restic.

  python3 Benchmarks/tree_bench.py --repo-bin .build/release/repo --partitions 150
  python3 Benchmarks/tree_bench.py --repo-bin .build/release/repo --many-files 100000
"""
import argparse
import os
import random
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from side_by_side import PASSWORD, run, du  # noqa: E402


def make_partitions(root, partitions, seed=7):
    rng = random.Random(seed)
    for p in range(partitions):
        write_partition(root, p, rng)


def write_partition(root, p, rng):
    d = os.path.join(root, "chunk_%05d" % p)
    os.makedirs(d, exist_ok=True)
    rows = []
    for i in range(12000):
        rows.append("%d,dev-%05d,%s,%d.%d,2024-%02d-%02d %02d:%02d:%02d\n" % (
            p * 100000 + i, rng.randrange(50000), rng.choice(("read", "alarm", "boot")), rng.randrange(-40, 60),
            rng.randrange(10), 1 + p % 12, 1 + i % 28, i % 24, i % 60, (i * 7) % 60))
    with open(os.path.join(d, "export.csv"), "w") as f:
        f.writelines(rows)
    for col in ("ts", "device", "value"):
        # Column files: half incompressible, half repetitive, as in real parts.
        with open(os.path.join(d, col + ".bin"), "wb") as f:
            f.write(rng.randbytes(200_000) + bytes([p % 256]) * 200_000)
        with open(os.path.join(d, col + ".mrk2"), "wb") as f:
            f.write(rng.randbytes(2_000))


def change_one_percent(root, partitions, seed=8):
    rng = random.Random(seed)
    files = sorted(os.path.join(dp, f) for dp, _, fs in os.walk(root) for f in fs)
    for path in rng.sample(files, max(1, len(files) // 100)):
        with open(path, "r+b") as f:
            f.seek(rng.randrange(max(1, os.path.getsize(path))))
            f.write(b"changed!")
    write_partition(root, partitions, rng)


def make_many(root, count):
    per = 500
    for d in range((count + per - 1) // per):
        dd = os.path.join(root, "part-%04d" % d)
        os.makedirs(dd)
        for f in range(min(per, count - d * per)):
            with open(os.path.join(dd, "f%03d.csv" % f), "w") as h:
                h.write("%d,%d,%s\n" % (d, f, "x" * (f % 50)))


class RepoTool:
    name = "repo"

    def __init__(self, work, binary):
        self.bin, self.dir = binary, os.path.join(work, "repo")
        self.env = dict(os.environ, REPO_REPOSITORY=self.dir + "/repository", REPO_PASSWORD=PASSWORD,
                        REPO_CACHE_DIR=self.dir + "/cache")

    def init(self):
        run([self.bin, "init"], env=self.env)

    def backup(self, path):
        return run([self.bin, "backup", path], env=self.env)

    def restore(self, target):
        return run([self.bin, "restore", "latest", "--target", target], env=self.env)


class ResticTool:
    name = "restic"

    def __init__(self, work):
        self.dir = os.path.join(work, "restic")
        self.env = dict(os.environ, RESTIC_REPOSITORY=self.dir + "/repository", RESTIC_PASSWORD=PASSWORD,
                        RESTIC_CACHE_DIR=self.dir + "/cache")

    def init(self):
        run(["restic", "init", "-q"], env=self.env)

    def backup(self, path):
        return run(["restic", "backup", "-q", path], env=self.env)

    def restore(self, target):
        return run(["restic", "restore", "-q", "latest", "--target", target], env=self.env)


def series(tools, src, work, label, change=None):
    results = {t.name: {} for t in tools}
    size = du(src)
    for t in tools:
        t.init()
    for t in tools:
        results[t.name]["first backup"] = t.backup(src)
    if change:
        change()
        size2 = du(src)
        for t in tools:
            results[t.name]["incremental backup"] = t.backup(src)
    else:
        size2 = size
    for t in tools:
        target = os.path.join(work, "restore-" + t.name)
        results[t.name]["restore"] = t.restore(target)
        shutil.rmtree(target)
    print("\n%s (%.0f MB, %d files)" % (label, size / 1e6, sum(len(f) for _, _, f in os.walk(src))))
    names = [t.name for t in tools]
    print("%-20s" % "" + "".join("%22s" % n for n in names) + ("%12s" % "repo/restic" if "restic" in names else ""))
    for step in results[names[0]]:
        cells = []
        for n in names:
            dt, rss = results[n][step]
            mb = (size2 if step != "first backup" else size) / 1e6
            cells.append("%7.2f s %6.0f MB/s %3.0f MB" % (dt, mb / dt, rss) if step != "incremental backup"
                         else "%7.2f s          %3.0f MB" % (dt, rss))
        ratio = ""
        if "restic" in names:
            ratio = "%11.1f×" % (results["restic"][step][0] / results["repo"][step][0])
        print("%-20s" % step + "".join("%22s" % c for c in cells) + ratio)
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo-bin", default=".build/release/repo")
    ap.add_argument("--partitions", type=int, default=150, help="partition directories (~1.9 MB each)")
    ap.add_argument("--many-files", type=int, default=0, help="also run a tree of this many small files")
    ap.add_argument("--work", default=None)
    args = ap.parse_args()
    work = args.work or tempfile.mkdtemp(prefix="repo-tree-bench-")
    binary = os.path.abspath(args.repo_bin)
    print("repo: %s; restic: %s" % (binary, shutil.which("restic")))

    src = os.path.join(work, "src-partitions")
    make_partitions(src, args.partitions)
    t = os.path.join(work, "t1")
    os.makedirs(t)
    series([RepoTool(t, binary), ResticTool(t)], src, t, "partition tree",
           change=lambda: change_one_percent(src, args.partitions))
    if args.many_files:
        many = os.path.join(work, "src-many")
        make_many(many, args.many_files)
        t = os.path.join(work, "t2")
        os.makedirs(t)
        series([RepoTool(t, binary), ResticTool(t)], many, t, "%d small files" % args.many_files)
    if not args.work:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
