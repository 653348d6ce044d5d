#!/usr/bin/env python3
"""Chunk size and zstd level trade-offs of repo on the benchmark corpus.

For each corpus kind (see corpus.py) and each setting of the grid --chunk-avg × --levels, makes
a fresh repository (`repo init --chunk-avg SIZE --compression zstd:N|none`), stores day 1, then
day 2 (the "next day"), each as one stream (`repo store`; directory kinds as their ustar stream),
and reports per setting:

  first MB/s      day-1 bytes / wall time of the first store (includes the fixed ~0.3 s start-up
                  of every repo command, mostly the password's key derivation; the JSON also
                  has the store's own rate, `*_inner_mbps`, from `repo store --json`)
  next-day MB/s   day-2 bytes / wall time of the second store
  repo MB         repository size on disk after day 1 + day 2 (dedup and compression)
  blobs           blobs in the index after both days (`repo stats --json`: data + tree blobs)
  index KB        size of the repository's index/ directory (encrypted index segments), and
  catalog KB      of the local catalog cache (SQLite + membership filter) after both days
  day-2 reused    share of day 2's bytes found already stored (1 - new unique bytes / day-2
                  bytes, from uniqueBytes of `repo stats --json` before and after day 2)
  day-2 MB        bytes day 2 added to the packs (compressed)
  peak RSS        the larger of the two stores' peak RSS (GNU time)

Settings run in a rotated order each round so that machine drift spreads over all of them; MB/s
is the median of --rounds, sizes, counts and reuse are the mean. repo's chunker is keyed per
repository (its gear table comes from the repository's chunker key), so cut points, and with them
blob counts and day-2 reuse, differ between two fresh repositories with the same setting: with
small inputs (few chunks) that noise is large, and --rounds N averages it over N keys. An "all"
table sums the corpora: total bytes over total time, total repository size, blobs and index
size. Release builds only.

  python3 Benchmarks/tradeoff.py --repo-bin .build/release/repo --mb 200 \\
      --corpus sql,csv-parts,columns,compressed --chunk-avg 256K,512K,1M,2M,4M --levels 1,3,6
  python3 Benchmarks/tradeoff.py --repo-bin .build/release/repo --mb 30 --markdown
  python3 Benchmarks/tradeoff.py --load tradeoff.json --markdown

--levels takes zstd levels 1-19 (what `repo init --compression zstd:N` accepts; no negative
fast levels) and `none`. Output: text tables (default), --markdown, --json [FILE] (stdout or
FILE), --load FILE.json to report a saved run. Progress goes to standard error.
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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from side_by_side import PASSWORD, du, environment, log, make_inputs, run_output  # noqa: E402


def run_json(cmd, env, stdin=None):
    """Runs cmd under GNU time; returns (wall seconds, peak RSS MB, parsed JSON stdout)."""
    dt, rss, out = run_output(cmd, stdin, env)
    return dt, rss, json.loads(out) if out.strip() else None


def parse_size(s):
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(s[:-1]) * mult[s[-1].upper()] if s[-1].upper() in mult else int(s)


def one(binary, work, chunk, level, day1, day2):
    """Day 1 then day 2 into a fresh repository with this setting; returns the measurements."""
    d = os.path.join(work, "repo-%s-%s" % (chunk, level))
    shutil.rmtree(d, ignore_errors=True)
    env = dict(os.environ, REPO_REPOSITORY=d + "/repository", REPO_PASSWORD=PASSWORD, REPO_CACHE_DIR=d + "/cache")
    comp = "none" if level == "none" else "zstd:%s" % level
    run_json([binary, "init", "-q", "--chunk-avg", chunk, "--compression", comp], env)
    size1, size2 = os.path.getsize(day1), os.path.getsize(day2)
    t1, rss1, s1 = run_json([binary, "store", "--json", "--name", "input"], env, day1)
    _, _, st1 = run_json([binary, "stats", "--json"], env)
    t2, rss2, s2 = run_json([binary, "store", "--json", "--name", "input"], env, day2)
    _, _, st2 = run_json([binary, "stats", "--json"], env)
    m = {"first_mbps": size1 / t1 / 1e6, "next_day_mbps": size2 / t2 / 1e6,
         "first_inner_mbps": size1 / s1["seconds"] / 1e6 if s1.get("seconds") else None,
         "next_day_inner_mbps": size2 / s2["seconds"] / 1e6 if s2.get("seconds") else None,
         "repo_mb": du(d + "/repository") / 1e6, "blobs": st2["blobs"], "data_blobs": st2.get("dataBlobs"),
         "packs": st2.get("packs"), "index_kb": du(d + "/repository/index") / 1e3, "catalog_kb": du(d + "/cache") / 1e3,
         "day1_chunks": s1.get("chunks"), "day2_chunks": s2.get("chunks"), "day2_new_chunks": s2.get("new_chunks"),
         # uniqueBytes counts the new snapshot's tree blob too: a day with nothing reused can
         # come out a few bytes below zero, shown as 0.
         "day2_reused": max(0.0, 1 - (st2["uniqueBytes"] - st1["uniqueBytes"]) / size2),
         "day2_stored_mb": (st2["packBytes"] - st1["packBytes"]) / 1e6,
         "compression_ratio": st2.get("compressionRatio"), "peak_rss_mb": max(rss1, rss2)}
    shutil.rmtree(d, ignore_errors=True)
    return m


MEDIAN_KEYS = ("first_mbps", "next_day_mbps", "first_inner_mbps", "next_day_inner_mbps")
MEAN_KEYS = ("repo_mb", "blobs", "data_blobs", "packs", "index_kb", "catalog_kb", "day1_chunks", "day2_chunks",
             "day2_new_chunks", "day2_reused", "day2_stored_mb", "compression_ratio")


def grid(kind, day1, day2, a, work, binary):
    settings = [(c, l) for c in a.chunk_avg.split(",") for l in a.levels.split(",")]
    runs = {}
    for r in range(a.rounds):
        k = r * max(1, len(settings) // a.rounds) % len(settings)
        for chunk, level in settings[k:] + settings[:k]:
            m = one(binary, work, chunk, level, day1, day2)
            log("%s round %d: chunk %-4s zstd %-4s first %5.0f MB/s next-day %5.0f MB/s repo %6.1f MB blobs %5d "
                "day-2 reused %5.1f%%" % (kind, r + 1, chunk, level, m["first_mbps"], m["next_day_mbps"], m["repo_mb"],
                                          m["blobs"], 100 * m["day2_reused"]))
            runs.setdefault((chunk, level), []).append(m)
    rows = []
    for chunk, level in settings:
        ms = runs[(chunk, level)]
        row = dict(ms[0], chunk_avg=chunk, level=level)
        for key in MEDIAN_KEYS + MEAN_KEYS:
            vals = [m[key] for m in ms if m.get(key) is not None]
            row[key] = (statistics.median if key in MEDIAN_KEYS else statistics.fmean)(vals) if vals else None
        row["peak_rss_mb"] = max(m["peak_rss_mb"] for m in ms)
        rows.append(row)
    return {"corpus": kind, "input_mb": [os.path.getsize(day1) / 1e6, os.path.getsize(day2) / 1e6],
            "rounds": a.rounds, "rows": rows}


def summary(corpora):
    """Per setting over all corpora: total bytes / total time, summed sizes."""
    if len(corpora) < 2:
        return None
    rows = []
    for i, r0 in enumerate(corpora[0]["rows"]):
        rs = [c["rows"][i] for c in corpora]
        b1 = sum(c["input_mb"][0] for c in corpora)
        b2 = sum(c["input_mb"][1] for c in corpora)
        rows.append({"chunk_avg": r0["chunk_avg"], "level": r0["level"],
                     "first_mbps": b1 / sum(c["input_mb"][0] / r["first_mbps"] for c, r in zip(corpora, rs)),
                     "next_day_mbps": b2 / sum(c["input_mb"][1] / r["next_day_mbps"] for c, r in zip(corpora, rs)),
                     "repo_mb": sum(r["repo_mb"] for r in rs), "blobs": sum(r["blobs"] for r in rs),
                     "index_kb": sum(r["index_kb"] for r in rs), "catalog_kb": sum(r["catalog_kb"] for r in rs),
                     "day2_reused": 1 - sum((1 - r["day2_reused"]) * c["input_mb"][1] for c, r in zip(corpora, rs)) / b2,
                     "day2_stored_mb": sum(r["day2_stored_mb"] for r in rs),
                     "peak_rss_mb": max(r["peak_rss_mb"] for r in rs)})
    return {"corpus": "all", "input_mb": [sum(c["input_mb"][0] for c in corpora), sum(c["input_mb"][1] for c in corpora)],
            "rounds": corpora[0]["rounds"], "rows": rows}


COLUMNS = (("chunk", "chunk_avg", "%s"), ("zstd", "level", "%s"), ("first MB/s", "first_mbps", "%.0f"),
           ("next-day MB/s", "next_day_mbps", "%.0f"), ("repo MB", "repo_mb", "%.1f"), ("blobs", "blobs", "%.0f"),
           ("index KB", "index_kb", "%.0f"), ("catalog KB", "catalog_kb", "%.0f"),
           ("day-2 reused", "day2_reused", "%.1f%%"), ("day-2 MB", "day2_stored_mb", "%.1f"),
           ("peak RSS MB", "peak_rss_mb", "%.0f"))


def cell(fmt, v):
    if v is None:
        return "-"
    return fmt % (100 * v) if fmt.endswith("%%") else fmt % v


def tables(data, markdown):
    out = [("Machine: %s.  \nVersions: %s.  \nCommand: `%s`" if markdown else "machine: %s\nversions: %s\ncommand: %s") % (
        data["machine"], ", ".join(data["versions"].values()), data["command"])]
    blocks = data["corpora"] + ([data["summary"]] if data.get("summary") else [])
    for c in blocks:
        title = "%s: day 1 %.0f MB, day 2 %.0f MB; %s" % (
            "all corpora" if c["corpus"] == "all" else c["corpus"], c["input_mb"][0], c["input_mb"][1],
            "1 round" if c["rounds"] == 1 else "MB/s median of %d rounds" % c["rounds"])
        out.append("")
        if markdown:
            out += ["**%s**" % title, "", "| " + " | ".join(h for h, _, _ in COLUMNS) + " |",
                    "|" + "|".join("---" if i < 2 else "--:" for i in range(len(COLUMNS))) + "|"]
            for r in c["rows"]:
                out.append("| " + " | ".join(cell(f, r.get(k)) for _, k, f in COLUMNS) + " |")
        else:
            widths = [max(len(h), 6) for h, _, _ in COLUMNS]
            out.append(title)
            out.append("  ".join(h.rjust(w) for (h, _, _), w in zip(COLUMNS, widths)))
            for r in c["rows"]:
                out.append("  ".join(cell(f, r.get(k)).rjust(w) for (_, k, f), w in zip(COLUMNS, widths)))
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo-bin", default=".build/release/repo")
    ap.add_argument("--corpus", default="sql,csv-parts,columns,compressed")
    ap.add_argument("--mb", type=int, default=100, help="size of each generated day-1 input")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--parts", type=int, default=30, help="partitions / insert blocks of the directory kinds")
    ap.add_argument("--jobs", type=int, default=min(4, os.cpu_count() or 1), help="processes generating the corpus")
    ap.add_argument("--chunk-avg", default="256K,512K,1M,2M,4M", help="comma-separated --chunk-avg values")
    ap.add_argument("--levels", default="1,3,6", help="comma-separated zstd levels (1-19) or none")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--work", default=None, help="scratch directory, kept; generated inputs are reused")
    ap.add_argument("--json", nargs="?", const="-", metavar="FILE", help="JSON to stdout, or to FILE")
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--load", metavar="FILE.json", help="report a saved --json result instead of running")
    a = ap.parse_args()

    if a.load:
        with open(a.load) as f:
            data = json.load(f)
    else:
        for c in a.chunk_avg.split(","):
            n = parse_size(c)
            if n & (n - 1):
                ap.error("--chunk-avg %s: repo takes powers of two" % c)
        for l in a.levels.split(","):
            if l != "none" and not (l.isdigit() and 1 <= int(l) <= 19):
                ap.error("--levels %s: repo takes zstd levels 1-19 or none" % l)
        binary = os.path.abspath(a.repo_bin)
        a.tools = "repo"
        work = a.work or tempfile.mkdtemp(prefix="repo-tradeoff-")
        os.makedirs(work, exist_ok=True)
        here = os.path.dirname(os.path.abspath(__file__))
        data = environment(a)
        data["corpora"] = []
        for kind in a.corpus.split(","):
            day1, day2 = make_inputs(kind, a, work, here)
            data["corpora"].append(grid(kind, day1, day2, a, work, binary))
            if not a.work:
                os.unlink(day1)
                os.unlink(day2)
        data["summary"] = summary(data["corpora"])
        if not a.work:
            shutil.rmtree(work, ignore_errors=True)

    if a.json and a.json != "-":
        with open(a.json, "w") as f:
            json.dump(data, f, indent=2)
    if a.json == "-":
        print(json.dumps(data, indent=2))
    else:
        print(tables(data, a.markdown))


if __name__ == "__main__":
    main()
