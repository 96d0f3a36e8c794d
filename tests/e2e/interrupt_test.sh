#!/usr/bin/env bash
# Ctrl-C on `longshore build`, as a CI runner or a developer sends it: before
# the build is submitted nothing reaches the farm; after, the first Ctrl-C
# cancels the build and waits for it to end; a second exits at once naming
# the build; --detach never cancels.
source "${TEST_SRCDIR}/${TEST_WORKSPACE}/tests/lib/farm.sh"

farm_init
farm_start_scheduler
farm_start_worker w1
worker_pid=${FARM_PIDS[-1]}

ctx="$FARM_DIR/ctx"
make_context "$ctx"
cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY busybox /bin/busybox
ARG CASE
RUN ["/bin/busybox", "sh", "-c", "echo started $CASE; /bin/busybox sleep 60"]
DOCKERFILE

builds_of() { "$LONGSHORE" builds | tail -n +2; }
wait_running() {  # wait_running LOG: until the step printed "started"
  for _ in $(seq 200); do
    grep -q "started" "$1" && return 0
    sleep 0.1
  done
  cat "$1" >&2
  fail "the build's step did not start"
}

# 1. Before submitting: a large context is still being packed or uploaded.
big="$FARM_DIR/big"
make_context "$big"
cp "$ctx/Dockerfile" "$big/Dockerfile"
for i in 1 2 3 4; do truncate -s 1G "$big/blob$i"; done
"$LONGSHORE" build --progress=plain --build-arg CASE=big "$big" >"$FARM_DIR/before.log" 2>&1 &
client=$!
sleep 0.5
kill -INT "$client"
rc=0
wait "$client" || rc=$?
[[ $rc -eq 130 ]] || { cat "$FARM_DIR/before.log" >&2; fail "Ctrl-C before submit: exit $rc, want 130"; }
grep -q "nothing was submitted to the farm" "$FARM_DIR/before.log" ||
  { cat "$FARM_DIR/before.log" >&2; fail "Ctrl-C before submit: no message saying nothing was submitted"; }
sleep 1
[[ -z "$(builds_of)" ]] || fail "Ctrl-C before submit left a build: $(builds_of)"
leftover=$(find "${TMPDIR:-/tmp}" -maxdepth 1 -name "longshore-context-$client-*" 2>/dev/null || true)
[[ -z "$leftover" ]] || fail "Ctrl-C before submit left the packed context: $leftover"
rm -rf "$big"

# 2. After submitting: the first Ctrl-C cancels on the farm and waits.
"$LONGSHORE" build --progress=plain --build-arg CASE=one "$ctx" >"$FARM_DIR/one.log" 2>&1 &
client=$!
wait_running "$FARM_DIR/one.log"
id=$(builds_of | awk '$2 == "running" {print $1}')
[[ -n "$id" ]] || fail "no running build: $(builds_of)"
start=$(date +%s)
kill -INT "$client"
rc=0
wait "$client" || rc=$?
took=$(($(date +%s) - start))
[[ $rc -eq 130 ]] || { cat "$FARM_DIR/one.log" >&2; fail "first Ctrl-C: exit $rc, want 130"; }
grep -q "cancelling build $id" "$FARM_DIR/one.log" || fail "first Ctrl-C: no 'cancelling build $id'"
grep -q "build $id was cancelled" "$FARM_DIR/one.log" ||
  { cat "$FARM_DIR/one.log" >&2; fail "first Ctrl-C: the client did not wait for the build to end"; }
builds_of | grep -qE "^$id +cancelled" || fail "first Ctrl-C: build not cancelled: $(builds_of)"
((took < 30)) || fail "first Ctrl-C: took ${took}s, the step was not stopped"

# 3. A second Ctrl-C exits at once, printing the build id. The worker is
# stopped for a moment so the first Ctrl-C's cancel cannot end the build
# before the second arrives; once it runs again the build ends cancelled.
"$LONGSHORE" build --progress=plain --build-arg CASE=two "$ctx" >"$FARM_DIR/two.log" 2>&1 &
client=$!
wait_running "$FARM_DIR/two.log"
id=$(builds_of | awk '$2 == "running" {print $1}')
# The worker and every process under it (it may run in a child of the process
# started), stopped in every thread before the Ctrl-C: a stop reaches a
# multi-threaded process asynchronously.
tree_of() {
  echo "$1"
  local c
  for c in $(ps -o pid= --ppid "$1"); do tree_of "$c"; done
}
worker_tree=$(tree_of "$worker_pid")
kill -STOP $worker_tree
for _ in $(seq 50); do
  stopped=1
  for p in $worker_tree; do
    for t in /proc/"$p"/task/*/stat; do
      [[ "$(awk '{print $3}' "$t" 2>/dev/null)" == T ]] || stopped=0
    done
  done
  ((stopped)) && break
  sleep 0.02
done
((stopped)) || { kill -CONT $worker_tree; fail "the worker ($worker_tree) did not stop"; }
kill -INT "$client"
for _ in $(seq 50); do grep -q "cancelling build $id" "$FARM_DIR/two.log" && break; sleep 0.1; done
grep -q "cancelling build $id" "$FARM_DIR/two.log" || { kill -CONT $worker_tree; fail "second Ctrl-C test: the first did not cancel"; }
kill -0 "$client" 2>/dev/null || { kill -CONT $worker_tree; cat "$FARM_DIR/two.log" >&2; fail "the client did not wait after the first Ctrl-C"; }
kill -INT "$client"
rc=0
wait "$client" || rc=$?
kill -CONT $worker_tree
[[ $rc -eq 130 ]] || { cat "$FARM_DIR/two.log" >&2; fail "second Ctrl-C: exit $rc, want 130"; }
grep -q "interrupted again: not waiting for build $id" "$FARM_DIR/two.log" ||
  { cat "$FARM_DIR/two.log" >&2; fail "second Ctrl-C: the build id is not printed"; }
for _ in $(seq 100); do
  builds_of | grep -qE "^$id +cancelled" && break
  sleep 0.2
done
builds_of | grep -qE "^$id +cancelled" || fail "after a double Ctrl-C the build did not end cancelled: $(builds_of)"

# 4. --detach: the client goes, the build stays.
id=$("$LONGSHORE" build --detach --build-arg CASE=three "$ctx" 2>"$FARM_DIR/three.log")
sleep 1
builds_of | grep -qE "^$id +(queued|running)" || fail "--detach: the build did not go on: $(builds_of)"
"$LONGSHORE" cancel "$id" >/dev/null
echo "PASS: Ctrl-C before and after submit, twice, and with --detach"
