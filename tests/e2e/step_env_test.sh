#!/usr/bin/env bash
# --add-host, --ulimit and --shm-size as RUN steps see them: an /etc/hosts
# entry, rlimits (bounded by the worker's --step-nofile, never raised past
# it), and the size of the /dev/shm tmpfs; a build without them sees the
# defaults; bad values are usage errors naming the flag.
source "${TEST_SRCDIR}/${TEST_WORKSPACE}/tests/lib/farm.sh"

farm_init
farm_start_scheduler
farm_start_worker w1 --step-nofile 4096

ctx="$FARM_DIR/ctx"
make_context "$ctx"
cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN (grep db.internal /etc/hosts || true) > /hosts; \
    grep "Max open files" /proc/self/limits | awk '{print $4, $5}' > /nofile; \
    grep "Max stack size" /proc/self/limits | awk '{print $4, $5}' > /stack; \
    grep " /dev/shm " /proc/mounts | grep -o "size=[0-9]*k" > /shm
DOCKERFILE

build() {  # build NAME ARGS...: the step's view lands in $FARM_DIR/NAME
  local name=$1 rc=0
  shift
  "$LONGSHORE" build --progress=plain -o "type=local,dest=$FARM_DIR/$name" "$@" "$ctx" \
    2>"$FARM_DIR/$name.log" || rc=$?
  [[ $rc -eq 0 ]] || { cat "$FARM_DIR/$name.log" >&2; fail "build $name exited $rc"; }
}

build plain
[[ ! -s "$FARM_DIR/plain/hosts" ]] || fail "db.internal in a build without --add-host"
[[ "$(cat "$FARM_DIR/plain/nofile")" == "4096 4096" ]] || fail "default nofile: $(cat "$FARM_DIR/plain/nofile")"
[[ "$(cat "$FARM_DIR/plain/shm")" == "size=65536k" ]] || fail "default /dev/shm: $(cat "$FARM_DIR/plain/shm")"

build set --add-host db.internal:10.0.0.5 --add-host=cache.internal=10.0.0.6 \
  --ulimit nofile=1024:2048 --ulimit stack=8388608:16777216 --shm-size 128m
[[ "$(cat "$FARM_DIR/set/hosts")" == $'10.0.0.5\tdb.internal' ]] ||
  fail "--add-host: /etc/hosts has '$(cat "$FARM_DIR/set/hosts")'"
[[ "$(cat "$FARM_DIR/set/nofile")" == "1024 2048" ]] || fail "--ulimit nofile: $(cat "$FARM_DIR/set/nofile")"
[[ "$(cat "$FARM_DIR/set/stack")" == "8388608 16777216" ]] || fail "--ulimit stack: $(cat "$FARM_DIR/set/stack")"
[[ "$(cat "$FARM_DIR/set/shm")" == "size=131072k" ]] || fail "--shm-size 128m: $(cat "$FARM_DIR/set/shm")"
# The steps ran again: these flags are part of a RUN step's cache key.
grep -q "CACHED" <(grep -A1 "RUN (grep" "$FARM_DIR/set.log") && fail "--add-host build reused the plain build's step"

# The worker's limit bounds the build's.
build above --ulimit nofile=100000:100000
[[ "$(cat "$FARM_DIR/above/nofile")" == "4096 4096" ]] ||
  fail "--ulimit above the worker's --step-nofile: $(cat "$FARM_DIR/above/nofile")"

for bad in "--add-host nohost" "--ulimit files=1" "--ulimit nofile=9:3" "--shm-size lots"; do
  rc=0
  # shellcheck disable=SC2086
  "$LONGSHORE" build $bad "$ctx" >"$FARM_DIR/bad.log" 2>&1 || rc=$?
  [[ $rc -eq 2 ]] && grep -q -- "${bad%% *}" "$FARM_DIR/bad.log" ||
    { cat "$FARM_DIR/bad.log" >&2; fail "$bad: exit $rc"; }
done
echo "PASS: --add-host, --ulimit and --shm-size in RUN steps"
