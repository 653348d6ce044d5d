#!/usr/bin/env bash
# Installs the Debian packages repo builds and tests against. Needs root (or sudo).
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
    libzstd-dev libssl-dev libsqlite3-dev libxxhash-dev libfuse3-dev fuse3 libpq5 postgresql pkg-config zstd python3 strace \
    radosgw ceph-mon ceph-osd ceph-common curl openssl python3-pip >/dev/null
# moto's server (an AWS mock: KMS for the KMS key slot tests, S3 for light ones) from PyPI,
# unless this Python has it already.
if ! python3 -c 'import moto.server, boto3, flask' 2>/dev/null; then
    python3 -m pip install -q 'moto[server]' boto3 2>/dev/null \
        || python3 -m pip install -q --break-system-packages 'moto[server]' boto3
fi
# prometheus_client's exposition-format parser, which StatusTests read the metrics with, from
# PyPI unless this Python has it already.
if ! python3 -c 'import prometheus_client.parser' 2>/dev/null; then
    python3 -m pip install -q prometheus_client 2>/dev/null \
        || python3 -m pip install -q --break-system-packages prometheus_client
fi
