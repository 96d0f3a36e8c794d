#!/usr/bin/env bash
# Writes the archive seeds of fuzz/corpus/{context_tar,layer_apply,add_archive}
# (they are committed; run this only to change them). Well-formed archives are
# made by GNU tar from a small tree; hostile ones, which tar refuses to make
# (".." names, absolute names, links out of the tree, writes through
# symlinks), by Python's tarfile. Names starting "regression-" are left alone.
#
# Needs: tar, gzip, bzip2, xz, zstd, python3.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
corpus="${here}/corpus"
tmp="$(mktemp -d)"
trap 'rm -rf "${tmp}"' EXIT

# Deterministic tar: fixed owner, mtime and order; 512-byte records keep the
# seeds small.
dtar() {  # OUT DIR [tar options...]
  local out="$1" dir="$2"
  shift 2
  tar -C "${dir}" -b 1 --sort=name --owner=0 --group=0 --numeric-owner \
    --mtime=2024-01-02T03:04:05Z "$@" -cf "${out}" .
}

# A build context: a Dockerfile, an ignore file, sources, a symlink and a hard
# link.
ctx="${tmp}/ctx"
mkdir -p "${ctx}/src/pkg" "${ctx}/docs"
printf 'FROM busybox\nCOPY src /src\nRUN ["/src/run.sh"]\n' >"${ctx}/Dockerfile"
printf '*.md\n!README.md\n' >"${ctx}/.dockerignore"
printf '#!/bin/sh\necho hello\n' >"${ctx}/src/run.sh"
chmod 755 "${ctx}/src/run.sh"
printf 'package pkg\n' >"${ctx}/src/pkg/a.go"
printf '# docs\n' >"${ctx}/docs/README.md"
ln -s ../src/run.sh "${ctx}/docs/run"
ln "${ctx}/src/pkg/a.go" "${ctx}/src/pkg/b.go"

# An image layer: a root file system's worth of shapes, whiteouts included.
layer="${tmp}/layer"
mkdir -p "${layer}/etc" "${layer}/usr/bin" "${layer}/var/lib/app" "${layer}/tmp"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"${layer}/etc/passwd"
printf 'binary\n' >"${layer}/usr/bin/tool"
chmod 4755 "${layer}/usr/bin/tool"
ln -s tool "${layer}/usr/bin/alias"
ln -s /etc/passwd "${layer}/var/lib/app/passwd"
ln "${layer}/etc/passwd" "${layer}/var/lib/app/passwd.hard"
: >"${layer}/var/lib/app/.wh.old"
: >"${layer}/tmp/.wh..wh..opq"
chmod 1777 "${layer}/tmp"

for t in context_tar add_archive layer_apply; do mkdir -p "${corpus}/${t}"; done

dtar "${corpus}/context_tar/context-gnu.tar" "${ctx}" --format=gnu
dtar "${corpus}/context_tar/context-pax.tar" "${ctx}" --format=pax \
  --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime
dtar "${corpus}/context_tar/context-ustar.tar" "${ctx}" --format=ustar

dtar "${tmp}/layer.tar" "${layer}" --format=pax \
  --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime
cp "${tmp}/layer.tar" "${corpus}/layer_apply/layer.tar"
gzip -n -9 -c "${tmp}/layer.tar" >"${corpus}/layer_apply/layer.tar.gz"
zstd -q -19 -c "${tmp}/layer.tar" >"${corpus}/layer_apply/layer.tar.zst"

dtar "${tmp}/ctx.tar" "${ctx}" --format=gnu
cp "${tmp}/ctx.tar" "${corpus}/add_archive/archive.tar"
gzip -n -9 -c "${tmp}/ctx.tar" >"${corpus}/add_archive/archive.tar.gz"
bzip2 -9 -c "${tmp}/ctx.tar" >"${corpus}/add_archive/archive.tar.bz2"
xz -9 -c "${tmp}/ctx.tar" >"${corpus}/add_archive/archive.tar.xz"
zstd -q -19 -c "${tmp}/ctx.tar" >"${corpus}/add_archive/archive.tar.zst"

# Hostile shapes, the same for the three extractors. /mnt/outside is where
# the fuzz playground keeps what must not change (fuzz/playground.h).
python3 - "${corpus}" <<'EOF'
import io, sys, tarfile

