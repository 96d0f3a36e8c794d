#!/usr/bin/env bash
# The hello-world-flask tutorial on a farm, step by step (`make tutorial`): a
# registry, a scheduler and two rootless workers sharing a cache repository on
# 127.0.0.1; the Python base built from Debian's packages and pushed; the app
# built with -t and --push, pulled and run by podman, and greeted over HTTP;
# then why `COPY requirements.txt` comes before `COPY . .`. Everything it
# starts is stopped and removed on exit. Run as root after `make build`.
#
# LONGSHORE_TUTORIAL_PORT: the host port the app is published on (8000).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
BAZEL_BIN=$(bazel info bazel-bin 2>/dev/null)
APP_PORT=${LONGSHORE_TUTORIAL_PORT:-8000}
BASE_TAR=${LONGSHORE_PYTHON_BASE:-/var/cache/longshore/python-base.tar}
# The Dockerfile's `apt-get install procps` runs when the Debian mirror answers
# (RUN steps reach it through slirp4netns); LONGSHORE_TUTORIAL_PROCPS=0|1 decides.
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
if [[ -z ${LONGSHORE_TUTORIAL_PROCPS:-} ]]; then
  LONGSHORE_TUTORIAL_PROCPS=0
  curl -sfI --max-time 5 "$MIRROR/dists/bookworm/Release" >/dev/null && LONGSHORE_TUTORIAL_PROCPS=1
fi
INSTALL_PROCPS=$LONGSHORE_TUTORIAL_PROCPS

# The farm helpers the end-to-end tests use: free ports, scheduler, workers as
# the unprivileged user, and a cleanup that stops every process it started.
source tests/lib/farm.sh
source tests/lib/registry.sh

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

examples/hello-world-flask/base/make-base.sh "$BASE_TAR"
for tool in podman curl setpriv; do need "$tool"; done

FARM_DIR=$(mktemp -d /tmp/longshore-tutorial.XXXXXX)
chmod 0755 "$FARM_DIR"
mkdir -p "$FARM_DIR/bin"
for b in scheduler/longshore-scheduler worker/longshore-worker \
  sandbox/longshore-sandbox client/longshore; do
  install -m 0755 "$BAZEL_BIN/$b" "$FARM_DIR/bin/"
done
LONGSHORE="$FARM_DIR/bin/longshore"
PODMAN=(podman --root "$FARM_DIR/podman/root" --runroot "$FARM_DIR/podman/run"
  --runtime /usr/sbin/runc --cgroup-manager cgroupfs)
tutorial_cleanup() {
  local rc=$?
  set +e
  echo
  echo "==> cleaning up: container, podman storage, registry, scheduler, workers, $FARM_DIR"
  "${PODMAN[@]}" rm -f -t 0 -a >/dev/null 2>&1
  "${PODMAN[@]}" rmi -a -f >/dev/null 2>&1
  grep -o "$FARM_DIR/podman[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
  (exit $rc)
  farm_cleanup
}
trap tutorial_cleanup EXIT

say "a registry, a scheduler and two rootless workers sharing a cache repository"
registry_start
farm_start_scheduler
farm_start_worker w1 --cache-repo "$REGISTRY/cache/layers"
farm_start_worker w2 --cache-repo "$REGISTRY/cache/layers"
"$LONGSHORE" workers

say "the Python base: Debian 12's python3, Flask 2.2.2 and pip, FROM scratch + ADD rootfs.tar /"
mkdir -p "$FARM_DIR/base"
cp examples/hello-world-flask/base/Dockerfile "$FARM_DIR/base/"
ln "$BASE_TAR" "$FARM_DIR/base/rootfs.tar" 2>/dev/null || cp "$BASE_TAR" "$FARM_DIR/base/rootfs.tar"
BASE="$REGISTRY/python-base:3.11"
echo "longshore build -t $BASE --push $FARM_DIR/base"
"$LONGSHORE" build --progress=plain -t "$BASE" --push "$FARM_DIR/base"

app="$FARM_DIR/hello-world-flask"
cp -r examples/hello-world-flask "$app"
IMAGE="$REGISTRY/hello-flask:1"
ARGS=(--build-arg "BASE=$BASE" --build-arg "INSTALL_PROCPS=$INSTALL_PROCPS")
say "longshore build ${ARGS[*]} -t $IMAGE --push hello-world-flask"
cat "$app/Dockerfile"
echo
"$LONGSHORE" build --progress=plain "${ARGS[@]}" -t "$IMAGE" --push "$app" 2>&1 |
  tee "$FARM_DIR/app.log"

say "podman pull $IMAGE; podman run -d -p $APP_PORT:5000 $IMAGE"
"${PODMAN[@]}" pull -q --tls-verify=false "$IMAGE"
cid=$("${PODMAN[@]}" run -d --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 \
  -p "127.0.0.1:$APP_PORT:5000" "$IMAGE")
"${PODMAN[@]}" ps
say "curl http://127.0.0.1:$APP_PORT/"
greeting=""
for _ in $(seq 100); do
  greeting=$(curl -s --max-time 2 "http://127.0.0.1:$APP_PORT/" || true)
  [[ -n $greeting ]] && break
  sleep 0.2
done
[[ -n $greeting ]] || { "${PODMAN[@]}" logs "$cid"; fail "the app did not answer"; }
echo "$greeting"
echo "(the container's host name is $("${PODMAN[@]}" inspect --format '{{.Config.Hostname}}' "$cid"))"
if [[ $INSTALL_PROCPS == 1 ]]; then
  say "podman exec ${cid:0:12} ps -ef (procps, from the apt-get step)"
  "${PODMAN[@]}" exec "$cid" ps -ef
fi

summary() { # the worker, the step lines and their outcome, from a plain progress log
  grep -E '^#0 building|^#[0-9]+ (\[|CACHED|DONE)' "$1" | sed 's/^/    /'
}

say "edit app.py and build again, on the other worker: every step up to COPY . . is CACHED"
# The first build's worker is drained: the rebuild reads the shared cache.
first=$(sed -n 's/^#0 building on worker //p' "$FARM_DIR/app.log")
"$LONGSHORE" drain "$first" >/dev/null
echo "# edited" >>"$app/app.py"
"$LONGSHORE" build --progress=plain "${ARGS[@]}" -t "$REGISTRY/hello-flask:2" --push "$app" \
  2>"$FARM_DIR/edit-app.log"
summary "$FARM_DIR/edit-app.log"

say "edit requirements.txt and build again: the pip3 install runs again"
echo "# the tutorial's one dependency" >>"$app/requirements.txt"
"$LONGSHORE" build --progress=plain "${ARGS[@]}" -t "$REGISTRY/hello-flask:3" --push "$app" \
  2>"$FARM_DIR/edit-req.log"
summary "$FARM_DIR/edit-req.log"
echo
echo "Dependencies are copied and installed before the code: an edit of the code"
echo "reuses the installed layer; an edit of requirements.txt installs again."
