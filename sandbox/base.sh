#!/usr/bin/env bash
# The sandbox base image's root filesystem: a minimal Debian (bookworm, whose python3 is 3.11)
# built from Debian's package archive, written as a tarball to $1 for `docker import`.
# No registry is involved. mmdebstrap is used when installed (faster, no root needed), else
# debootstrap (needs root). `mlsbench images build` runs this; the image tag hashes this file.
set -euo pipefail
out="$1"
suite=bookworm
mirror="${MLSBENCH_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
packages=python3,python3-venv,procps,dataset-fashion-mnist
if command -v mmdebstrap >/dev/null; then
  mmdebstrap --quiet --variant=minbase --include="$packages" --dpkgopt=force-unsafe-io \
    "$suite" "$out" "$mirror"
else
  dir="$(mktemp -d)"
  trap 'rm -rf "$dir"' EXIT
  debootstrap --variant=minbase --include="$packages" "$suite" "$dir" "$mirror"
  rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
  tar --numeric-owner -C "$dir" -cf "$out" .
fi
