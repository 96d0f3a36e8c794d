#!/usr/bin/env bash
# The hello-world-flask tutorial end to end: a registry, a scheduler and two
# rootless workers sharing a cache repository on 127.0.0.1. Longshore builds
# the Python base (FROM scratch, ADD of the Debian rootfs tar that
# examples/hello-world-flask/base/make-base.sh makes) and pushes it, builds the
# app FROM it with -t and --push, and podman pulls and runs what was pushed:
# GET / answers with the greeting and the container's host name. Then the
# lesson of the classic Dockerfile order: after an edit of app.py every step up
# to `COPY . .` is cached; after an edit of requirements.txt the pip install
# runs again (and finds Flask already satisfied, without PyPI).
source "${TEST_SRCDIR}/${TEST_WORKSPACE}/tests/lib/farm.sh"
source "${TEST_SRCDIR}/${TEST_WORKSPACE}/tests/lib/registry.sh"

BASE_TAR=${LONGSHORE_PYTHON_BASE:-/var/cache/longshore/python-base.tar}
[[ -s "$BASE_TAR" ]] || fail "the Python base rootfs $BASE_TAR is missing: make it with" \
  "'sudo examples/hello-world-flask/base/make-base.sh $BASE_TAR' (ops/bootstrap.sh runs it; it needs a Debian mirror)"

farm_init
need podman
need curl
[[ -x /usr/sbin/runc ]] || fail "/usr/sbin/runc is missing: run ops/bootstrap.sh (package: runc)"

# podman with its own storage in the test's dir, through runc (crun refuses
# hybrid cgroup layouts) and with limits under this machine's hard limits.
PODMAN=(podman --root "$FARM_DIR/podman/root" --runroot "$FARM_DIR/podman/run"
  --runtime /usr/sbin/runc --cgroup-manager cgroupfs)
podman_cleanup() {
  set +e
  "${PODMAN[@]}" rm -f -t 0 -a >/dev/null 2>&1
  "${PODMAN[@]}" rmi -a -f >/dev/null 2>&1
  # Anything of podman's storage still mounted, before the farm removes the dir.
  grep -o "$FARM_DIR/podman[^ ]*" /proc/mounts 2>/dev/null | sort -r | xargs -r -n1 umount -l 2>/dev/null
  return 0
}
trap 'rc=$?; podman_cleanup; (exit $rc); farm_cleanup' EXIT

registry_start
farm_start_scheduler
# Steps get no network: pip3 must find Flask in the base, not on PyPI.
farm_start_worker w1 --cache-repo "$REGISTRY/cache/layers" --network-default none
farm_start_worker w2 --cache-repo "$REGISTRY/cache/layers" --network-default none

example="${TEST_SRCDIR}/${TEST_WORKSPACE}/examples/hello-world-flask"
[[ -f "$example/Dockerfile" ]] || fail "examples/hello-world-flask is not in the test's data"

build() { # build NAME ARGS... : a build whose plain progress is $FARM_DIR/NAME.log
  local name=$1 rc=0
  shift
  "$LONGSHORE" build --progress=plain "$@" 2>"$FARM_DIR/$name.log" || rc=$?
  [[ $rc -eq 0 ]] || { tail -n 60 "$FARM_DIR/$name.log" >&2; fail "build $name exited $rc"; }
}

# step_state LOG PREFIX: CACHED or RAN for the step whose instruction starts
# with PREFIX ("#3 [2/7] RUN pip3 ..." then "#3 CACHED" or "#3 DONE 1.2s").
step_state() {
  awk -v p="$2" '
    !n && /^#[0-9]+ \[[^]]*\] / {
      label = $0; sub(/^#[0-9]+ \[[^]]*\] /, "", label)
      if (index(label, p) == 1) { n = substr($1, 2) }
    }
    n && $1 == "#" n && $2 == "CACHED" { state = "CACHED" }
    n && $1 == "#" n && $2 == "DONE" && state == "" { state = "RAN" }
    END { print (n ? (state == "" ? "UNFINISHED" : state) : "MISSING") }' "$1"
}

expect_step() { # expect_step LOG PREFIX STATE
  local got
  got=$(step_state "$1" "$2")
  [[ $got == "$3" ]] || { cat "$1" >&2; fail "$(basename "$1"): step '$2' is $got, want $3"; }
}

# 1. The base image: Debian's python3, Flask 2.2.2 and pip, pushed.
basectx="$FARM_DIR/base"
mkdir -p "$basectx"
cp -L "$example/base/Dockerfile" "$basectx/Dockerfile"
ln "$BASE_TAR" "$basectx/rootfs.tar" 2>/dev/null || cp "$BASE_TAR" "$basectx/rootfs.tar"
BASE="$REGISTRY/python-base:3.11"
build base -t "$BASE" --push "$basectx"
expect_step "$FARM_DIR/base.log" "ADD rootfs.tar /" RAN

