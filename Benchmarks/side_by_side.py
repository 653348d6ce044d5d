#!/usr/bin/env python3
"""Side-by-side benchmark: repo against restic and borg on the same files, in one run.

For each corpus kind (--corpus, see corpus.py), every tool gets the same series on the same
input, interleaved tool by tool inside each phase so that drift of this shared machine hits all
of them alike:

  first     store of day 1 into an empty repository
  next-day  store of day 2 (appended, updated and inserted rows; new and merged parts)
  unchanged store of day 2 again
  dump      restore of the day-2 snapshot to /dev/null

All three tools read one stream on standard input (`repo store`, `restic backup --stdin`,
`borg create -`); the directory kinds (csv-parts, columns, compressed) are fed as the ustar
stream of `corpus.py KIND --stream`. It also measures the limits on the same day-1 file in the
same run: `zstd -T2 -<level>` and `openssl dgst -sha256`. Reports MB/s (input bytes / wall
seconds; median of --rounds), peak RSS over the series (GNU time) and the repository size after
the series; one table per corpus kind, with the machine, the versions and the command line.
Release builds only: pass --repo-bin .build/release/repo.

  python3 Benchmarks/side_by_side.py --repo-bin .build/release/repo --mb 300
  python3 Benchmarks/side_by_side.py --repo-bin .build/release/repo --mb 300 \\
      --corpus sql,csv-parts,columns,compressed --json results.json --markdown --chart bench.svg
  python3 Benchmarks/side_by_side.py --load results.json --markdown --chart bench.svg   # no rerun

Outputs: a text table per corpus (default), --markdown (the same as Markdown tables, for the
README), --json [FILE] (to stdout, or to FILE next to the text/Markdown output), --chart FILE.svg
(a grouped bar chart, hand-written SVG: MB/s per phase and tool per corpus, with the zstd and
sha256 limits as dashed lines and peak RSS and repository size noted under each panel).
Generated inputs are named by kind, size, seed and parts, so with --work DIR a second run reuses
them. Progress goes to standard error.
"""
import argparse
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time

PASSWORD = "bench password"
PHASES = (("first", "first"), ("next_day", "next-day"), ("unchanged", "unchanged"), ("dump", "dump"))
COLORS = {"repo": "#2b6cb0", "restic": "#dd6b20", "borg": "#38a169"}


def run(cmd, stdin=None, env=None, stdout=subprocess.DEVNULL):
    """Runs cmd under GNU time; returns (seconds, peak RSS in MB)."""
    dt, rss, _ = run_output(cmd, stdin, env, stdout)
    return dt, rss


def run_output(cmd, stdin=None, env=None, stdout=subprocess.PIPE):
    """Runs cmd under GNU time; returns (seconds, peak RSS in MB, its standard output or None).
    Exits with the command's error output if it fails."""
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
    return dt, rss, p.stdout


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
        self.stream = "db.sql"


class Repo(Tool):
    def __init__(self, work, binary, level):
        super().__init__("repo", work)
        self.bin, self.level = binary, level
        self.env.update(REPO_REPOSITORY=self.dir + "/repository", REPO_PASSWORD=PASSWORD, REPO_CACHE_DIR=self.dir + "/cache")

    def init(self):
        run([self.bin, "init", "--compression", "zstd:%d" % self.level], env=self.env)

    def store(self, path):
        return run([self.bin, "store", "--name", self.stream], stdin=path, env=self.env)

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
        return run(["restic", "backup", "-q", "--stdin", "--stdin-filename", self.stream], stdin=path, env=self.env)

    def dump(self):
        return run(["restic", "dump", "-q", "latest", self.stream], env=self.env)

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


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def first_line(cmd):
    try:
        out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30).stdout.decode()
        return out.strip().splitlines()[0] if out.strip() else "?"
    except (OSError, subprocess.SubprocessError):
        return "not found"


