#!/usr/bin/env python3
"""Deterministic benchmark and demo inputs for repo, with a "next day" version of each.

  corpus.py sql        --mb N [--seed S] [--next-day] [--jobs J] [--out FILE]   pg_dump plain SQL (COPY blocks)
  corpus.py csv        --mb N [--seed S] [--next-day] [--out FILE]              one CSV export (single stream)
  corpus.py csv-parts  --mb N [--seed S] [--next-day] [--parts P] [--jobs J] (--out DIR | --stream)
  corpus.py columns    --mb N [--seed S] [--next-day] [--parts P] [--jobs J] (--out DIR | --stream)
  corpus.py compressed --mb N [--seed S] [--next-day] [--parts P] [--jobs J] (--out DIR | --stream)

--mb is the approximate size of the day-1 output (for `compressed`, of the compressed files).
The same arguments always give the same bytes (Python's Mersenne Twister; checked on 3.11).

Kinds and what their next day is:

  sql         pg_dump plain format: three tables (orders, events, customers) as COPY blocks of
              mixed columns. Next day: about 1% more rows appended to each table, a scattering
              (0.1%) of rows updated in place all over each table, and small batches of rows
              inserted in the middle of tables, as between two nightly dumps. Byte-for-byte the
              same output as earlier versions of this script for the same arguments; --jobs only
              changes how fast it is made.
  csv         one CSV export of the events table (used by scripts/demo.sh); next day as for sql.
  csv-parts   a directory of CSV partition exports, one file per day (events_YYYYMMDD.csv, rows
              in time order, a quoted JSON column). Next day: a new partition appended, a few
              rows (0.25%) updated in the last two partitions, and batches of late-arriving rows
              inserted mid-file in the last three; all older partitions are byte-identical.
  columns     ClickHouse-part-like binary columns (wide parts, CODEC(NONE), ORDER BY timestamp):
              one directory per part (all_MIN_MAX_LEVEL) holding id.bin (UInt64, sequential),
              timestamp.bin (UInt32, increasing), device_id.bin (UInt32), value.bin (Float64),
              kind.bin + kind.dict.bin (LowCardinality(String)), a .mrk2 marks file per column
              (8192-row granules), primary.idx, minmax_timestamp.idx, count.txt, columns.txt and
              checksums.txt. One insert block per day; all but the last four blocks are merged
              into parts of up to eight blocks. Next day: a new part for the new block, and the
              oldest unmerged block merged into the last merged part (a new, larger part that
              replaces both), i.e. "a new part plus a merged part". The columns are stored
              uncompressed so that the backup tool's compression is what is measured.
  compressed  already-compressed data: the csv-parts partitions, each gzip'd
              (events_YYYYMMDD.csv.gz, level 6, as `gzip -6` on an export). Next day: the
              compressed next-day partitions (the new one and the three re-exported ones differ
              entirely; older files are byte-identical).

Directory kinds are written with --out DIR (files whose content is unchanged are left alone and
files that are gone are deleted, so `--next-day --out` over a day-1 directory turns it into day
2 the way a real export job would), or with --stream as ONE stream on standard output: a
deterministic ustar archive of the same files (sorted parts, fixed mtimes, uid/gid 0), i.e.
what `tar -c DIR | repo store` sees. The benchmarks use --stream so that the stream path of
every tool (`repo store`, `restic backup --stdin`, `borg create -`) is measured on every kind.

  python3 Benchmarks/corpus.py sql --mb 300 > day1.sql
  python3 Benchmarks/corpus.py sql --mb 300 --next-day > day2.sql
  python3 Benchmarks/corpus.py columns --mb 300 --stream > day1.tar
  python3 Benchmarks/corpus.py csv-parts --mb 300 --out /tmp/exports && \\
      python3 Benchmarks/corpus.py csv-parts --mb 300 --out /tmp/exports --next-day
"""
import argparse
import gzip
import hashlib
import io
import itertools
import operator
import os
import random
import sys
import tarfile
from array import array

import _random

WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november "
         "oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu").split()
TABLES = [
    ("public.orders", "id, customer_id, status, amount, currency, created_at, note"),
    ("public.events", "id, device, kind, payload, observed_at"),
    ("public.customers", "id, name, email, country, balance, updated_at"),
]
STATUSES = ("new", "paid", "shipped", "returned")
EVENT_KINDS = ("read", "alarm", "heartbeat", "boot")
COUNTRIES = ("DE", "FR", "NL", "US", "JP", "BR")
DAY0 = 1717200000  # 2024-06-01 00:00:00 UTC


