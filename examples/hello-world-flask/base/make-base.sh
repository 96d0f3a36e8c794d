#!/usr/bin/env bash
# Makes the Python base image's root filesystem for the hello-world-flask
# example from Debian's packages, for machines that reach a Debian mirror but
# no public container registry: debootstrap --variant=minbase of bookworm with
# python3, python3-flask (2.2.2, the version requirements.txt pins) and
# python3-pip, written as one tar that `ADD rootfs.tar /` unpacks.
#
#   examples/hello-world-flask/base/make-base.sh [OUT.tar]
#
# OUT defaults to /var/cache/longshore/python-base.tar. Idempotent: does
# nothing when OUT exists. The mirror is the first deb.debian.org-style URI of
# the machine's apt sources (override with DEBIAN_MIRROR). Run as root.
set -euo pipefail

OUT=${1:-/var/cache/longshore/python-base.tar}
SUITE=${DEBIAN_SUITE:-bookworm}
PACKAGES=python3,python3-flask,python3-pip

if [[ -s "$OUT" ]]; then
  echo "make-base.sh: $OUT exists, nothing to do"
  exit 0
fi
[[ $(id -u) -eq 0 ]] || { echo "make-base.sh: run as root (debootstrap)" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "make-base.sh: debootstrap is missing (apt-get install debootstrap)" >&2; exit 1; }

# The mirror apt already uses: deb822 "URIs:" lines first, then one-line
# "deb URI SUITE" entries; the security archive is not a full mirror.
mirror=${DEBIAN_MIRROR:-}
if [[ -z "$mirror" ]]; then
  mirror=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
    awk '$1 == "URIs:" && $2 !~ /security/ { print $2; exit }')
fi
if [[ -z "$mirror" ]]; then
  mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
    awk '$1 == "deb" && $0 ~ / '"$SUITE"' / && $2 !~ /security/ { print $2; exit }')
fi
mirror=${mirror:-http://deb.debian.org/debian}

work=$(mktemp -d "${TMPDIR:-/tmp}/python-base.XXXXXX")
trap 'rm -rf "$work"' EXIT
root="$work/rootfs"
echo "make-base.sh: debootstrap --variant=minbase --include=$PACKAGES $SUITE from $mirror"
debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$root" "$mirror" \
  >"$work/debootstrap.log" 2>&1 || {
  tail -n 30 "$work/debootstrap.log" >&2
  echo "make-base.sh: debootstrap failed" >&2
  exit 1
}

# As the python:3.11-slim image: pip may install into the system Python (no
# PEP 668 marker), so `pip3 install -r requirements.txt` finds the pinned Flask
# already satisfied by Debian's python3-flask without reaching PyPI.
rm -f "$root"/usr/lib/python3*/EXTERNALLY-MANAGED
# The suite's date from its Release file (before apt's lists go): the mtime
# every file made during this run is clamped to, so two runs against the same
# mirror state give the same dates.
release=$(ls "$root"/var/lib/apt/lists/*_InRelease "$root"/var/lib/apt/lists/*_Release 2>/dev/null | head -n 1 || true)
epoch=""
if [[ -n "$release" ]]; then
  epoch=$(date -d "$(sed -n 's/^Date: //p' "$release" | head -n 1)" +%s 2>/dev/null || true)
fi
epoch=${epoch:-$(stat -c %Y "$root/var/lib/dpkg/status")}
# What an image does not carry: device nodes (the runtime makes /dev), package
# downloads and indexes, logs and caches of this run.
find "$root/dev" -mindepth 1 -delete
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
  "$root"/var/cache/apt/*.bin "$root"/var/log/* "$root"/tmp/* "$root"/root/.cache
find "$root" -name __pycache__ -type d -prune -exec rm -rf {} +
: >"$root/etc/hostname"
# debootstrap copied this machine's resolver; the runtime provides its own.
rm -f "$root/etc/resolv.conf"
rm -f "$root"/var/lib/dpkg/*-old "$root"/var/cache/debconf/*-old

# A reproducible tar: sorted names, numeric owners, mtimes clamped to the
# suite's date, no atime/ctime.
mkdir -p "$(dirname "$OUT")"
tar -C "$root" --sort=name --numeric-owner --format=pax \
  --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
  --mtime="@$epoch" --clamp-mtime -cf "$work/rootfs.tar" .
mv "$work/rootfs.tar" "$OUT"
echo "make-base.sh: wrote $OUT ($(du -h "$OUT" | cut -f1))"
