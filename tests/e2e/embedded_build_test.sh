#!/usr/bin/env bash
# `longshore build` without --scheduler: the CLI runs its own scheduler and
# worker (dropping to the unprivileged user when started as root), builds, writes
# a docker-archive and an OCI tarball, and leaves no process behind.
source "${TEST_SRCDIR}/${TEST_WORKSPACE}/tests/lib/farm.sh"

farm_init
need skopeo
unset LONGSHORE_SCHEDULER
export LONGSHORE_HOME="$FARM_DIR/home"

ctx="$FARM_DIR/ctx"
make_context "$ctx"
cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch AS base
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]

FROM base
WORKDIR /srv/app
RUN echo "built as $(id -u) in $(pwd)" > built.txt
ENV MODE=embedded
CMD ["cat", "/srv/app/built.txt"]
DOCKERFILE

rc=0
"$LONGSHORE" build -t embedded/app:v1 --progress=plain \
  --output "type=docker,dest=$FARM_DIR/app.docker.tar" \
  --output "type=oci,dest=$FARM_DIR/app.oci.tar" "$ctx" 2>"$FARM_DIR/build.log" || rc=$?
cat "$FARM_DIR/build.log"
[[ $rc -eq 0 ]] || fail "embedded build exited $rc"
grep -q 'building on worker local' "$FARM_DIR/build.log" || fail "not built by the embedded worker"

# Real peers read both outputs.
inspect=$(skopeo inspect "docker-archive:$FARM_DIR/app.docker.tar") ||
  fail "skopeo cannot read the docker archive"
echo "$inspect" | jq -e '.Env | index("MODE=embedded")' >/dev/null ||
  fail "docker archive config lacks MODE=embedded: $inspect"
mkdir "$FARM_DIR/oci"
tar -xf "$FARM_DIR/app.oci.tar" -C "$FARM_DIR/oci"
umoci unpack --image "$FARM_DIR/oci:v1" "$FARM_DIR/bundle" >/dev/null ||
  fail "umoci cannot unpack the OCI tarball"
[[ $(cat "$FARM_DIR/bundle/rootfs/srv/app/built.txt") == "built as 0 in /srv/app" ]] ||
  fail "built.txt: $(cat "$FARM_DIR/bundle/rootfs/srv/app/built.txt")"

# compression=zstd: the same image with zstd layers (same diffIDs), which skopeo
# reads; a compression it does not know is refused, naming the attribute.
"$LONGSHORE" build -t embedded/app:zstd --progress=plain \
  --output "type=oci,dest=$FARM_DIR/zstd.tar,compression=zstd" "$ctx" 2>"$FARM_DIR/zstd.log" ||
  { cat "$FARM_DIR/zstd.log" >&2; fail "compression=zstd build failed"; }
mkdir "$FARM_DIR/zstd"
tar -xf "$FARM_DIR/zstd.tar" -C "$FARM_DIR/zstd"
zm=$(jq -r '.manifests[0].digest' "$FARM_DIR/zstd/index.json")
types=$(jq -r '[.layers[].mediaType] | unique | join(",")' "$FARM_DIR/zstd/blobs/sha256/${zm#sha256:}")
[[ "$types" == "application/vnd.oci.image.layer.v1.tar+zstd" ]] || fail "zstd output has layers $types"
first=$(jq -r '.layers[0].digest' "$FARM_DIR/zstd/blobs/sha256/${zm#sha256:}")
[[ $(head -c4 "$FARM_DIR/zstd/blobs/sha256/${first#sha256:}" | od -An -tx1 | tr -d ' ') == 28b52ffd ]] ||
  fail "zstd layer does not start with zstd's magic"
skopeo copy -q "oci-archive:$FARM_DIR/zstd.tar:zstd" "oci:$FARM_DIR/zstd-copy:zstd" ||
  fail "skopeo cannot read the zstd OCI tarball"
rc=0
"$LONGSHORE" build --output "type=oci,dest=$FARM_DIR/bad.tar,compression=lz4" "$ctx" \
  2>"$FARM_DIR/bad.log" || rc=$?
[[ $rc -ne 0 ]] || fail "compression=lz4 accepted"
grep -q 'compression=lz4' "$FARM_DIR/bad.log" || fail "bad compression error does not name it"
[[ ! -e "$FARM_DIR/bad.tar" ]] || fail "a failed build wrote its output"

# This machine builds only its own platform: another one is refused up
# front rather than left waiting for a worker that will never come.
case $(uname -m) in
  x86_64) other=linux/arm64 ;;
  *) other=linux/amd64 ;;
esac
rc=0
timeout 60 "$LONGSHORE" build --platform "$other" "$ctx" 2>"$FARM_DIR/other.log" || rc=$?
[[ $rc -eq 2 ]] && grep -q -- "--platform $other: this machine builds" "$FARM_DIR/other.log" ||
  { cat "$FARM_DIR/other.log" >&2; fail "--platform $other without a farm: exit $rc"; }

# The farm went away with the command.
sleep 0.5
if pgrep -f "longshore __embedded-farm $LONGSHORE_HOME" >/dev/null; then
  fail "the embedded farm outlived the build"
fi
echo "PASS: embedded build"