# ---------------------------------------------------------------------------------------------
# sql and csv: one Random per row, so that day 1 and day 2 line up row by row.

def row(table, i, rng, day):
    """The reference row generator (random.Random API). row_fast() below gives the same text."""
    if table == 0:
        return "%d\t%d\t%s\t%d.%02d\tEUR\t2024-%02d-%02d %02d:%02d:%02d+00\t%s %s" % (
            i, rng.randrange(1, 200000), rng.choice(("new", "paid", "shipped", "returned")),
            rng.randrange(1, 100000), rng.randrange(100), rng.randrange(1, 13), rng.randrange(1, 29),
            rng.randrange(24), rng.randrange(60), rng.randrange(60) + day % 2, rng.choice(WORDS), rng.choice(WORDS))
    if table == 1:
        return "%d\tdev-%05d\t%s\t{\"t\": %d.%d, \"v\": %d, \"tag\": \"%s\"}\t2024-06-%02d %02d:%02d:%02d.%06d+00" % (
            i, rng.randrange(50000), rng.choice(("read", "alarm", "heartbeat", "boot")), rng.randrange(-40, 60),
            rng.randrange(10), rng.randrange(1 << 20), rng.choice(WORDS), rng.randrange(1, 29), rng.randrange(24),
            rng.randrange(60), rng.randrange(60), rng.randrange(1000000))
    return "%d\t%s %s\t%s.%d@example.com\t%s\t%d.%02d\t2024-%02d-%02d" % (
        i, rng.choice(WORDS).title(), rng.choice(WORDS).title(), rng.choice(WORDS), i,
        rng.choice(("DE", "FR", "NL", "US", "JP", "BR")), rng.randrange(-5000, 100000), rng.randrange(100),
        rng.randrange(1, 13), rng.randrange(1, 29))


# The fast path reseeds one generator in place (the C seed that random.Random(x) calls) and draws
# with the same rejection sampling as Random.randrange/choice (_randbelow_with_getrandbits: k =
# n.bit_length() bits, redrawn while >= n), without their per-call Python overhead. It is
# checked against row() at import; if a Python version ever draws differently, row() is used.
_R = random.Random()
_seed = _random.Random.seed
_g = _R.getrandbits


def _b(n, k):
    r = _g(k)
    while r >= n:
        r = _g(k)
    return r


def row_fast(table, i, s, day):
    """row(table, i, random.Random(s), day), about twice as fast."""
    _seed(_R, s)
    b = _b
    if table == 0:
        return "%d\t%d\t%s\t%d.%02d\tEUR\t2024-%02d-%02d %02d:%02d:%02d+00\t%s %s" % (
            i, 1 + b(199999, 18), STATUSES[b(4, 3)], 1 + b(99999, 17), b(100, 7), 1 + b(12, 4), 1 + b(28, 5),
            b(24, 5), b(60, 6), b(60, 6) + day % 2, WORDS[b(26, 5)], WORDS[b(26, 5)])
    if table == 1:
        return "%d\tdev-%05d\t%s\t{\"t\": %d.%d, \"v\": %d, \"tag\": \"%s\"}\t2024-06-%02d %02d:%02d:%02d.%06d+00" % (
            i, b(50000, 16), EVENT_KINDS[b(4, 3)], b(100, 7) - 40, b(10, 4), b(1048576, 21), WORDS[b(26, 5)],
            1 + b(28, 5), b(24, 5), b(60, 6), b(60, 6), b(1000000, 20))
    return "%d\t%s %s\t%s.%d@example.com\t%s\t%d.%02d\t2024-%02d-%02d" % (
        i, WORDS[b(26, 5)].title(), WORDS[b(26, 5)].title(), WORDS[b(26, 5)], i, COUNTRIES[b(6, 3)],
        b(105000, 17) - 5000, b(100, 7), 1 + b(12, 4), 1 + b(28, 5))


def _fast_ok():
    for t in range(3):
        for s in (1, 12345, 10_000_019 * 3 + 7, 987654321987):
            for day in (0, 1):
                if row_fast(t, s % 1000, s, day) != row(t, s % 1000, random.Random(s), day):
                    return False
    return True