# End-of-archive padding to 512-byte records, not 10 KiB: smaller seeds.
tarfile.RECORDSIZE = 512

corpus = sys.argv[1]
MTIME = 1704164645

def entry(name, kind=tarfile.REGTYPE, data=b"", link="", mode=0o644,
          devmajor=0, devminor=0, pax=None):
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.mode = mode
    ti.mtime = MTIME
    ti.linkname = link
    ti.devmajor, ti.devminor = devmajor, devminor
    if pax:
        ti.pax_headers = pax
    ti.size = len(data) if kind == tarfile.REGTYPE else 0
    return ti, data

def write(path, entries, fmt=tarfile.GNU_FORMAT):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for ti, data in entries:
            tf.addfile(ti, io.BytesIO(data) if ti.size else None)
    with open(path, "wb") as f:
        f.write(buf.getvalue())

hostile = {
    "dotdot.tar": [entry("../outside/dotdot", data=b"x\n"),
                   entry("a/../../outside/dotdot2", data=b"x\n")],
    "absolute.tar": [entry("/mnt/outside/absolute", data=b"x\n")],
    "symlink-dir-escape.tar": [
        entry("up", tarfile.SYMTYPE, link="../outside"),
        entry("up/through", data=b"written through a symlink\n")],
    "symlink-abs-escape.tar": [
        entry("abs", tarfile.SYMTYPE, link="/mnt/outside"),
        entry("abs/victim", data=b"overwritten\n")],
    "symlink-file-escape.tar": [
        entry("v", tarfile.SYMTYPE, link="/mnt/outside/victim"),
        entry("v", data=b"replaces the link, not the victim\n")],
    "hardlink-escape.tar": [
        entry("h1", tarfile.LNKTYPE, link="/mnt/outside/victim"),
        entry("h2", tarfile.LNKTYPE, link="../outside/victim"),
        entry("h3", tarfile.LNKTYPE, link="../../mnt/outside/victim")],
    "hardlink-via-symlink.tar": [
        entry("s", tarfile.SYMTYPE, link="/mnt/outside"),
        entry("h", tarfile.LNKTYPE, link="s/victim"),
        entry("h", data=b"overwritten via a hard link\n")],
    "devices.tar": [
        entry("dev", tarfile.DIRTYPE, mode=0o755),
        entry("dev/null", tarfile.CHRTYPE, mode=0o666, devmajor=1, devminor=3),
        entry("dev/sda", tarfile.BLKTYPE, mode=0o660, devmajor=8, devminor=0),
        entry("dev/fifo", tarfile.FIFOTYPE, mode=0o644),
        entry("dev/null", data=b"a file where a device was\n")],
    "whiteouts.tar": [
        entry("a", tarfile.DIRTYPE, mode=0o755),
        entry("a/.wh..wh..opq"),
        entry("a/.wh.gone"),
        entry("a/.wh..wh.plnk"),
        entry(".wh.a"),
        entry("a/b/c", data=b"recreated\n")],
    "xattrs.tar": [
        entry("f", data=b"x\n", pax={"SCHILY.xattr.user.note": "hi",
                                     "SCHILY.xattr.user.overlay.opaque": "y",
                                     "SCHILY.xattr.security.capability": "\x01"}),
        entry("d", tarfile.DIRTYPE, mode=0o700,
              pax={"SCHILY.xattr.trusted.overlay.opaque": "y"})],
    "replace-kinds.tar": [
        entry("x", tarfile.DIRTYPE, mode=0o755),
        entry("x/y", data=b"1\n"),
        entry("x", data=b"a file replaces the directory\n"),
        entry("x", tarfile.SYMTYPE, link="x"),
        entry("x", tarfile.DIRTYPE, mode=0o000),
        entry("x/z", data=b"under a mode-0 directory\n")],
    "long-names.tar": [
        entry("d" * 120 + "/" + "f" * 120, data=b"long\n"),
        entry("l" * 200, tarfile.SYMTYPE, link="t" * 300)],
}
for target in ("context_tar", "layer_apply", "add_archive"):
    for name, entries in hostile.items():
        fmt = tarfile.PAX_FORMAT if name == "xattrs.tar" else tarfile.GNU_FORMAT
        write(f"{corpus}/{target}/{name}", entries, fmt)
EOF
echo "make-seeds: archive seeds written under ${corpus}"
