#!/usr/bin/env python3
"""Master-key rotation against copy: `repo key rotate` re-encrypts every pack of a repository;
`repo copy` into an empty repository reads, decrypts and re-encrypts the same blobs. The
target (README, "Keys") is rotation at 80 % or more of copy's speed on the same repository.

Builds one source repository (--gib of data: half random, half SQL-like text that compresses),
then per round, on a fresh copy of it (page cache warm for both):

  copy    repo init --copy-chunker-params-from SRC; repo copy --from-repo SRC     (all snapshots)
  rotate  repo key rotate --settle-time 0                                         (on SRC's copy)

and prints both times, pack bytes per second, and speed(rotate) / speed(copy). Release builds
only: pass --repo-bin .build/release/repo (scripts/build-release.sh).

  python3 Benchmarks/rotate_bench.py --repo-bin .build/release/repo --gib 2 --rounds 3
"""
import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

PASSWORD = "bench password"


def run(cmd, env, stdin=None):
    with open(stdin, "rb") if stdin else open(os.devnull, "rb") as f:
        t0 = time.perf_counter()
        p = subprocess.run(cmd, env=env, stdin=f, capture_output=True)
        seconds = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr.decode(errors='replace')}")
    return seconds, p.stdout


def make_input(path, size, compressible):
    rng = random.Random(size + compressible)
    with open(path, "wb") as f:
        left = size
        while left > 0:
            if compressible:
                rows = "".join(f"{rng.randrange(10**9)}\tcustomer-{rng.randrange(10**6)}\t2026-11-{rng.randrange(1, 31):02d}\t{rng.random():.6f}\n"
                               for _ in range(4096)).encode()
                block = rows[:left]
            else:
                block = os.urandom(min(left, 8 << 20))
            f.write(block)
            left -= len(block)


def dir_bytes(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo-bin", required=True)
    ap.add_argument("--gib", type=float, default=2.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--work", default=None, help="scratch directory (default: a temporary one)")
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="rotate-bench-", dir=args.work)
    env = dict(os.environ, REPO_PASSWORD=PASSWORD, REPO_CACHE_DIR=os.path.join(work, "cache"))
    try:
        src = os.path.join(work, "src")
        env_src = dict(env, REPO_REPOSITORY=src)
        run([args.repo_bin, "init", "-q"], env_src)
        half = int(args.gib * (1 << 30) / 2)
        for name, compressible in (("random.bin", False), ("dump.sql", True)):
            path = os.path.join(work, name)
            make_input(path, half, compressible)
            run([args.repo_bin, "store", "-q", "--name", name], env_src, stdin=path)
            os.remove(path)
        pack_bytes = dir_bytes(os.path.join(src, "data"))
        print(f"source: {pack_bytes / 2**20:.0f} MiB of packs from {2 * half / 2**20:.0f} MiB of input", flush=True)
        results = []
        for r in range(args.rounds):
            dest = os.path.join(work, f"dest{r}")
            copy_env = dict(env, REPO_REPOSITORY=dest, REPO_FROM_PASSWORD=PASSWORD)
            run([args.repo_bin, "init", "-q", "--copy-chunker-params-from", src], copy_env)
            copy_s, _ = run([args.repo_bin, "copy", "-q", "--from-repo", src], copy_env)
            shutil.rmtree(dest)
            rot = os.path.join(work, f"rot{r}")
            shutil.copytree(src, rot)
            rotate_s, _ = run([args.repo_bin, "key", "rotate", "-q", "--settle-time", "0"], dict(env, REPO_REPOSITORY=rot))
            shutil.rmtree(rot)
            ratio = copy_s / rotate_s
            results.append({"copy_seconds": copy_s, "rotate_seconds": rotate_s, "ratio": ratio})
            print(f"round {r + 1}: copy {copy_s:.2f} s ({pack_bytes / copy_s / 2**20:.0f} MiB/s), "
                  f"rotate {rotate_s:.2f} s ({pack_bytes / rotate_s / 2**20:.0f} MiB/s): rotate at {100 * ratio:.0f} % of copy's speed", flush=True)
        median = statistics.median(x["ratio"] for x in results)
        print(f"median: rotate at {100 * median:.0f} % of copy's speed (target: 80 % or more)")
        if args.out:
            with open(args.out, "w") as f:
                json.dump({"pack_bytes": pack_bytes, "rounds": results, "median_ratio": median}, f, indent=2)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
