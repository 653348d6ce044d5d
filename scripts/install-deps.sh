#!/usr/bin/env bash
# Installs the Debian packages repo builds and tests against. Needs root (or sudo).
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
    libzstd-dev libssl-dev libsqlite3-dev libxxhash-dev libfuse3-dev fuse3 libpq5 postgresql pkg-config zstd python3 strace \
    radosgw ceph-mon ceph-osd ceph-common curl >/dev/null
