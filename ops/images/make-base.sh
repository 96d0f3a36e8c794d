#!/usr/bin/env bash
# Makes the root filesystem the scheduler and worker images start from, from
# Debian's packages, for machines that reach a Debian mirror but no public
# container registry: debootstrap --variant=minbase of bookworm with the
# packages of base-packages.txt (the runtime libraries the binaries link, the
# tools the worker runs: newuidmap/newgidmap from uidmap, slirp4netns; CA
# certificates) and those owning any other library the binaries given load
# (ldd, dpkg -S), written as one tar that `ADD base.tar /`
# unpacks. Where a registry with Debian images is reachable, the Dockerfiles
# can start `FROM debian:bookworm-slim` and apt-get install the same packages
# instead (docs/operating.md, "Images").
#
#   ops/images/make-base.sh OUT.tar [BINARY...]
#
# Idempotent: does nothing when OUT exists and was made for the same package
# list (OUT.packages). The mirror is the machine's apt mirror (override with
# DEBIAN_MIRROR). Run as root.
set -euo pipefail

OUT=${1:-}
shift || true
SUITE=${DEBIAN_SUITE:-bookworm}
[[ -n "$OUT" ]] || { echo "usage: make-base.sh OUT.tar [BINARY...]" >&2; exit 2; }

# base-packages.txt (what ops/bootstrap.sh makes the base from, before any
# binary is built), and the packages that own the libraries the binaries load:
# a library the list lacks changes the list, and the base is made again.
mapfile -t packages < <(grep -v '^#' "$(dirname "$0")/base-packages.txt")
libs=()
for bin in "$@"; do
  [[ -x "$bin" ]] || { echo "make-base.sh: $bin is not an executable" >&2; exit 1; }
  # A static binary ("not a dynamic executable") needs no library.
  mapfile -t -O "${#libs[@]}" libs < <(ldd "$bin" 2>/dev/null |
    awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' || true)
done
if ((${#libs[@]})); then
  # One dpkg -S for every library (it reads the whole package database each
  # time); both spellings, as /lib is a link to /usr/lib.
  mapfile -t libs < <(printf '%s\n' "${libs[@]}" | sort -u)
  query=()
  for lib in "${libs[@]}"; do query+=("$lib" "$(readlink -f "$lib")" "/usr$lib"); done
  owners=$(dpkg -S "${query[@]}" 2>/dev/null || true)
  for lib in "${libs[@]}"; do
    owner=$(awk -F': ' -v a="$lib" -v b="$(readlink -f "$lib")" -v c="/usr$lib" \
      '$2 == a || $2 == b || $2 == c { print $1; exit }' <<<"$owners")
    [[ -n "$owner" ]] || { echo "make-base.sh: no Debian package owns $lib" >&2; exit 1; }
    packages+=("${owner%%:*}")
  done
fi
list=$(printf '%s\n' "${packages[@]}" | sort -u | paste -sd, -)

if [[ -s "$OUT" && -f "$OUT.packages" && "$(cat "$OUT.packages")" == "$list" ]]; then
  echo "make-base.sh: $OUT exists, nothing to do"
  exit 0
fi
[[ $(id -u) -eq 0 ]] || { echo "make-base.sh: run as root (debootstrap)" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "make-base.sh: debootstrap is missing (apt-get install debootstrap)" >&2; exit 1; }

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

work=$(mktemp -d "${TMPDIR:-/tmp}/longshore-base.XXXXXX")
trap 'rm -rf "$work"' EXIT
root="$work/rootfs"
echo "make-base.sh: debootstrap --variant=minbase $SUITE from $mirror with $list"
debootstrap --variant=minbase --include="$list" "$SUITE" "$root" "$mirror" \
  >"$work/debootstrap.log" 2>&1 || {
  tail -n 30 "$work/debootstrap.log" >&2
  echo "make-base.sh: debootstrap failed" >&2
  exit 1
}
release=$(ls "$root"/var/lib/apt/lists/*_InRelease "$root"/var/lib/apt/lists/*_Release 2>/dev/null | head -n 1 || true)
epoch=""
if [[ -n "$release" ]]; then
  epoch=$(date -d "$(sed -n 's/^Date: //p' "$release" | head -n 1)" +%s 2>/dev/null || true)
fi
epoch=${epoch:-$(stat -c %Y "$root/var/lib/dpkg/status")}
# What an image does not carry: device nodes, package downloads and indexes,
# documentation, logs and caches of this run, this machine's resolver.
find "$root/dev" -mindepth 1 -delete
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
  "$root"/var/cache/apt/*.bin "$root"/var/log/* "$root"/tmp/* \
  "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/locale/*
: >"$root/etc/hostname"
rm -f "$root/etc/resolv.conf" "$root"/var/lib/dpkg/*-old "$root"/var/cache/debconf/*-old

mkdir -p "$(dirname "$OUT")"
tar -C "$root" --sort=name --numeric-owner --format=pax \
  --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
  --mtime="@$epoch" --clamp-mtime -cf "$work/base.tar" .
mv "$work/base.tar" "$OUT"
echo "$list" >"$OUT.packages"
echo "make-base.sh: wrote $OUT ($(du -h "$OUT" | cut -f1))"
