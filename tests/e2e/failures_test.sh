#!/usr/bin/env bash
# Bad input and failing builds through a real farm: each fails with the step, the
# Dockerfile line and the reason, and leaves no output, mount or process behind.
source "${TEST_SRCDIR}/${TEST_WORKSPACE}/tests/lib/farm.sh"

farm_init
farm_start_scheduler
farm_start_worker w1

ctx="$FARM_DIR/ctx"
make_context "$ctx"

# expect_failure NAME PATTERN...: the build of $ctx fails, stderr matches every
# pattern, and its output was not written.
expect_failure() {
  local name=$1
  shift
  local out="$FARM_DIR/out-$name" rc=0
  "$LONGSHORE" build --progress=plain --output "type=oci,dest=$out,tar=false" \
    "$ctx" >"$FARM_DIR/$name.out" 2>"$FARM_DIR/$name.err" || rc=$?
  [[ $rc -ne 0 ]] || fail "$name: build succeeded"
  for pattern in "$@"; do
    grep -qE -- "$pattern" "$FARM_DIR/$name.err" ||
      { cat "$FARM_DIR/$name.err" >&2; fail "$name: stderr lacks /$pattern/"; }
  done
  grep "^ERROR: failed to solve" "$FARM_DIR/$name.err" || true
  [[ ! -e "$out" ]] || fail "$name: a failed build left $out behind"
  ls "$(dirname "$out")" | grep -q '^\.longshore-' && fail "$name: temporary output left behind"
  return 0
}

# A RUN that fails: exit code, step and line.
cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY busybox /bin/busybox

RUN ["/bin/busybox", "sh", "-c", "echo about to fail; exit 3"]
DOCKERFILE
expect_failure run-exit 'step 2/2' 'Dockerfile:4' 'exit code: 3'
grep -q 'about to fail' "$FARM_DIR/run-exit.err" || fail "the failing step's output was not shown"

# A Dockerfile that does not parse is refused at submit time, naming the line.
printf 'FROM scratch\nRUNN true\n' >"$ctx/Dockerfile"
expect_failure parse 'Dockerfile:2' 'unknown instruction: RUNN'
"$LONGSHORE" builds | grep -c . >"$FARM_DIR/count"
[[ $(cat "$FARM_DIR/count") == 2 ]] || fail "a Dockerfile that does not parse was queued: $("$LONGSHORE" builds)"

# A COPY source that is not in the context.
printf 'FROM scratch\nCOPY missing.txt /x\n' >"$ctx/Dockerfile"
expect_failure copy-missing 'Dockerfile:2' 'missing.txt' 'not found'

# A command that does not exist in the image.
printf 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/nope"]\n' >"$ctx/Dockerfile"
expect_failure not-found 'Dockerfile:3' 'exit code: 127'

# Cancelling a running build stops its step, and every process of it is gone.
cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox sleep 300 & /bin/busybox sleep 301"]
DOCKERFILE
"$LONGSHORE" build --progress=plain "$ctx" >"$FARM_DIR/cancel.out" 2>&1 &
client=$!
for _ in $(seq 100); do
  pgrep -f 'busybox sleep 301' >/dev/null && break
  sleep 0.1
done
pgrep -f 'busybox sleep 301' >/dev/null || fail "the step never started: $(cat "$FARM_DIR/cancel.out")"
id=$("$LONGSHORE" builds | awk '$2 == "running" {print $1}')
[[ -n "$id" ]] || fail "no running build listed"
"$LONGSHORE" cancel "$id" >/dev/null
rc=0
wait "$client" || rc=$?
[[ $rc -ne 0 ]] || fail "a cancelled build exited 0"
for _ in $(seq 50); do
  pgrep -f 'busybox sleep 30[01]' >/dev/null || break
  sleep 0.1
done
pgrep -af 'busybox sleep 30[01]' && fail "processes of the cancelled step survived"
"$LONGSHORE" builds | grep -q "^$id *cancelled" || fail "build $id not cancelled: $("$LONGSHORE" builds)"

# The worker is still healthy: a good build goes through.
printf 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "true"]\n' >"$ctx/Dockerfile"
"$LONGSHORE" build --progress=plain --output "type=oci,dest=$FARM_DIR/ok,tar=false" "$ctx" \
  2>"$FARM_DIR/ok.err" || { cat "$FARM_DIR/ok.err" >&2; fail "the worker did not survive"; }
if grep -q "$FARM_DIR" /proc/mounts; then
  fail "mounts left behind: $(grep "$FARM_DIR" /proc/mounts)"
fi
echo "PASS: failures"
