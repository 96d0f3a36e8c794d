#!/usr/bin/env bash
# --platform a,b --push: one build per platform, each on a worker of that
# platform (here the native one and a second worker registered for another
# platform with longshore-worker --platform), combined into one OCI index
# pushed under every tag; --metadata-file names the index. Checked with
# skopeo against a real registry.
source "${TEST_SRCDIR}/${TEST_WORKSPACE}/tests/lib/farm.sh"
source "${TEST_SRCDIR}/${TEST_WORKSPACE}/tests/lib/registry.sh"

farm_init
need skopeo
registry_start
farm_start_scheduler
case $(uname -m) in
  x86_64) native=linux/amd64 other=linux/arm64 ;;
  aarch64) native=linux/arm64 other=linux/amd64 ;;
  *) fail "this test knows x86_64 and aarch64 hosts, not $(uname -m)" ;;
esac
farm_start_worker wnative
# Registered for the other platform: its steps run natively here (a real
# one would run them under binfmt_misc emulation), enough to see placement,
# TARGETPLATFORM and the image config.
farm_start_worker wother --platform "$other"

ctx="$FARM_DIR/ctx"
make_context "$ctx"
cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
ARG TARGETPLATFORM
COPY busybox /bin/busybox
RUN ["/bin/busybox", "sh", "-c", "echo $TARGETPLATFORM > /target"]
DOCKERFILE

rc=0
"$LONGSHORE" build --progress=plain --platform "$native,$other" \
  -t "$REGISTRY/multi:1" -t "$REGISTRY/multi:latest" --push \
  --metadata-file "$FARM_DIR/md.json" "$ctx" 2>"$FARM_DIR/build.log" || rc=$?
[[ $rc -eq 0 ]] || { cat "$FARM_DIR/build.log" >&2; fail "the multi-platform build exited $rc"; }

raw=$(skopeo inspect --tls-verify=false --raw "docker://$REGISTRY/multi:1") ||
  fail "skopeo cannot read multi:1"
[[ "$(jq -r .mediaType <<<"$raw")" == "application/vnd.oci.image.index.v1+json" ]] ||
  fail "multi:1 is not an OCI index: $raw"
[[ "$(jq '.manifests | length' <<<"$raw")" -eq 2 ]] || fail "the index has not two manifests: $raw"
for p in "$native" "$other"; do
  arch=${p#linux/}
  [[ "$(jq -r --arg a "$arch" '[.manifests[] | select(.platform.os == "linux" and .platform.architecture == $a)] | length' <<<"$raw")" -eq 1 ]] ||
    fail "no $p entry in the index: $raw"
  config=$(skopeo inspect --tls-verify=false --override-os linux --override-arch "$arch" --config \
    "docker://$REGISTRY/multi:1") || fail "skopeo cannot read the $p config"
  [[ "$(jq -r .architecture <<<"$config")" == "$arch" ]] || fail "the $p image's config says $(jq -r .architecture <<<"$config")"
  skopeo copy -q --src-tls-verify=false --override-os linux --override-arch "$arch" \
    "docker://$REGISTRY/multi:1" "oci:$FARM_DIR/img-$arch:1" || fail "skopeo copy $p failed"
  umoci unpack --image "$FARM_DIR/img-$arch:1" "$FARM_DIR/b-$arch" >/dev/null || fail "umoci unpack $p failed"
  [[ "$(cat "$FARM_DIR/b-$arch/rootfs/target")" == "$p" ]] ||
    fail "TARGETPLATFORM in the $p image: $(cat "$FARM_DIR/b-$arch/rootfs/target")"
done
index_digest=$(skopeo inspect --tls-verify=false --raw "docker://$REGISTRY/multi:1" | sha256sum | cut -d' ' -f1)
latest_digest=$(skopeo inspect --tls-verify=false --raw "docker://$REGISTRY/multi:latest" | sha256sum | cut -d' ' -f1)
[[ "$index_digest" == "$latest_digest" ]] || fail "multi:latest is not the same index as multi:1"
[[ "$(jq -r '."containerimage.digest"' "$FARM_DIR/md.json")" == "sha256:$index_digest" ]] ||
  fail "--metadata-file: containerimage.digest is not the index's: $(cat "$FARM_DIR/md.json")"

# Each platform built on a worker of it.
"$LONGSHORE" builds >"$FARM_DIR/builds.txt"
[[ "$(awk '$2 == "succeeded"' "$FARM_DIR/builds.txt" | wc -l)" -eq 2 ]] || fail "not two builds: $(cat "$FARM_DIR/builds.txt")"
awk '$2 == "succeeded" {print $3}' "$FARM_DIR/builds.txt" | sort | tr '\n' ' ' | grep -qx "wnative wother " ||
  fail "the builds did not go one to each worker: $(cat "$FARM_DIR/builds.txt")"

# Several platforms make one pushed index; other outputs are refused.
rc=0
"$LONGSHORE" build --platform "$native,$other" -o "type=local,dest=$FARM_DIR/x" "$ctx" \
  >"$FARM_DIR/bad.log" 2>&1 || rc=$?
[[ $rc -eq 2 ]] && grep -q "several platforms" "$FARM_DIR/bad.log" ||
  { cat "$FARM_DIR/bad.log" >&2; fail "--platform a,b with type=local: exit $rc"; }
echo "PASS: one index of two platforms under every tag"
