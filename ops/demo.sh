#!/usr/bin/env bash
# The main job end to end on one machine: a scheduler and a worker (running as the
# unprivileged user `longshore`) on 127.0.0.1, then `longshore build` of
# examples/hello, exported as an OCI image layout and unpacked with umoci.
# Run by `make demo` after the build; prints where the image went.
set -euo pipefail
cd "$(dirname "$0")/.."
BAZEL_BIN=$(bazel info bazel-bin 2>/dev/null)
DEMO=${LONGSHORE_DEMO_DIR:-/tmp/longshore-demo}
USER_NAME=${LONGSHORE_TEST_USER:-longshore}
OUT=${LONGSHORE_DEMO_OUT:-$PWD/out/hello-oci}

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

# Bazel's output tree is under /root (mode 0700); the worker's user needs its own
# copy of the binaries.
rm -rf "$DEMO"
mkdir -p "$DEMO/bin" "$DEMO/work" "$DEMO/scheduler"
chmod 0755 "$DEMO"
for b in scheduler/longshore-scheduler worker/longshore-worker \
  sandbox/longshore-sandbox client/longshore; do
  install -m 0755 "$BAZEL_BIN/$b" "$DEMO/bin/"
done
chown "$USER_NAME:" "$DEMO/work"

"$DEMO/bin/longshore-scheduler" --listen 127.0.0.1:7070 \
  --metrics-listen 127.0.0.1:9464 --state-dir "$DEMO/scheduler" \
  >"$DEMO/scheduler.log" 2>&1 &
pids+=($!)
setpriv --reuid "$USER_NAME" --regid "$USER_NAME" --init-groups \
  "$DEMO/bin/longshore-worker" --scheduler 127.0.0.1:7070 \
  --work-dir "$DEMO/work" --slots 2 --metrics-listen 127.0.0.1:9465 \
  >"$DEMO/worker.log" 2>&1 &
pids+=($!)
export LONGSHORE_SCHEDULER=127.0.0.1:7070
for _ in $(seq 100); do
  "$DEMO/bin/longshore" workers 2>/dev/null | grep -q connected && break
  sleep 0.1
done
"$DEMO/bin/longshore" workers

ctx="$DEMO/context"
cp -r examples/hello "$ctx"
cp /bin/busybox "$ctx/busybox"
echo "==> longshore build -t hello:demo $ctx"
"$DEMO/bin/longshore" build -t hello:demo --progress=plain \
  --output "type=oci,dest=$OUT,tar=false" "$ctx"

echo "==> changing app.sh and building again: the dependency layers stay cached"
echo 'echo "(edited)"' >>"$ctx/app.sh"
"$DEMO/bin/longshore" build -t hello:demo --progress=plain \
  --output "type=oci,dest=$OUT,tar=false" "$ctx"

rm -rf "$DEMO/bundle"
umoci unpack --image "$OUT:demo" "$DEMO/bundle" >/dev/null
echo
echo "Image written to $OUT (OCI image layout, tag hello:demo)."
echo "Unpacked with umoci into $DEMO/bundle; its /app:"
ls -l "$DEMO/bundle/rootfs/app"
echo "Run it: chroot $DEMO/bundle/rootfs /bin/sh /app/app.sh"
chroot "$DEMO/bundle/rootfs" /bin/env GREETING="Hello from Longshore" HOSTNAME=demo /bin/sh /app/app.sh