def environment(a):
    """Machine, versions and the command line, for the report."""
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem = "?"
    try:
        with open("/proc/meminfo") as f:
            kb = int(next(l.split()[1] for l in f if l.startswith("MemTotal")))
            mem = "%.0f GiB" % (kb / 2**20)
    except (OSError, StopIteration, ValueError):
        pass
    system = platform.system()
    try:
        with open("/etc/os-release") as f:
            system = next(l.split("=", 1)[1].strip().strip('"') for l in f if l.startswith("PRETTY_NAME"))
    except (OSError, StopIteration):
        pass
    zstd = first_line(["zstd", "--version"])
    if "v" in zstd:
        zstd = "zstd " + zstd.split(" v", 1)[-1].split(",")[0]
    versions = {"repo": first_line([os.path.abspath(a.repo_bin), "--version"]),
                "restic": " ".join(first_line(["restic", "version"]).split()[:2]),
                "borg": first_line(["borg", "--version"]), "zstd": zstd,
                "openssl": " ".join(first_line(["openssl", "version"]).split()[:2]),
                "python": "python " + platform.python_version()}
    return {"machine": "%s, %d cores (%s), %s RAM, %s, kernel %s" % (
                platform.machine(), os.cpu_count() or 0, cpu, mem, system, platform.release()),
            "versions": versions,
            "command": "python3 Benchmarks/%s " % os.path.basename(sys.argv[0]) + " ".join(shlex.quote(x) for x in sys.argv[1:])}


def make_inputs(kind, a, work, here):
    """Generates (or reuses) day 1 and day 2 of a corpus kind; returns their paths."""
    ext = {"sql": "sql", "csv": "csv"}.get(kind, "tar")
    paths = []
    for day, extra in ((1, []), (2, ["--next-day"])):
        path = os.path.join(work, "%s-%dmb-s%d-p%d-day%d.%s" % (kind, a.mb, a.seed, a.parts, day, ext))
        if not os.path.exists(path):
            log("%s: generating day %d (%d MB)" % (kind, day, a.mb))
            cmd = [sys.executable, os.path.join(here, "corpus.py"), kind, "--mb", str(a.mb), "--seed", str(a.seed)]
            if kind not in ("sql", "csv"):
                cmd += ["--stream", "--parts", str(a.parts)]
            if kind != "csv":
                cmd += ["--jobs", str(a.jobs)]
            with open(path + ".tmp", "wb") as f:
                subprocess.run(cmd + extra, stdout=f, check=True)
            os.replace(path + ".tmp", path)
        paths.append(path)
    return paths


def series(kind, day1, day2, a, work):
    """Runs the interleaved series for one corpus; returns its result dict."""
    size1, size2 = os.path.getsize(day1), os.path.getsize(day2)
    mb = lambda n, s: n / s / 1e6
    stream = {"sql": "db.sql", "csv": "export.csv"}.get(kind, kind + ".tar")
    results = {}
    names = a.tools.split(",")
    for r in range(a.rounds):
        tools = []
        for name in names:
            base = os.path.join(work, "r%d" % r)
            t = {"repo": lambda: Repo(base, os.path.abspath(a.repo_bin), a.level),
                 "restic": lambda: Restic(base),
                 "borg": lambda: Borg(base, a.level)}[name]()
            t.stream = stream
            shutil.rmtree(t.dir, ignore_errors=True)
            os.makedirs(t.dir)
            t.init()
            tools.append(t)
        for phase, path, size in (("first", day1, size1), ("next-day", day2, size2), ("unchanged", day2, size2)):
            for t in tools:
                dt, rss = t.store(path)
                log("%s round %d: %-9s %-6s %6.2f s %6.0f MB/s %5.0f MB" % (kind, r + 1, phase, t.name, dt, mb(size, dt), rss))
                results.setdefault((t.name, phase), []).append((mb(size, dt), rss))
        for t in tools:
            dt, rss = t.dump()
            log("%s round %d: %-9s %-6s %6.2f s %6.0f MB/s %5.0f MB" % (kind, r + 1, "dump", t.name, dt, mb(size2, dt), rss))
            results.setdefault((t.name, "dump"), []).append((mb(size2, dt), rss))
            results.setdefault((t.name, "size"), []).append((t.size(), 0))
        for t in tools:
            shutil.rmtree(t.dir, ignore_errors=True)
        # Limits on the same file, same run.
        dt, _ = run(["zstd", "-T2", "-%d" % a.level, "-c", day1])
        results.setdefault(("zstd", "first"), []).append((mb(size1, dt), 0))
        dt, _ = run(["openssl", "dgst", "-sha256", day1])
        results.setdefault(("sha256", "first"), []).append((mb(size1, dt), 0))

    med = lambda k, i=0: statistics.median(v[i] for v in results[k]) if k in results else None
    rows = []
    for n in names:
        rows.append({"tool": n, "first": med((n, "first")), "next_day": med((n, "next-day")), "unchanged": med((n, "unchanged")),
                     "dump": med((n, "dump")), "peak_rss_mb": max(v[1] for k, vs in results.items() if k[0] == n for v in vs),
                     "repo_size_mb": med((n, "size")) / 1e6})
    return {"corpus": kind, "input_mb": [size1 / 1e6, size2 / 1e6], "rounds": a.rounds, "level": a.level,
            "rows": rows, "limits": {"zstd": med(("zstd", "first")), "sha256": med(("sha256", "first"))}}