# 2. The app, as the tutorial builds it, FROM that base and without apt-get
# (no Debian mirror in tests).
app="$FARM_DIR/app"
cp -rL "$example" "$app"
chmod -R u+w "$app"
IMAGE="$REGISTRY/hello-flask:1"
ARGS=(--build-arg "BASE=$BASE" --build-arg INSTALL_PROCPS=0)
"$LONGSHORE" drain w2 >/dev/null
build app "${ARGS[@]}" -t "$IMAGE" --push --iidfile "$FARM_DIR/app.iid" "$app"
grep -q 'building on worker w1' "$FARM_DIR/app.log" || fail "the app build did not go to w1"
"$LONGSHORE" undrain w2 >/dev/null
grep -q "Requirement already satisfied: Flask==2.2.2" "$FARM_DIR/app.log" ||
  { cat "$FARM_DIR/app.log" >&2; fail "pip3 did not find Flask 2.2.2 in the base"; }
# The base is shown by the name the build arg gave it, as BuildKit shows it.
grep -q "^#1 \[1/6\] FROM $BASE\$" "$FARM_DIR/app.log" ||
  { cat "$FARM_DIR/app.log" >&2; fail "the FROM step does not name $BASE"; }

# 3. podman pulls what was pushed and runs it; GET / greets with its host name.
"${PODMAN[@]}" pull -q --tls-verify=false "$IMAGE" >"$FARM_DIR/pull.log" 2>&1 ||
  { cat "$FARM_DIR/pull.log" >&2; fail "podman could not pull $IMAGE"; }
port=$(free_port)
cid=$("${PODMAN[@]}" run -d --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 \
  -p "127.0.0.1:$port:5000" "$IMAGE" 2>"$FARM_DIR/run.log") ||
  { cat "$FARM_DIR/run.log" >&2; fail "podman run $IMAGE failed"; }
greeting=""
for _ in $(seq 100); do
  greeting=$(curl -s --max-time 2 "http://127.0.0.1:$port/" || true)
  [[ -n $greeting ]] && break
  sleep 0.2
done
[[ -n $greeting ]] || { "${PODMAN[@]}" logs "$cid" >&2; fail "no answer on 127.0.0.1:$port"; }
hostname=$("${PODMAN[@]}" inspect --format '{{.Config.Hostname}}' "$cid")
[[ -n $hostname ]] || fail "podman inspect gave no host name"
[[ $greeting == "Hello, my first docker images! $hostname" ]] ||
  fail "GET / answered '$greeting', want 'Hello, my first docker images! $hostname'"
echo "container $hostname answered: $greeting"
"${PODMAN[@]}" rm -f -t 0 "$cid" >/dev/null

# 4. An edit of app.py: every step up to COPY . . comes from the cache, on
# the other worker too (w1 built the app; w2 reads the shared cache repository).
"$LONGSHORE" drain w1 >/dev/null
echo "# edited" >>"$app/app.py"
build edit-app "${ARGS[@]}" -t "$REGISTRY/hello-flask:2" --push "$app"
grep -q 'building on worker w2' "$FARM_DIR/edit-app.log" || fail "the edit-app build did not go to w2"
for step in "RUN if" "WORKDIR /app" "COPY requirements.txt" "RUN pip3 install"; do
  expect_step "$FARM_DIR/edit-app.log" "$step" CACHED
done
expect_step "$FARM_DIR/edit-app.log" "COPY . ." RAN

# 5. An edit of requirements.txt: its COPY and the install run again.
echo "# the tutorial's one dependency" >>"$app/requirements.txt"
build edit-req "${ARGS[@]}" -t "$REGISTRY/hello-flask:3" --push "$app"
for step in "RUN if" "WORKDIR /app"; do
  expect_step "$FARM_DIR/edit-req.log" "$step" CACHED
done
for step in "COPY requirements.txt" "RUN pip3 install" "COPY . ."; do
  expect_step "$FARM_DIR/edit-req.log" "$step" RAN
done
grep -q "Requirement already satisfied: Flask==2.2.2" "$FARM_DIR/edit-req.log" ||
  fail "the re-run install did not report Flask 2.2.2 satisfied"
for log in app edit-app edit-req; do
  echo "---- $log: steps"
  grep -E '^#[0-9]+ (\[|CACHED|DONE)' "$FARM_DIR/$log.log"
done
echo "PASS: tutorial"
