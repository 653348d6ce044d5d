#!/usr/bin/env python3
"""Prune benchmark: `repo forget --prune` against `restic forget --prune` on the same history.

Builds one history of N daily-ish snapshots (default 300: daily for the last 60 days, every
third day before that, ~2 years) of one stream in a repo repository and a restic repository
(same bytes, same --time stamps), then times, per round, on fresh copies of both repositories
(caches copied too, so both start warm):

  repo   forget --keep-hot 7d --keep-warm 30d --keep-cold 7y --prune        (--max-unused 5 by default)
  restic forget --keep-within 7d --keep-daily 30 --keep-monthly 84 --prune --max-unused 5%

Each snapshot's stream is 256 KiB: half a shared block that changes every 30 days, half new
bytes, so forgetting leaves some packs fully unused and others partly used (repacked).
Release builds only: pass --repo-bin .build/release/repo.

  python3 Benchmarks/prune_bench.py --repo-bin .build/release/repo --snapshots 300 --rounds 3
"""
import argparse
import datetime
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

PASSWORD = "bench password"


CRASHES = []


def run(cmd, env, stdin=None, retry_dir=None):
    """Runs cmd; returns (seconds, stdout). With retry_dir (a snapshots folder), a run killed by
    a signal that committed no snapshot is reported and retried once."""
    before = len(os.listdir(retry_dir)) if retry_dir and os.path.isdir(retry_dir) else 0
    with open(stdin, "rb") if stdin else open(os.devnull, "rb") as f:
        t0 = time.perf_counter()
        p = subprocess.run(cmd, stdin=f, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        dt = time.perf_counter() - t0
    if p.returncode < 0 and retry_dir:
        CRASHES.append("%s: signal %d" % (" ".join(cmd[1:4]), -p.returncode))
        if len(os.listdir(retry_dir)) == before:
            return run(cmd, env, stdin)
        return dt, p.stdout.decode()
    if p.returncode != 0:
        sys.exit("command failed (%d): %s\n%s" % (p.returncode, " ".join(cmd), p.stderr.decode()[-2000:]))
    return dt, p.stdout.decode()


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from side_by_side import du  # noqa: E402


def times(n, now):
    out = []
    for k in range(n):
        days = k if k < 60 else 60 + 3 * (k - 60)
        out.append(now - datetime.timedelta(days=days, hours=random.Random(k).randint(0, 5)))
    return list(reversed(out))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo-bin", default=".build/release/repo")
    ap.add_argument("--restic-bin", default="restic")
    ap.add_argument("--snapshots", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--work", default=None, help="scratch directory (default: a temporary one)")
    args = ap.parse_args()

    work = args.work or tempfile.mkdtemp(prefix="prune-bench-")
    os.makedirs(work, exist_ok=True)
    repo_bin = os.path.abspath(args.repo_bin)
    base = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", work)}
    repo_env = dict(base, REPO_REPOSITORY=work + "/repo", REPO_PASSWORD=PASSWORD, REPO_CACHE_DIR=work + "/repo-cache")
    restic_env = dict(base, RESTIC_REPOSITORY=work + "/restic", RESTIC_PASSWORD=PASSWORD,
                      RESTIC_CACHE_DIR=work + "/restic-cache")

    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    stamps = times(args.snapshots, now)
    print("building %d snapshots for repo and restic in %s ..." % (len(stamps), work), flush=True)
    run([repo_bin, "init"], repo_env)
    run([args.restic_bin, "init"], restic_env)
    rng = random.Random(42)
    shared = rng.randbytes(128 << 10)
    data = work + "/day.bin"
    build = {"repo": 0.0, "restic": 0.0}
    for i, t in enumerate(stamps):
        if i % 30 == 0:
            shared = rng.randbytes(128 << 10)
        with open(data, "wb") as f:
            f.write(shared + rng.randbytes(128 << 10))
        iso = t.strftime("%Y-%m-%dT%H:%M:%SZ")
        build["repo"] += run([repo_bin, "store", "--name", "db.bin", "--host", "bench", "--time", iso], repo_env, data,
                             retry_dir=work + "/repo/snapshots")[0]
        build["restic"] += run([args.restic_bin, "backup", "--stdin", "--stdin-filename", "db.bin", "--host", "bench",
                                "--time", t.strftime("%Y-%m-%d %H:%M:%S"), "-q"], restic_env, data)[0]
    print("built: repo %.1f s (%.1f MB), restic %.1f s (%.1f MB)" % (
        build["repo"], du(work + "/repo") / 1e6, build["restic"], du(work + "/restic") / 1e6), flush=True)

    results = {"repo": [], "restic": []}
    after = {}
    kept = {}
    for r in range(args.rounds):
        for tool in ("repo", "restic"):
            scratch = work + "/round-" + tool
            shutil.rmtree(scratch, ignore_errors=True)
            os.makedirs(scratch)
            shutil.copytree(work + "/" + tool, scratch + "/repo")
            shutil.copytree(work + "/" + tool + "-cache", scratch + "/cache")
            if tool == "repo":
                env = dict(repo_env, REPO_REPOSITORY=scratch + "/repo", REPO_CACHE_DIR=scratch + "/cache")
                cmd = [repo_bin, "forget", "--keep-hot", "7d", "--keep-warm", "30d", "--keep-cold", "7y", "--tz", "UTC",
                       "--prune", "--max-unused", "5"]
                listing = [repo_bin, "snapshots", "--json"]
            else:
                env = dict(restic_env, RESTIC_REPOSITORY=scratch + "/repo", RESTIC_CACHE_DIR=scratch + "/cache", TZ="UTC")
                cmd = [args.restic_bin, "forget", "--keep-within", "7d", "--keep-daily", "30", "--keep-monthly", "84",
                       "--prune", "--max-unused", "5%"]
                listing = [args.restic_bin, "snapshots", "--json"]
            dt, _ = run(cmd, env)
            results[tool].append(dt)
            after[tool] = du(scratch + "/repo")
            kept[tool] = run(listing, env)[1].count('"time"')
        print("round %d: repo %.2f s, restic %.2f s" % (r + 1, results["repo"][-1], results["restic"][-1]), flush=True)

    med = {t: statistics.median(v) for t, v in results.items()}
    print()
    print("forget --prune of %d snapshots (median of %d rounds):" % (len(stamps), args.rounds))
    for tool in ("repo", "restic"):
        print("  %-6s %7.2f s   kept %3d snapshots   repository after: %.1f MB" % (
            tool, med[tool], kept[tool], after[tool] / 1e6))
    print("  repo is %.1fx faster than restic" % (med["restic"] / med["repo"]))
    if CRASHES:
        print("  note: %d build-phase command(s) died by a signal and were retried: %s" % (len(CRASHES), "; ".join(CRASHES)))
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
