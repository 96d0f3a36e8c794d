#!/usr/bin/env bash
# --platform: a worker registers the platform it builds for; a build for that
# platform runs there and its image config says so; a build for a platform no
# worker has waits in the queue (and can be cancelled) rather than being
# built for the wrong one; a malformed --platform is a usage error.
source "${TEST_SRCDIR}/${TEST_WORKSPACE}/tests/lib/farm.sh"

farm_init
farm_start_scheduler
farm_start_worker w1

case $(uname -m) in
  x86_64) native=linux/amd64 other=linux/arm64 ;;
  aarch64) native=linux/arm64 other=linux/amd64 ;;
  *) fail "this test knows x86_64 and aarch64 hosts, not $(uname -m)" ;;
esac
"$LONGSHORE" workers | grep -q "^w1 .* $native " ||
  fail "w1 is not listed with platform $native: $("$LONGSHORE" workers)"

ctx="$FARM_DIR/ctx"
make_context "$ctx"
cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
ARG TARGETPLATFORM
COPY busybox /bin/busybox
RUN ["/bin/busybox", "sh", "-c", "echo $TARGETPLATFORM > /target"]
DOCKERFILE

rc=0
"$LONGSHORE" build --progress=plain --platform "$native" -t plat:1 \
  --output "type=oci,dest=$FARM_DIR/out,tar=false" "$ctx" 2>"$FARM_DIR/native.log" || rc=$?
[[ $rc -eq 0 ]] || { cat "$FARM_DIR/native.log" >&2; fail "the $native build exited $rc"; }
blob() { echo "$FARM_DIR/out/blobs/sha256/${1#sha256:}"; }
manifest=$(jq -r '.manifests[0].digest' "$FARM_DIR/out/index.json")
config=$(jq -r '.config.digest' "$(blob "$manifest")")
got="$(jq -r '.os + "/" + .architecture' "$(blob "$config")")"
[[ "$got" == "$native" ]] || fail "image config platform $got, want $native"
umoci unpack --image "$FARM_DIR/out:1" "$FARM_DIR/b" >/dev/null || fail "umoci unpack failed"
[[ "$(cat "$FARM_DIR/b/rootfs/target")" == "$native" ]] ||
  fail "TARGETPLATFORM in the step: $(cat "$FARM_DIR/b/rootfs/target")"

# Nobody builds $other: the build waits, queued, until cancelled.
"$LONGSHORE" build --progress=plain --platform "$other" "$ctx" \
  >"$FARM_DIR/other.log" 2>&1 &
client=$!
id=""
for _ in $(seq 100); do
  id=$("$LONGSHORE" builds | awk '$2 == "queued" {print $1; exit}')
  [[ -n "$id" ]] && break
  sleep 0.1
done
[[ -n "$id" ]] || { cat "$FARM_DIR/other.log" >&2; fail "the $other build was not queued"; }
sleep 1
"$LONGSHORE" builds | grep -q "^$id .*queued" || fail "the $other build left the queue"
grep -q 'building on worker' "$FARM_DIR/other.log" && fail "the $other build went to a $native worker"
"$LONGSHORE" cancel "$id" >/dev/null
rc=0
wait "$client" || rc=$?
[[ $rc -ne 0 ]] || fail "the cancelled build's client exited 0"

# A malformed platform is a usage error naming the flag.
rc=0
"$LONGSHORE" build --platform arm64 "$ctx" >"$FARM_DIR/bad.log" 2>&1 || rc=$?
[[ $rc -eq 2 ]] && grep -q -- "--platform arm64: want OS/ARCH" "$FARM_DIR/bad.log" ||
  { cat "$FARM_DIR/bad.log" >&2; fail "--platform arm64: exit $rc"; }
echo "PASS: builds go to workers of their platform"
