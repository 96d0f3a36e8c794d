#!/usr/bin/env bash
# Heartbeats reconciled with leases, both ways, through real processes: a
# simulated worker process (bench/dispatch.cc) drops every third assignment
# without a word and lists a build it holds no lease for. The scheduler queues
# the dropped builds again once the worker's heartbeats show it does not run
# them, so every build finishes; and it tells the worker to stop the unleased
# one.
source "${TEST_SRCDIR}/${TEST_WORKSPACE}/tests/lib/farm.sh"
sim=$(runfile bench/dispatch)

farm_init
farm_start_scheduler --heartbeat-interval 200ms --max-attempts 10
"$sim" workers --scheduler "127.0.0.1:$SCHED_PORT" --workers 2 --slots 2 \
  --forget_every 3 --phantom_build not-leased-anywhere >"$FARM_DIR/sim.out" 2>"$FARM_DIR/sim.log" &
sim_pid=$!
FARM_PIDS+=($sim_pid)
"$sim" submit --scheduler "127.0.0.1:$SCHED_PORT" --count 12 --threads 1 \
  >"$FARM_DIR/submit.out" || fail "submits failed: $(cat "$FARM_DIR/submit.out")"
metric() {
  curl -sf "http://127.0.0.1:$SCHED_METRICS_PORT/metrics" | awk -v m="$1" '$1 == m { print $2 }'
}
for _ in $(seq 150); do
  [[ "$(metric 'longshore_scheduler_builds_finished_total{result="succeeded"}')" == 12 ]] && break
  sleep 0.1
done
[[ "$(metric 'longshore_scheduler_builds_finished_total{result="succeeded"}')" == 12 ]] ||
  fail "not every build finished: $(curl -sf "http://127.0.0.1:$SCHED_METRICS_PORT/metrics" | grep -E 'finished|queue_depth|running|reconcil')"
lost=$(metric 'longshore_scheduler_reconciliations_total{mismatch="lease_not_running"}')
[[ "${lost%.*}" -ge 1 ]] || fail "no lease was found not running (got '${lost}')"
stray=$(metric 'longshore_scheduler_reconciliations_total{mismatch="unleased_build_stopped"}')
[[ "${stray%.*}" -ge 1 ]] || fail "the unleased build was not stopped (got '${stray}')"
kill -TERM "$sim_pid"
wait "$sim_pid" 2>/dev/null || true
read -r _ assigned _ forgotten _ cancels <"$FARM_DIR/sim.out"
[[ $forgotten -ge 1 && $cancels -ge 1 ]] ||
  fail "the simulated worker forgot $forgotten builds and got $cancels cancels"
grep -q "does not run it (its heartbeat does not list it)" "$FARM_DIR/scheduler.log" ||
  fail "the scheduler log does not say why it queued the dropped builds again"
echo "PASS: reconcile ($forgotten assignments dropped and run again, $cancels stop requests)"
