#!/usr/bin/env bash
# Safe defaults: without TLS the scheduler refuses a non-loopback --listen, saying
# why and how out; with --insecure it starts, warns, and exports
# longshore_scheduler_insecure 1; on loopback it starts and exports 0.
source "${TEST_SRCDIR}/${TEST_WORKSPACE}/tests/lib/farm.sh"

farm_init
sched="$FARM_DIR/bin/longshore-scheduler"
port=$(free_port)
mport=$(free_port)

rc=0
"$sched" --listen "0.0.0.0:$port" --metrics-listen "127.0.0.1:$mport" \
  --state-dir "$FARM_DIR/refused" >"$FARM_DIR/refused.log" 2>&1 || rc=$?
[[ $rc -eq 2 ]] || fail "plaintext on 0.0.0.0 exited $rc, want 2: $(cat "$FARM_DIR/refused.log")"
grep -q -- "--listen 0.0.0.0:$port is not a loopback address and the scheduler has no TLS" \
  "$FARM_DIR/refused.log" || fail "the refusal does not say why: $(cat "$FARM_DIR/refused.log")"
grep -q -- "--insecure" "$FARM_DIR/refused.log" || fail "the refusal does not name --insecure"

# expect_metric VALUE FLAGS...: the scheduler starts with FLAGS and exports
# longshore_scheduler_insecure VALUE.
expect_metric() {
  local want=$1 log="$FARM_DIR/sched-$1.log"
  shift
  "$sched" --metrics-listen "127.0.0.1:$mport" --state-dir "$FARM_DIR/state-$want" "$@" \
    >"$log" 2>&1 &
  local pid=$!
  FARM_PIDS+=($pid)
  local got=""
  for _ in $(seq 100); do
    got=$(curl -sf "http://127.0.0.1:$mport/metrics" | awk '$1 == "longshore_scheduler_insecure" { print $2 }' || true)
    [[ -n "$got" ]] && break
    sleep 0.1
  done
  [[ "$got" == "$want" ]] || fail "longshore_scheduler_insecure is '$got', want $want: $(cat "$log")"
  kill -TERM "$pid"
  wait "$pid" 2>/dev/null || true
}
expect_metric 1 --listen "0.0.0.0:$port" --insecure
grep -q -- "--insecure: serving plaintext gRPC on 0.0.0.0:$port" "$FARM_DIR/sched-1.log" ||
  fail "no warning at start: $(cat "$FARM_DIR/sched-1.log")"
expect_metric 0 --listen "127.0.0.1:$port"
echo "PASS: insecure listen"
