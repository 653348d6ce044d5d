#!/usr/bin/env bash
# Installs what repo needs, builds it (release), and runs the main job on a demo: a local
# repository (with its embedded SQLite catalog), a generated pg_dump-style SQL dump stored,
# listed, dumped back and verified byte for byte; a directory tree backed up and restored;
# the retention policy previewed; then checked.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
# The same release build the benchmarks use (static Swift runtime): a plain `swift build -c
# release` would replace it at the same path with a dynamically linked binary that starts slower.
BIN="$(./scripts/build-release.sh)"

DEMO="$(mktemp -d /tmp/repo-demo.XXXXXX)"
export REPO_REPOSITORY="$DEMO/repository" REPO_PASSWORD="demo password" REPO_CACHE_DIR="$DEMO/cache"
echo "== demo directory: $DEMO"

python3 Benchmarks/corpus.py sql --mb 64 --seed 1 > "$DEMO/db.sql"
python3 Benchmarks/corpus.py sql --mb 64 --seed 1 --next-day > "$DEMO/db-next-day.sql"

echo "== repo init";        "$BIN" init
echo "== repo store (day 1)"; "$BIN" store --name db.sql --tag demo -v < "$DEMO/db.sql"
echo "== repo store (day 2, via a command)"
"$BIN" store --name db.sql --tag demo -v -- cat "$DEMO/db-next-day.sql"
echo "== repo snapshots";   "$BIN" snapshots
echo "== repo dump latest | cmp"
"$BIN" dump latest --name db.sql | cmp - "$DEMO/db-next-day.sql" && echo "dump is byte-identical to the input"
echo "== repo backup (a directory of partition exports)"
mkdir -p "$DEMO/exports"
for i in 1 2 3; do python3 Benchmarks/corpus.py csv --mb 4 --seed "$i" > "$DEMO/exports/part-$i.csv"; done
"$BIN" backup "$DEMO/exports" --tag demo
echo "== repo restore --verify | diff -r"
"$BIN" restore latest --target "$DEMO/restored" --verify
diff -r "$DEMO/exports" "$DEMO/restored$DEMO/exports" && echo "restored tree is identical to the original"
echo "== repo forget --dry-run (hot/warm/cold defaults)"; "$BIN" forget --dry-run
echo "== repo check --read-data"; "$BIN" check --read-data
echo "== repo stats";       "$BIN" stats
echo "== done; remove $DEMO when finished"
