#!/usr/bin/env bash
# No work redone across restarts and rollouts, through real processes:
#  1. the scheduler is SIGKILLed in the middle of a long RUN step: the worker
#     goes on, reconnects and reports the build held; the step's process runs
#     once (a marker line per execution in a cache mount) and the waiting
#     client sees the build finish;
#  2. a worker gets SIGTERM mid-build: it takes nothing new, finishes the build
#     and delivers its result, exits 0, and the build used one attempt;
#  3. a worker an operator drained stays drained across a scheduler restart.
source "${TEST_SRCDIR}/${TEST_WORKSPACE}/tests/lib/farm.sh"

farm_init
farm_start_scheduler
sched_pid=${FARM_PIDS[-1]}
farm_start_worker w1
w1_pid=${FARM_PIDS[-1]}

restart_scheduler() {
  "$FARM_DIR/bin/longshore-scheduler" --listen "127.0.0.1:$SCHED_PORT" \
    --metrics-listen "127.0.0.1:$SCHED_METRICS_PORT" \
    --state-dir "$FARM_DIR/scheduler" "$@" >>"$FARM_DIR/scheduler.log" 2>&1 &
  FARM_PIDS+=($!)
  sched_pid=$!
  wait_for_port "$SCHED_PORT" "restarted scheduler"
}
# wait_log FILE PATTERN WHAT: until FILE has a line matching PATTERN (20 s).
wait_log() {
  for _ in $(seq 200); do grep -q -- "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  fail "$3: no /$2/ in $(basename "$1"): $(tail -5 "$1")"
}
leases_of() { grep -c "build $1 attempt [0-9]* leased to worker" "$FARM_DIR/scheduler.log"; }

ctx="$FARM_DIR/ctx"
make_marker_context "$ctx"

# 1. SIGKILL of the scheduler during the long step.
"$LONGSHORE" build --progress=plain --build-arg CASE=kill \
  --output "type=oci,dest=$FARM_DIR/kill,tar=false" -t rollout:kill "$ctx" \
  >"$FARM_DIR/kill.out" 2>&1 &
client=$!
wait_log "$FARM_DIR/kill.out" 'long step' "the long step did not start"
build=$(awk '$2 == "running" { print $1 }' <("$LONGSHORE" builds))
[[ -n "$build" ]] || fail "no running build: $("$LONGSHORE" builds)"
kill -KILL "$sched_pid"
wait "$sched_pid" 2>/dev/null || true
sleep 1
restart_scheduler
rc=0
wait "$client" || rc=$?
[[ $rc -eq 0 ]] || fail "the client exited $rc across the scheduler's SIGKILL: $(tail -20 "$FARM_DIR/kill.out")"
grep -q "re-attached to worker w1" "$FARM_DIR/scheduler.log" ||
  fail "the restarted scheduler did not re-attach the build"
umoci unpack --image "$FARM_DIR/kill:kill" "$FARM_DIR/kill-bundle" >/dev/null || fail "umoci unpack failed"
runs=$(cat "$FARM_DIR/kill-bundle/rootfs/runs.txt")
[[ "$runs" == 1 ]] || fail "the long step ran $runs times across the scheduler's SIGKILL, want 1"
[[ $(leases_of "$build") -eq 1 ]] || fail "build $build was leased $(leases_of "$build") times"
echo "ok: scheduler SIGKILL mid-step: the step ran once, the client saw the build finish"

# 2. SIGTERM of the worker during the long step.
"$LONGSHORE" build --progress=plain --build-arg CASE=term \
  --output "type=oci,dest=$FARM_DIR/term,tar=false" -t rollout:term "$ctx" \
  >"$FARM_DIR/term.out" 2>&1 &
client=$!
wait_log "$FARM_DIR/term.out" 'long step' "the long step did not start"
build=$(awk '$2 == "running" { print $1 }' <("$LONGSHORE" builds))
kill -TERM "$w1_pid"
wait_log "$FARM_DIR/scheduler.log" "worker w1 is draining" "the scheduler was not told of the drain"
# While it drains it takes nothing new: another build waits queued.
"$LONGSHORE" build --progress=plain --build-arg CASE=later "$ctx" >"$FARM_DIR/later.out" 2>&1 &
later=$!
rc=0
wait "$client" || rc=$?
[[ $rc -eq 0 ]] || fail "the build failed across the worker's SIGTERM: $(tail -20 "$FARM_DIR/term.out")"
wrc=0
wait "$w1_pid" || wrc=$?
[[ $wrc -eq 0 ]] || fail "the drained worker exited $wrc, want 0: $(tail -5 "$FARM_DIR/worker-w1.log")"
[[ $(leases_of "$build") -eq 1 ]] || fail "build $build used $(leases_of "$build") attempts across the drain"
umoci unpack --image "$FARM_DIR/term:term" "$FARM_DIR/term-bundle" >/dev/null || fail "umoci unpack failed"
[[ $(cat "$FARM_DIR/term-bundle/rootfs/runs.txt") == 1 ]] || fail "the step ran more than once"
"$LONGSHORE" builds | grep -q ' queued ' || fail "the build submitted during the drain did not wait: $("$LONGSHORE" builds)"
echo "ok: worker SIGTERM mid-build: finished on it, exit 0, one attempt"

# 3. A drained worker stays drained across a scheduler restart. w2 takes the
# waiting build; w3 is drained by the operator.
farm_start_worker w2
wait "$later" || fail "the build queued during the drain failed: $(tail -20 "$FARM_DIR/later.out")"
farm_start_worker w3
"$LONGSHORE" drain w3 >/dev/null
kill -TERM "$sched_pid"
wait "$sched_pid" 2>/dev/null || true
restart_scheduler
for _ in $(seq 100); do
  "$LONGSHORE" workers 2>/dev/null | grep -q '^w3 .*connected' && break
  sleep 0.1
done
"$LONGSHORE" workers | grep '^w3 ' | grep -q 'draining' ||
  fail "w3 is not draining after the restart: $("$LONGSHORE" workers)"
"$LONGSHORE" workers | grep '^w2 ' | grep -vq 'draining' || fail "w2 should not be draining"
echo "PASS: rollout"
