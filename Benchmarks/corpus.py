#!/usr/bin/env python3
"""Deterministic benchmark and demo inputs for repo, with a "next day" variant of each.

  corpus.py sql --mb N [--seed S] [--next-day]   pg_dump plain-format SQL (COPY blocks)
  corpus.py csv --mb N [--seed S] [--next-day]   one CSV partition export

The next-day version of a corpus is the same data one day later: about 1% more rows appended to
each table, a scattering (0.1%) of rows updated in place, and small batches of rows inserted in
the middle of tables, as happens to a real database between two nightly dumps.
"""
import argparse
import random
import sys

WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november "
         "oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu").split()
TABLES = [
    ("public.orders", "id, customer_id, status, amount, currency, created_at, note"),
    ("public.events", "id, device, kind, payload, observed_at"),
    ("public.customers", "id, name, email, country, balance, updated_at"),
]


def row(table, i, rng, day):
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


def table_rows(t, count, seed, next_day):
    """Yields the rows of table t; the row generator is seeded per row so days line up."""
    for i in range(1, count + 1):
        rng = random.Random((seed * 1_000_003 + t) * 10_000_019 + i)
        day = 0
        if next_day and (i * 2654435761 + t) % 1000 == 7:
            day = 1  # updated in place
            rng = random.Random((seed * 1_000_003 + t) * 10_000_019 + i + 7_777_777_777)
        yield row(t, i, rng, day)
        if next_day and i % 40_000 == 0:  # a batch inserted mid-table
            for k in range(5):
                yield row(t, count * 10 + i + k, random.Random(i * 31 + k + seed), 1)
    if next_day:
        for i in range(count + 1, count + count // 100 + 1):
            yield row(t, i, random.Random((seed * 1_000_003 + t) * 10_000_019 + i), 0)


def sql(mb, seed, next_day, out):
    per_table = max(1, mb * 1_000_000 // len(TABLES) // 76)
    out.write("--\n-- PostgreSQL database dump\n--\n\nSET statement_timeout = 0;\nSET client_encoding = 'UTF8';\n"
              "SET standard_conforming_strings = on;\n\n")
    for t, (name, cols) in enumerate(TABLES):
        out.write("COPY %s (%s) FROM stdin;\n" % (name, cols))
        buf = []
        for r in table_rows(t, per_table, seed, next_day):
            buf.append(r)
            if len(buf) == 4096:
                out.write("\n".join(buf) + "\n")
                buf = []
        if buf:
            out.write("\n".join(buf) + "\n")
        out.write("\\.\n\n")
    out.write("--\n-- PostgreSQL database dump complete\n--\n")


def csv(mb, seed, next_day, out):
    rows = max(1, mb * 1_000_000 // 95)
    out.write("id,device,kind,payload,observed_at\n")
    for r in table_rows(1, rows, seed, next_day):
        out.write(r.replace("\t", ",") + "\n")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("kind", choices=("sql", "csv"))
    p.add_argument("--mb", type=int, default=100, help="approximate size in MB")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--next-day", action="store_true")
    a = p.parse_args()
    out = sys.stdout
    (sql if a.kind == "sql" else csv)(a.mb, a.seed, a.next_day, out)


if __name__ == "__main__":
    main()