def ratios(c):
    """repo's MB/s over the fastest other tool's, per phase (None without repo or a peer)."""
    rows = {r["tool"]: r for r in c["rows"]}
    if "repo" not in rows or len(rows) < 2:
        return None
    out = {}
    for key, _ in PHASES:
        best = max(r[key] for n, r in rows.items() if n != "repo")
        out[key] = rows["repo"][key] / best if best else None
    return out


def rounds(c):
    return "1 round" if c["rounds"] == 1 else "median of %d rounds" % c["rounds"]


def text_report(data):
    lines = ["machine: " + data["machine"],
             "versions: " + ", ".join(data["versions"].values()),
             "command: " + data["command"]]
    for c in data["corpora"]:
        lines.append("")
        lines.append("%s: day 1 %.0f MB, day 2 %.0f MB; %s" % (c["corpus"], c["input_mb"][0], c["input_mb"][1], rounds(c)))
        lines.append("%-8s %10s %10s %10s %10s %9s %10s" % ("tool", "first", "next-day", "unchanged", "dump", "peak RSS", "repo size"))
        for row in c["rows"]:
            lines.append("%-8s %5.0f MB/s %5.0f MB/s %5.0f MB/s %5.0f MB/s %6.0f MB %7.0f MB" % (
                row["tool"], row["first"], row["next_day"], row["unchanged"], row["dump"], row["peak_rss_mb"], row["repo_size_mb"]))
        rt = ratios(c)
        if rt:
            lines.append("repo / fastest other: " + ", ".join("%s %.2f×" % (label, rt[k]) for k, label in PHASES if rt[k]))
        lines.append("limits on day 1: zstd -T2 -%d %.0f MB/s, openssl sha256 %.0f MB/s" % (
            c["level"], c["limits"]["zstd"], c["limits"]["sha256"]))
    return "\n".join(lines)


def markdown_report(data):
    lines = ["Machine: %s.  " % data["machine"],
             "Versions: %s.  " % ", ".join(data["versions"].values()),
             "Command: `%s`" % data["command"]]
    for c in data["corpora"]:
        lines += ["", "**%s** (day 1 %.0f MB, day 2 %.0f MB; %s; MB/s = input bytes / wall time)" % (
            c["corpus"], c["input_mb"][0], c["input_mb"][1], rounds(c)), "",
            "| tool | first | next-day | unchanged | dump | peak RSS | repo size |",
            "|------|------:|---------:|----------:|-----:|---------:|----------:|"]
        for row in c["rows"]:
            lines.append("| %s | %.0f MB/s | %.0f MB/s | %.0f MB/s | %.0f MB/s | %.0f MB | %.0f MB |" % (
                row["tool"], row["first"], row["next_day"], row["unchanged"], row["dump"], row["peak_rss_mb"], row["repo_size_mb"]))
        rt = ratios(c)
        if rt:
            lines.append("| repo / fastest other | %s | | |" % " | ".join("%.2f×" % rt[k] if rt[k] else "" for k, _ in PHASES))
        lines += ["", "Limits on day 1: `zstd -T2 -%d` %.0f MB/s, `openssl dgst -sha256` %.0f MB/s." % (
            c["level"], c["limits"]["zstd"], c["limits"]["sha256"])]
    return "\n".join(lines)


