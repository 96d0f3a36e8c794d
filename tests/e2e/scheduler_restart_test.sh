#!/usr/bin/env bash
# The queue is durable and clients follow builds across a scheduler restart: a
# build submitted while no worker is connected survives the scheduler being
# stopped and started again; the client, still waiting, reconnects and sees it
# through; a worker that was running when the scheduler went away reconnects.
source "${TEST_SRCDIR}/${TEST_WORKSPACE}/tests/lib/farm.sh"

farm_init
farm_start_scheduler
sched_pid=${FARM_PIDS[-1]}

ctx="$FARM_DIR/ctx"
make_context "$ctx"
printf 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "true"]\n' >"$ctx/Dockerfile"

# Submitted with no worker: it waits in the queue.
"$LONGSHORE" build --progress=plain --output "type=oci,dest=$FARM_DIR/out.tar" "$ctx" \
  >"$FARM_DIR/client.log" 2>&1 &
client=$!
for _ in $(seq 100); do
  "$LONGSHORE" builds 2>/dev/null | grep -q ' queued ' && break
  sleep 0.1
done
"$LONGSHORE" builds | grep -q ' queued ' || fail "the build was not queued"

# Restart the scheduler on the same port and state dir.
kill -TERM "$sched_pid"
wait "$sched_pid" 2>/dev/null || true
"$FARM_DIR/bin/longshore-scheduler" --listen "127.0.0.1:$SCHED_PORT" \
  --metrics-listen "127.0.0.1:$SCHED_METRICS_PORT" \
  --state-dir "$FARM_DIR/scheduler" >>"$FARM_DIR/scheduler.log" 2>&1 &
FARM_PIDS+=($!)
sched_pid=$!
wait_for_port "$SCHED_PORT" "restarted scheduler"
"$LONGSHORE" builds | grep -q ' queued ' || fail "the queued build did not survive the restart"

# A worker arrives; the waiting client gets its result.
farm_start_worker w1
rc=0
wait "$client" || rc=$?
[[ $rc -eq 0 ]] || { cat "$FARM_DIR/client.log" >&2; fail "the client exited $rc"; }
grep -q 'building on worker w1' "$FARM_DIR/client.log" || fail "client did not follow the build"
# Listed to a file: `tar | grep -q` under pipefail fails when grep exits early.
tar -tf "$FARM_DIR/out.tar" >"$FARM_DIR/out.list"
grep -q '^index.json$' "$FARM_DIR/out.list" || fail "output missing after the restart"

# The worker reconnects when the scheduler restarts under it.
kill -TERM "$sched_pid"
wait "$sched_pid" 2>/dev/null || true
"$FARM_DIR/bin/longshore-scheduler" --listen "127.0.0.1:$SCHED_PORT" \
  --metrics-listen "127.0.0.1:$SCHED_METRICS_PORT" \
  --state-dir "$FARM_DIR/scheduler" >>"$FARM_DIR/scheduler.log" 2>&1 &
FARM_PIDS+=($!)
wait_for_port "$SCHED_PORT" "restarted scheduler"
for _ in $(seq 100); do
  "$LONGSHORE" workers 2>/dev/null | grep -q '^w1 .*connected' && break
  sleep 0.1
done
"$LONGSHORE" workers | grep -q '^w1 .*connected' || fail "w1 did not reconnect"
"$LONGSHORE" build --progress=plain "$ctx" 2>"$FARM_DIR/again.log" ||
  { cat "$FARM_DIR/again.log" >&2; fail "build after the reconnect failed"; }

# Retention: restarted with --retention 1s, the scheduler removes at start the
# builds that finished more than a second ago, with their outputs, and the
# contexts no build uses any more.
finished=$("$LONGSHORE" builds | grep -c ' succeeded ' || true)
[[ $finished -ge 2 ]] || fail "expected at least 2 finished builds, listed $finished"
ls "$FARM_DIR/scheduler/outputs" | grep -q . || fail "no stored outputs before the retention sweep"
sleep 1.5
pkill -TERM -f "longshore-scheduler --listen 127.0.0.1:$SCHED_PORT " || true
for _ in $(seq 50); do
  pgrep -f "longshore-scheduler --listen 127.0.0.1:$SCHED_PORT " >/dev/null || break
  sleep 0.1
done
"$FARM_DIR/bin/longshore-scheduler" --listen "127.0.0.1:$SCHED_PORT" \
  --metrics-listen "127.0.0.1:$SCHED_METRICS_PORT" --retention 1s \
  --state-dir "$FARM_DIR/scheduler" >>"$FARM_DIR/scheduler.log" 2>&1 &
FARM_PIDS+=($!)
wait_for_port "$SCHED_PORT" "scheduler restarted with --retention 1s"
# The first sweep runs beside the server's start.
for _ in $(seq 50); do
  grep -q "retention: removed" "$FARM_DIR/scheduler.log" && break
  sleep 0.1
done
[[ $("$LONGSHORE" builds | tail -n +2 | wc -l) -eq 0 ]] ||
  fail "finished builds survived the retention: $("$LONGSHORE" builds)"
! ls "$FARM_DIR/scheduler/outputs" | grep -q . || fail "outputs survived the retention"
! ls "$FARM_DIR/scheduler/contexts/sha256" | grep -q . || fail "contexts survived the retention"
grep -q "retention: removed $finished builds finished more than 1s ago" "$FARM_DIR/scheduler.log" ||
  fail "the scheduler did not log the retention sweep"
echo "PASS: scheduler restart"
