#!/usr/bin/env bash
# The first build that goes all the way through: a scheduler and one worker (as
# an unprivileged user) on 127.0.0.1; FROM scratch, COPY busybox, RUN in the
# sandbox, CMD; exported as an OCI layout directory and checked with umoci.
source "${TEST_SRCDIR}/${TEST_WORKSPACE}/tests/lib/farm.sh"

farm_init
farm_start_scheduler
farm_start_worker w1

ctx="$FARM_DIR/ctx"
make_context "$ctx"
cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox mkdir -p /out && echo built-by-run > /out/marker"]
CMD ["/bin/busybox", "cat", "/out/marker"]
DOCKERFILE

out="$FARM_DIR/out-oci"
rc=0
"$LONGSHORE" build -t e2e/first:latest --progress=plain \
  --output "type=oci,dest=$out,tar=false" "$ctx" 2>"$FARM_DIR/build.log" || rc=$?
[[ $rc -eq 0 ]] || { cat "$FARM_DIR/build.log" >&2; fail "longshore build exited $rc"; }
cat "$FARM_DIR/build.log"

[[ -f "$out/oci-layout" ]] || fail "no oci-layout file in $out"
[[ -f "$out/index.json" ]] || fail "no index.json in $out"
ref=$(jq -r '.manifests[0].annotations["org.opencontainers.image.ref.name"]' "$out/index.json")
[[ -n "$ref" && "$ref" != null ]] || fail "index.json has no ref name: $(cat "$out/index.json")"

bundle="$FARM_DIR/bundle"
umoci unpack --image "$out:$ref" "$bundle" >"$FARM_DIR/umoci.log" 2>&1 ||
  { cat "$FARM_DIR/umoci.log" >&2; fail "umoci unpack failed"; }
marker=$(cat "$bundle/rootfs/out/marker") || fail "/out/marker missing in the unpacked image"
[[ "$marker" == "built-by-run" ]] || fail "/out/marker holds '$marker', want 'built-by-run'"
cmp -s "$bundle/rootfs/bin/busybox" /bin/busybox || fail "/bin/busybox differs from the context's"

# The config's Cmd exactly as written.
manifest=$(jq -r '.manifests[0].digest' "$out/index.json")
config=$(jq -r '.config.digest' "$out/blobs/sha256/${manifest#sha256:}")
cmd=$(jq -c '.config.Cmd' "$out/blobs/sha256/${config#sha256:}")
[[ "$cmd" == '["/bin/busybox","cat","/out/marker"]' ]] || fail "config Cmd is $cmd"
layers=$(jq '.rootfs.diff_ids | length' "$out/blobs/sha256/${config#sha256:}")
[[ "$layers" == 2 ]] || fail "want 2 layers (COPY, RUN), got $layers"

# The plain progress shows the steps, and the RUN ran on the worker.
grep -q '^#[0-9]* \[2/2\] RUN \["/bin/busybox"' "$FARM_DIR/build.log" ||
  fail "plain progress lacks the RUN step"
grep -q 'building on worker w1' "$FARM_DIR/build.log" || fail "build was not assigned to w1"

# Building again is served from the worker's cache, with the same image.
"$LONGSHORE" build --progress=plain --output "type=oci,dest=$FARM_DIR/again.tar" \
  "$ctx" 2>"$FARM_DIR/again.log" || { cat "$FARM_DIR/again.log" >&2; fail "rebuild failed"; }
[[ $(grep -c ' CACHED$' "$FARM_DIR/again.log") == 2 ]] ||
  { cat "$FARM_DIR/again.log" >&2; fail "rebuild did not report both steps CACHED"; }
# (Listed to a file first: `tar | grep -q` under pipefail fails when grep
# exits at index.json, the tar's first entry, while tar still lists the rest.)
tar -tf "$FARM_DIR/again.tar" >"$FARM_DIR/again.list"
grep -q '^index.json$' "$FARM_DIR/again.list" || fail "type=oci tar lacks index.json"

# A worker with a tiny store budget collects its layers after each build, and
# builds again from scratch (a cache record without its blob is a miss).
"$LONGSHORE" drain w1 >/dev/null
farm_start_worker w2 --store-budget 1
for i in 1 2; do
  "$LONGSHORE" build --progress=plain --output "type=oci,dest=$FARM_DIR/gc$i.tar" \
    "$ctx" 2>"$FARM_DIR/gc$i.log" || { cat "$FARM_DIR/gc$i.log" >&2; fail "gc build $i failed"; }
  grep -q 'building on worker w2' "$FARM_DIR/gc$i.log" || fail "gc build $i not on w2"
  grep -q ' CACHED$' "$FARM_DIR/gc$i.log" && fail "gc build $i used layers the budget removed"
  left=$(find "$FARM_DIR/work-w2/store/blobs" -type f | wc -l)
  [[ $left -eq 0 ]] || fail "$left blobs left in a store with a 1-byte budget"
done

# Nothing of the steps is left mounted on the machine.
if grep -q "$FARM_DIR" /proc/mounts; then
  fail "mounts left behind: $(grep "$FARM_DIR" /proc/mounts)"
fi
echo "PASS: first build through scheduler and worker"