def esc(s):
    return str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def nice_max(v):
    """A round axis maximum >= v and its tick step."""
    if v <= 0:
        return 1, 1
    p = 10 ** (len(str(int(v))) - 1)
    for m in (1, 2, 2.5, 5, 10):
        if m * p >= v:
            top = m * p
            break
    step = top / 5
    return top, step


def svg_chart(data):
    """Grouped bar chart: one panel per corpus, groups = phases, bars = tools, dashed lines for the
    limits on day 1; peak RSS and repository size noted under each panel."""
    head = [data["machine"], ", ".join(data["versions"].values())] + textwrap.wrap(data["command"], 150)
    W, panel_h, top_pad = 900, 320, 75 + 15 * len(head)
    left, right, plot_h = 60, 170, 200
    plot_w = W - left - right
    tools = [r["tool"] for r in data["corpora"][0]["rows"]] if data["corpora"] else []
    H = top_pad + panel_h * len(data["corpora"]) + 10
    o = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" '
         'font-family="Helvetica, Arial, sans-serif" font-size="12">' % (W, H, W, H),
         '<rect width="100%" height="100%" fill="white"/>',
         '<text x="%d" y="24" font-size="16" font-weight="bold">repo, restic and borg on the same streams: MB/s '
         '(input bytes / wall time; higher is better)</text>' % left]
    for i, line in enumerate(head):
        o.append('<text x="%d" y="%d" fill="#555" font-size="11">%s</text>' % (left, 44 + 15 * i, esc(line[:160])))
    for ci, c in enumerate(data["corpora"]):
        y0 = top_pad + ci * panel_h + 30
        vals = [r[k] for r in c["rows"] for k, _ in PHASES if r[k]] + [v for v in c["limits"].values() if v]
        top, step = nice_max(max(vals) * 1.08 if vals else 1)
        o.append('<text x="%d" y="%d" font-size="14" font-weight="bold">%s</text>' % (
            left, y0 - 10, esc("%s: day 1 %.0f MB, day 2 %.0f MB" % (c["corpus"], c["input_mb"][0], c["input_mb"][1]))))
        ybase = y0 + plot_h
        t = 0
        while t <= top + 1e-9:
            y = ybase - plot_h * t / top
            o.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#e2e2e2"/>' % (left, left + plot_w, y, y))
            o.append('<text x="%d" y="%.1f" text-anchor="end" fill="#555">%g</text>' % (left - 6, y + 4, t))
            t += step
        o.append('<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="#333"/>' % (left, left + plot_w, ybase, ybase))
        gw = plot_w / len(PHASES)
        bw = min(44, (gw - 20) / max(1, len(c["rows"])))
        for pi, (key, label) in enumerate(PHASES):
            gx = left + pi * gw + (gw - bw * len(c["rows"])) / 2
            for ti, r in enumerate(c["rows"]):
                v = r[key] or 0
                h = plot_h * v / top
                x = gx + ti * bw
                o.append('<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s %s: %.0f MB/s</title></rect>' % (
                    x + 1, ybase - h, bw - 2, h, COLORS.get(r["tool"], "#888"), esc(r["tool"]), label, v))
                o.append('<text x="%.1f" y="%.1f" text-anchor="middle" font-size="10">%.0f</text>' % (x + bw / 2, ybase - h - 3, v))
            o.append('<text x="%.1f" y="%d" text-anchor="middle">%s</text>' % (left + pi * gw + gw / 2, ybase + 16, label))
        labels = []
        for name, dash in (("zstd", "6,3"), ("sha256", "2,3")):
            v = c["limits"].get(name)
            if not v:
                continue
            y = ybase - plot_h * v / top
            lab = "zstd -T2 -%d: %.0f" % (c["level"], v) if name == "zstd" else "openssl sha256: %.0f" % v
            o.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#c53030" stroke-dasharray="%s"/>' % (
                left, left + plot_w, y, y, dash))
            labels.append([y + 4, lab])
        labels.sort()
        for i in range(1, len(labels)):  # keep close labels apart
            labels[i][0] = max(labels[i][0], labels[i - 1][0] + 13)
        for y, lab in labels:
            o.append('<text x="%d" y="%.1f" fill="#c53030" font-size="11">%s</text>' % (left + plot_w + 6, y, esc(lab)))
        o.append('<text x="%d" y="%d" fill="#333" font-size="11">%s</text>' % (left, ybase + 36, esc(
            "peak RSS: " + ", ".join("%s %.0f MB" % (r["tool"], r["peak_rss_mb"]) for r in c["rows"]))))
        o.append('<text x="%d" y="%d" fill="#333" font-size="11">%s</text>' % (left, ybase + 51, esc(
            "repository size after the series: " + ", ".join("%s %.0f MB" % (r["tool"], r["repo_size_mb"]) for r in c["rows"]))))
    # Legend: one row between the header and the first panel, clear of the limit labels.
    ly, lx = top_pad - 12, left
    for n in tools:
        o.append('<rect x="%d" y="%d" width="12" height="12" fill="%s"/>' % (lx, ly - 10, COLORS.get(n, "#888")))
        o.append('<text x="%d" y="%d">%s</text>' % (lx + 18, ly, esc(n)))
        lx += 30 + 8 * len(n)
    o.append('<text x="%d" y="%d" fill="#c53030" font-size="11">dashed and dotted lines: limits on day 1</text>' % (lx + 10, ly))
    o.append("</svg>")
    return "\n".join(o) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo-bin", default=".build/release/repo")
    ap.add_argument("--corpus", default="sql", help="comma-separated corpus kinds: sql, csv-parts, columns, compressed (csv)")
    ap.add_argument("--mb", type=int, default=300, help="size of each generated day-1 input")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--parts", type=int, default=30, help="partitions / insert blocks of the directory kinds")
    ap.add_argument("--jobs", type=int, default=min(4, os.cpu_count() or 1), help="processes generating the corpus")
    ap.add_argument("--day1", help="use this file as day 1 instead of generating one (one corpus, named by --corpus)")
    ap.add_argument("--day2", help="use this file as day 2")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--level", type=int, default=3, help="zstd level for repo, borg and the zstd limit")
    ap.add_argument("--tools", default="repo,restic,borg")
    ap.add_argument("--work", default=None, help="scratch directory, kept (default: a new temp dir, removed)")
    ap.add_argument("--json", nargs="?", const="-", metavar="FILE", help="JSON to stdout, or to FILE")
    ap.add_argument("--markdown", action="store_true", help="print Markdown tables (for the README)")
    ap.add_argument("--chart", metavar="FILE.svg", help="write a grouped bar chart")
    ap.add_argument("--load", metavar="FILE.json", help="report a saved --json result instead of running")
    a = ap.parse_args()

    if a.load:
        with open(a.load) as f:
            data = json.load(f)
    else:
        if bool(a.day1) != bool(a.day2):
            ap.error("--day1 and --day2 go together")
        kinds = a.corpus.split(",")
        if a.day1 and len(kinds) != 1:
            ap.error("--day1/--day2 take one --corpus name")
        work = a.work or tempfile.mkdtemp(prefix="repo-bench-")
        os.makedirs(work, exist_ok=True)
        here = os.path.dirname(os.path.abspath(__file__))
        data = environment(a)
        data["corpora"] = []
        for kind in kinds:
            if a.day1:
                day1, day2 = a.day1, a.day2
            else:
                day1, day2 = make_inputs(kind, a, work, here)
            data["corpora"].append(series(kind, day1, day2, a, work))
            if not a.work and not a.day1:
                os.unlink(day1)
                os.unlink(day2)
        if len(data["corpora"]) == 1:  # the single-corpus layout of earlier versions, too
            data.update({k: data["corpora"][0][k] for k in ("input_mb", "rows", "limits")})
        if not a.work:
            shutil.rmtree(work, ignore_errors=True)

    if a.json and a.json != "-":
        with open(a.json, "w") as f:
            json.dump(data, f, indent=2)
    if a.chart:
        with open(a.chart, "w") as f:
            f.write(svg_chart(data))
    if a.json == "-":
        print(json.dumps(data, indent=2))
    elif a.markdown:
        print(markdown_report(data))
    else:
        print(text_report(data))


if __name__ == "__main__":
    main()
