#!/usr/bin/env bash
# Builds the release binaries, `repo` (the launcher) and `repo-core` next to it (install both in
# one directory; Sources/RepoLaunch/Launcher.swift), with the Swift runtime and Foundation
# linked in statically, and prints the launcher's path. Loading and binding the shared Swift
# libraries costs a process several milliseconds (a Foundation "hello" started in 16 ms dynamic
# against 8 ms static on the 2-core build machine, /bin/true 8 ms under the same load), which
# matters for `wal-push`, one process per WAL segment (README, "PostgreSQL point-in-time
# recovery"). Static Foundation needs its archives in one link group (their references go both
# ways).
#
# --no-export-dynamic undoes the `-export-dynamic` that the toolchain's static-stdlib-args.lnk
# adds: it put all 36,000 of repo's own symbols in the dynamic symbol table, which the runtime's
# backtracer setup scans with dladdr at every start (about 1 ms of a `wal-fetch` from the spool;
# nothing looks repo's symbols up by name). The binary stays position-independent: linking it
# -no-pie would save another 1.5 ms a process (no 144,000 relative relocations to apply), at the
# price of fixed addresses for 28 MB of code in a process that holds repository keys.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
group=(-Xlinker --start-group)
for lib in Foundation FoundationInternationalization FoundationEssentials CoreFoundation \
           _FoundationCollections _FoundationICU _FoundationCShims; do
    group+=(-Xlinker "-l$lib")
done
group+=(-Xlinker --end-group)
# The launcher links none of Foundation: the group only resolves what a binary references.
for product in repo-core repo; do
    swift build -c release --product "$product" --static-swift-stdlib "${group[@]}" -Xlinker --no-export-dynamic >&2
done
echo "$PWD/.build/release/repo"
