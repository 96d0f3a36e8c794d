#!/usr/bin/env bash
# make images, as ops/images/build-images.sh: Longshore (the CLI's embedded
# scheduler and worker) builds the scheduler and worker images from
# ops/images on the Debian base of ops/images/make-base.sh (made with
# debootstrap on first use and cached in /var/cache/longshore, as
# ops/bootstrap.sh's tutorial base is). umoci unpacks each OCI archive, and
# the binaries run from the unpacked root with the image's own libraries:
# `longshore-worker --version` and `longshore-scheduler --version`.
source "${TEST_SRCDIR}/${TEST_WORKSPACE}/tests/lib/farm.sh"

farm_init
need debootstrap
need skopeo
unset LONGSHORE_SCHEDULER
export LONGSHORE_HOME="$FARM_DIR/home"
images="${TEST_SRCDIR}/${TEST_WORKSPACE}/ops/images"
[[ -x "$images/build-images.sh" ]] || fail "ops/images/build-images.sh is missing from the test's data"
version=$(tr -d ' \n' <"${TEST_SRCDIR}/${TEST_WORKSPACE}/common/VERSION")

# The script resolves its Dockerfiles beside itself; the runfiles tree links
# them, so it runs from there with the farm's binaries.
BIN_DIR="$FARM_DIR/bin" "$images/build-images.sh" "$FARM_DIR/images" >"$FARM_DIR/images.log" 2>&1 ||
  { tail -n 40 "$FARM_DIR/images.log" >&2; fail "build-images.sh failed"; }
grep -q 'building on worker local' "$FARM_DIR/images.log" || fail "the images were not built by Longshore's embedded worker"

for name in scheduler worker; do
  tarball="$FARM_DIR/images/longshore-$name.oci.tar"
  [[ -s "$tarball" ]] || fail "no $tarball"
  mkdir "$FARM_DIR/oci-$name"
  tar -xf "$tarball" -C "$FARM_DIR/oci-$name"
  umoci unpack --image "$FARM_DIR/oci-$name:$version" "$FARM_DIR/bundle-$name" >"$FARM_DIR/umoci-$name.log" 2>&1 ||
    { cat "$FARM_DIR/umoci-$name.log" >&2; fail "umoci cannot unpack longshore-$name"; }
  rootfs="$FARM_DIR/bundle-$name/rootfs"
  # The binary runs on the image's libraries alone (chroot: nothing of this
  # machine's /usr is visible).
  out=$(chroot "$rootfs" "/usr/local/bin/longshore-$name" --version 2>&1) ||
    fail "longshore-$name --version in its image: $out"
  [[ "$out" == "longshore-$name $version (commit "*")" ]] || fail "longshore-$name --version printed '$out'"
  echo "$name image: $out"
  config=$(skopeo inspect --config "oci-archive:$tarball")
  [[ "$(jq -r '.config.Entrypoint[0]' <<<"$config")" == "/usr/local/bin/longshore-$name" ]] ||
    fail "longshore-$name's entrypoint: $(jq -c '.config.Entrypoint' <<<"$config")"
done

worker_root="$FARM_DIR/bundle-worker/rootfs"
config=$(skopeo inspect --config "oci-archive:$FARM_DIR/images/longshore-worker.oci.tar")
[[ "$(jq -r '.config.User' <<<"$config")" == "1000:1000" ]] || fail "the worker image does not run as 1000:1000"
grep -qx 'longshore:100000:65536' "$worker_root/etc/subuid" || fail "the worker image has no subuid range"
[[ -u "$worker_root/usr/bin/newuidmap" ]] || fail "newuidmap in the worker image is not setuid"
[[ -x "$worker_root/usr/bin/slirp4netns" ]] || fail "slirp4netns is missing from the worker image"
[[ -x "$worker_root/usr/local/bin/longshore-sandbox" ]] || fail "longshore-sandbox is missing from the worker image"
out=$(chroot "$worker_root" /usr/local/bin/longshore-sandbox --help 2>&1 || true)
[[ "$out" == *"--ready-fd"* ]] || fail "longshore-sandbox does not run in the worker image: $out"
echo "PASS: images"