if not _fast_ok():  # pragma: no cover - a Python whose random module draws differently
    def row_fast(table, i, s, day):  # noqa: F811
        return row(table, i, random.Random(s), day)


def table_rows(t, count, seed, next_day, lo=1, hi=None, tail=True):
    """Yields the rows of table t with index lo..hi (and the inserts after them), then, with
    tail, the rows appended on the next day. Every row is seeded by itself so days line up."""
    base = (seed * 1_000_003 + t) * 10_000_019
    fast = row_fast
    for i in range(lo, (count if hi is None else hi) + 1):
        if next_day and (i * 2654435761 + t) % 1000 == 7:
            yield fast(t, i, base + i + 7_777_777_777, 1)  # updated in place
        else:
            yield fast(t, i, base + i, 0)
        if next_day and i % 40_000 == 0:  # a batch inserted mid-table
            for k in range(5):
                yield fast(t, count * 10 + i + k, i * 31 + k + seed, 1)
    if next_day and tail:
        for i in range(count + 1, count + count // 100 + 1):
            yield fast(t, i, base + i, 0)


def _sql_block(args):
    t, count, seed, next_day, lo, hi = args
    return "".join(r + "\n" for r in table_rows(t, count, seed, next_day, lo, hi, tail=False))


def _sql_tail(args):
    t, count, seed, lo, hi = args
    base = (seed * 1_000_003 + t) * 10_000_019
    return "".join(row_fast(t, i, base + i, 0) + "\n" for i in range(lo, hi + 1))


def _table_blocks(t, count, seed, next_day, step=20_000):
    for lo in range(1, count + 1, step):
        yield _sql_block, (t, count, seed, next_day, lo, min(count, lo + step - 1))
    if next_day:
        for lo in range(count + 1, count + count // 100 + 1, step):
            yield _sql_tail, (t, count, seed, lo, min(count + count // 100, lo + step - 1))


def _ordered(tasks, jobs):
    """Runs (function, args) tasks, in parallel with jobs > 1, yielding results in order."""
    tasks = list(tasks)
    if jobs <= 1 or len(tasks) < 2:
        for f, a in tasks:
            yield f(a)
        return
    import multiprocessing
    with multiprocessing.Pool(jobs) as pool:
        pending = [pool.apply_async(f, (a,)) for f, a in tasks]
        for p in pending:
            yield p.get()


def sql(mb, seed, next_day, out, jobs=1):
    per_table = max(1, mb * 1_000_000 // len(TABLES) // 76)
    out.write("--\n-- PostgreSQL database dump\n--\n\nSET statement_timeout = 0;\nSET client_encoding = 'UTF8';\n"
              "SET standard_conforming_strings = on;\n\n")
    for t, (name, cols) in enumerate(TABLES):
        out.write("COPY %s (%s) FROM stdin;\n" % (name, cols))
        for text in _ordered(_table_blocks(t, per_table, seed, next_day), jobs):
            out.write(text)
        out.write("\\.\n\n")
    out.write("--\n-- PostgreSQL database dump complete\n--\n")


def csv(mb, seed, next_day, out, jobs=1):
    rows = max(1, mb * 1_000_000 // 95)
    out.write("id,device,kind,payload,observed_at\n")
    for r in table_rows(1, rows, seed, next_day):
        out.write(r.replace("\t", ",") + "\n")


# ---------------------------------------------------------------------------------------------
# csv-parts and compressed: one generator per partition (sequential draws, much faster), with
# separate generators for the next day's updates and late rows so the base rows stay aligned.

CSV_HEADER = "id,observed_at,device,kind,temperature,payload\n"
CSV_ROW_BYTES = 113  # average length of a row below, to size partitions
CSV_KINDS = ("read",) * 12 + ("heartbeat",) * 2 + ("alarm", "boot")
GZIP_RATIO = 4.6  # raw / gzip -6 size of these partitions, to size the compressed kind


def _mix(*xs):
    h = 1469598103934665603
    for x in xs:
        h = ((h ^ (x & 0xFFFFFFFFFFFFFFFF)) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h


def _day(p):
    import datetime
    return datetime.date(2024, 6, 1) + datetime.timedelta(days=p)


_TIMES = []


def _times():
    if not _TIMES:
        _TIMES.extend("%02d:%02d:%02d" % (s // 3600, s // 60 % 60, s % 60) for s in range(86400))
    return _TIMES


_TEMPS = ["%.1f" % (t / 10 - 40) for t in range(1000)]
_FW = ["%d.%d" % (f // 4, f % 4) for f in range(8)]
_MOD16 = bytes(x % 16 for x in range(256))
_MOD26 = bytes(x % 26 for x in range(234)) + bytes(x % 26 for x in range(22))  # ~uniform
_MOD8 = bytes(x % 8 for x in range(256))
CSV_FMT = '%d,%s %s.%06d+00,dev-%05d,%s,%s,"{""v"": %d, ""tag"": ""%s"", ""fw"": ""%s""}"\n'


def csv_partition(seed, p, parts, rows, next_day):
    """The text of partition p (a day) of a `parts`-partition export with `rows` base rows. The
    columns are drawn in bulk (randbytes, C-level map), about 1.5 us a row."""
    rng = random.Random(_mix(seed, 101, p))
    rb = rng.randbytes
    n = rows
    date = _day(p).isoformat()
    step = 86_400_000_000 // n
    us = list(map(operator.add, range(0, n * step, step), map(operator.mod, array("I", rb(4 * n)), itertools.repeat(step))))
    times = map(_times().__getitem__, map(operator.floordiv, us, itertools.repeat(1_000_000)))
    micro = map(operator.mod, us, itertools.repeat(1_000_000))
    device = map(operator.mod, array("H", rb(2 * n)), itertools.repeat(50000))
    kinds = map(CSV_KINDS.__getitem__, rb(n).translate(_MOD16))
    temps = map(_TEMPS.__getitem__, map(operator.mod, array("H", rb(2 * n)), itertools.repeat(1000)))
    vals = map(operator.and_, array("I", rb(4 * n)), itertools.repeat(0xFFFFF))
    tags = map(WORDS.__getitem__, rb(n).translate(_MOD26))
    fws = map(_FW.__getitem__, rb(n).translate(_MOD8))
    first_id = p * rows + 1
    lines = list(map(CSV_FMT.__mod__, zip(range(first_id, first_id + n), itertools.repeat(date), times, micro,
                                          device, kinds, temps, vals, tags, fws)))
    if next_day and parts - 2 <= p < parts:  # a few rows corrected in place (same id and time)
        ru = random.Random(_mix(seed, 202, p))
        for i in range(n):
            if (i * 2654435761 + p) % 400 == 3:
                old = lines[i].split(",", 5)
                lines[i] = CSV_FMT % (first_id + i, date, old[1][11:19], int(old[1][20:26]), int(old[2][4:]), "alarm",
                                      _TEMPS[ru.randrange(1000)], ru.randrange(1048576), ru.choice(WORDS),
                                      _FW[ru.randrange(8)])
    if next_day and parts - 3 <= p < parts:  # batches of late-arriving rows, filed at their time
        rl = random.Random(_mix(seed, 303, p))
        every = max(1, n // 4)
        for i in reversed(range(every // 2, n, every)):
            t = us[i]
            batch = [CSV_FMT % (10**9 + p * 1000 + i // every * 20 + k, date, _times()[t // 1_000_000],
                                t % 1_000_000, rl.randrange(50000), CSV_KINDS[rl.randrange(16)],
                                _TEMPS[rl.randrange(1000)], rl.randrange(1048576), rl.choice(WORDS), _FW[rl.randrange(8)])
                     for k in range(rl.randrange(3, 12))]
            lines[i + 1:i + 1] = batch
    return CSV_HEADER + "".join(lines)


def _csv_layout(mb, parts, raw_factor=1.0):
    rows = max(16, int(mb * 1_000_000 * raw_factor / parts / CSV_ROW_BYTES))
    return rows


def _csv_entry(args):
    seed, p, parts, rows, next_day, compress = args
    data = csv_partition(seed, p, parts, rows, next_day).encode()
    name = "events_%s.csv" % _day(p).strftime("%Y%m%d")
    if compress:
        data, name = gzip.compress(data, compresslevel=6, mtime=0), name + ".gz"
    return name, DAY0 + (p + 1) * 86400 + 3600, data


def csv_parts_entries(mb, seed, next_day, parts, jobs, compress=False):
    rows = _csv_layout(mb, parts, GZIP_RATIO if compress else 1.0)
    count = parts + 1 if next_day else parts
    tasks = ((_csv_entry, (seed, p, parts, rows, next_day, compress)) for p in range(count))
    return _ordered(tasks, jobs)


# ---------------------------------------------------------------------------------------------
# columns: ClickHouse-like wide parts. Each daily insert block's columns come from C-speed
# byte operations (randbytes, translate, accumulate), so 1 GB takes seconds.

COLUMN_ROW_BYTES = 8 + 4 + 4 + 8 + 1
GRANULE = 8192
LC_KINDS = (b"read", b"heartbeat", b"alarm", b"boot", b"error")
# kind keys: 0 read 70%, 1 heartbeat 20%, 2 alarm 5%, 3 boot 3%, 4 error 2% (of 256 byte values)
_KIND_TABLE = bytes([0] * 179 + [1] * 51 + [2] * 13 + [3] * 8 + [4] * 5)


def column_block(seed, blk, rows):
    """Columns of insert block blk (1-based): dict name -> bytes."""
    rng = random.Random(_mix(seed, 404, blk))
    rb = rng.randbytes
    ids = array("Q", range((blk - 1) * rows + 1, blk * rows + 1))
    step = 86400 / rows
    if step < 1:
        table = bytes(1 if x < round(256 * step) else 0 for x in range(256))
    else:
        table = bytes(min(255, round(2 * step * x / 255)) for x in range(256))
    ts = array("I", itertools.accumulate(rb(rows - 1).translate(table), initial=DAY0 + (blk - 1) * 86400))
    device = array("I", array("H", rb(2 * rows)))
    value = array("d", map((0.01).__mul__, array("H", rb(2 * rows))))
    kind = rb(rows).translate(_KIND_TABLE)
    if sys.byteorder != "little":
        for a in (ids, ts, device, value):
            a.byteswap()
    return {"id": ids.tobytes(), "timestamp": ts.tobytes(), "device_id": device.tobytes(),
            "value": value.tobytes(), "kind": kind}


COLUMN_TYPES = (("id", "UInt64", 8), ("timestamp", "DateTime", 4), ("device_id", "UInt32", 4),
                ("value", "Float64", 8), ("kind", "LowCardinality(String)", 1))


def column_part(seed, lo, hi, rows):
    """The files of part all_lo_hi_level (blocks lo..hi merged; ORDER BY timestamp, so a merge of
    time-disjoint blocks is their concatenation). Returns [(relative name, bytes)]."""
    blocks = [column_block(seed, b, rows) for b in range(lo, hi + 1)]
    n = rows * len(blocks)
    files = []
    for name, _, width in COLUMN_TYPES:
        data = b"".join(bl[name] for bl in blocks)
        files.append((name + ".bin", data))
        marks = array("Q")
        for gstart in range(0, n, GRANULE):
            marks.extend((gstart * width, 0, min(GRANULE, n - gstart)))
        files.append((name + ".mrk2", marks.tobytes()))
    dictionary = b"".join(bytes([len(s)]) + s for s in LC_KINDS)
    files.append(("kind.dict.bin", dictionary))
    files.append(("kind.dict.mrk2", array("Q", (0, 0, len(LC_KINDS))).tobytes()))
    ts = array("I")
    ts.frombytes(b"".join(bl["timestamp"] for bl in blocks))
    files.append(("primary.idx", array("I", ts[::GRANULE]).tobytes()))
    files.append(("minmax_timestamp.idx", array("I", (ts[0], ts[-1])).tobytes()))
    files.append(("partition.dat", b""))
    files.append(("count.txt", b"%d" % n))
    files.append(("default_compression_codec.txt", b"CODEC(NONE)"))
    files.append(("columns.txt", ("columns format version: 1\n%d columns:\n" % len(COLUMN_TYPES)
                                  + "".join("`%s` %s\n" % (c, t) for c, t, _ in COLUMN_TYPES)).encode()))
    checks = "".join("%s\t%d\t%s\n" % (f, len(d), hashlib.md5(d).hexdigest()) for f, d in sorted(files))
    files.append(("checksums.txt", ("checksums format version: 4\n%d files:\n" % len(files) + checks).encode()))
    return files


def column_parts(blocks):
    """Part ranges for `blocks` daily insert blocks: the last four unmerged, older blocks merged
    in groups of up to eight (the last group possibly partial, growing day by day)."""
    merged = max(0, blocks - 4)
    out = [(lo, min(lo + 7, merged)) for lo in range(1, merged + 1, 8)]
    return out + [(b, b) for b in range(merged + 1, blocks + 1)]


def _column_entries(args):
    seed, lo, hi, rows = args
    level = (hi - lo + 1).bit_length() - 1
    d = "all_%d_%d_%d" % (lo, hi, level)
    mtime = DAY0 + hi * 86400 + 1800
    return [(d + "/", mtime, None)] + [(d + "/" + f, mtime, data) for f, data in column_part(seed, lo, hi, rows)]


def columns_entries(mb, seed, next_day, parts, jobs):
    rows = max(GRANULE // 8, int(mb * 1_000_000 / parts / COLUMN_ROW_BYTES))
    layout = column_parts(parts + 1 if next_day else parts)
    for entries in _ordered(((_column_entries, (seed, lo, hi, rows)) for lo, hi in layout), jobs):
        yield from entries


# ---------------------------------------------------------------------------------------------
# Output of the directory kinds.

def write_tar(entries, out):
    """A deterministic ustar stream: entries in the given order, fixed owner and modes."""
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.USTAR_FORMAT) as tf:
        for name, mtime, data in entries:
            info = tarfile.TarInfo(name.rstrip("/"))
            info.mtime, info.uid, info.gid, info.uname, info.gname = mtime, 0, 0, "", ""
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tf.addfile(info)
            else:
                info.size, info.mode = len(data), 0o644
                tf.addfile(info, io.BytesIO(data))


def write_dir(entries, root):
    """Writes the entries under root: unchanged files are left alone (content and mtime), others
    written, and files and directories that are not entries removed."""
    os.makedirs(root, exist_ok=True)
    keep = set()
    for name, mtime, data in entries:
        path = os.path.join(root, name.rstrip("/"))
        keep.add(os.path.normpath(path))
        if data is None:
            os.makedirs(path, exist_ok=True)
            continue
        try:
            with open(path, "rb") as f:
                same = os.path.getsize(path) == len(data) and f.read() == data
        except FileNotFoundError:
            same = False
        if not same:
            tmp = path + ".tmp"
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
            os.utime(path, (mtime, mtime))
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for f in filenames:
            p = os.path.normpath(os.path.join(dirpath, f))
            if p not in keep:
                os.unlink(p)
        for d in dirnames:
            p = os.path.normpath(os.path.join(dirpath, d))
            if p not in keep:
                os.rmdir(p)


DIRECTORY_KINDS = ("csv-parts", "columns", "compressed")
KINDS = ("sql", "csv") + DIRECTORY_KINDS


def entries_for(kind, mb, seed, next_day, parts, jobs):
    if kind == "csv-parts":
        return csv_parts_entries(mb, seed, next_day, parts, jobs)
    if kind == "compressed":
        return csv_parts_entries(mb, seed, next_day, parts, jobs, compress=True)
    if kind == "columns":
        return columns_entries(mb, seed, next_day, parts, jobs)
    raise ValueError(kind)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("kind", choices=KINDS)
    p.add_argument("--mb", type=int, default=100, help="approximate size in MB")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--next-day", action="store_true")
    p.add_argument("--parts", type=int, default=30,
                   help="directory kinds: day-1 partitions (csv-parts, compressed) or daily insert blocks (columns)")
    p.add_argument("--out", help="output file (sql, csv) or directory (directory kinds)")
    p.add_argument("--stream", action="store_true", help="directory kinds: write one ustar stream to stdout")
    p.add_argument("--jobs", type=int, default=min(4, os.cpu_count() or 1),
                   help="worker processes (default: cores, at most 4); the output is the same for any value")
    a = p.parse_args()
    if a.kind in DIRECTORY_KINDS:
        if bool(a.out) == a.stream:
            p.error("%s needs exactly one of --out DIR or --stream" % a.kind)
        entries = entries_for(a.kind, a.mb, a.seed, a.next_day, max(4, a.parts), a.jobs)
        if a.stream:
            write_tar(entries, sys.stdout.buffer)
            sys.stdout.buffer.flush()
        else:
            write_dir(entries, a.out)
        return
    out = open(a.out, "w") if a.out else sys.stdout
    (sql if a.kind == "sql" else csv)(a.mb, a.seed, a.next_day, out, a.jobs)
    out.flush()


if __name__ == "__main__":
    main()
