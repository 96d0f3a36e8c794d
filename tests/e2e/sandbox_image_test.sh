#!/usr/bin/env bash
# longshore-sandbox standalone on an OCI image layout, as a user reproducing a
# step by hand: an image built by the farm is run with `--image LAYOUT:TAG`, as
# the unprivileged user, with the same isolation as a build step; its writes go
# to a throw-away upper directory; a bad reference is a clear error.
source "${TEST_SRCDIR}/${TEST_WORKSPACE}/tests/lib/farm.sh"

farm_init
farm_start_scheduler
farm_start_worker w1

ctx="$FARM_DIR/ctx"
make_context "$ctx"
cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN mkdir -p /out && echo built-by-run > /out/marker && rm /bin/wget
DOCKERFILE
layout="$FARM_DIR/layout"
"$LONGSHORE" build -t debug/img:t1 --output "type=oci,dest=$layout,tar=false" "$ctx" \
  2>"$FARM_DIR/build.log" || { cat "$FARM_DIR/build.log" >&2; fail "build failed"; }
chmod -R a+rX "$layout"

sandbox_as_user() {
  setpriv --reuid "$FARM_USER" --regid "$FARM_USER" --init-groups \
    env HOME="$FARM_DIR/home" "$FARM_DIR/bin/longshore-sandbox" "$@"
}
mkdir -p "$FARM_DIR/home"
chown "$FARM_USER:" "$FARM_DIR/home"

out=$(sandbox_as_user --image "$layout:t1" --hostname debug -- \
  /bin/sh -c 'cat /out/marker; hostname; ls /bin/wget 2>&1; echo scratch > /new; cat /new') ||
  fail "longshore-sandbox --image failed: $out"
[[ "$out" == $'built-by-run\ndebug\nls: /bin/wget: No such file or directory\nscratch' ]] ||
  fail "unexpected output: $out"
# The layers were unpacked once into the user's cache, and the run left no upper.
[[ $(ls "$FARM_DIR/home/.cache/longshore/image-layers" | wc -l) -eq 3 ]] ||
  fail "want 3 unpacked layers: $(ls "$FARM_DIR/home/.cache/longshore/image-layers")"
ls -d /tmp/longshore-image-run-* 2>/dev/null && fail "the throw-away upper dir was left behind"
# Isolation is the build step's: no mounting.
rc=0
sandbox_as_user --image "$layout:t1" -- /bin/mount -t tmpfs none /mnt 2>/dev/null || rc=$?
[[ $rc -ne 0 ]] || fail "mount succeeded inside the sandbox"
# A reference the layout does not hold.
rc=0
err=$(sandbox_as_user --image "$layout:nope" -- /bin/true 2>&1) || rc=$?
[[ $rc -eq 125 && "$err" == *"no image named nope"* ]] || fail "bad --image: rc $rc, $err"
echo "PASS: sandbox on an OCI image layout"
