#!/usr/bin/env bash
# Health and readiness: /healthz and /readyz on the metrics ports, and
# grpc.health.v1 on the scheduler's gRPC port and the worker's --health-listen.
# A worker is ready only with a stream to the scheduler and a passed sandbox
# self-test: it goes unready when the scheduler stops, ready again when it
# returns, and a worker whose sandbox cannot start never becomes ready nor
# registers.
source "${TEST_SRCDIR}/${TEST_WORKSPACE}/tests/lib/farm.sh"

farm_init
need curl
[[ -x /usr/bin/python3 ]] && /usr/bin/python3 -c 'import grpc' 2>/dev/null ||
  fail "python3-grpcio is missing: run ops/bootstrap.sh (package: python3-grpcio)"
health_py="${TEST_SRCDIR}/${TEST_WORKSPACE}/tests/tools/grpc_health.py"
grpc_health() { /usr/bin/python3 "$health_py" "$@"; }

# http_code URL: the status code, 000 when nothing answers.
http_code() { curl -s -o /dev/null -w '%{http_code}' "$1" || true; }
# expect_code URL CODE: waits up to 15 s.
expect_code() {
  local got=""
  for _ in $(seq 150); do
    got=$(http_code "$1")
    [[ "$got" == "$2" ]] && return 0
    sleep 0.1
  done
  fail "$1 answered $got, want $2 ($(curl -s "$1" || true))"
}
expect_grpc() {
  local got=""
  for _ in $(seq 50); do
    got=$(grpc_health "$1" "${3:-}")
    [[ "$got" == "$2" ]] && return 0
    sleep 0.3
  done
  fail "grpc health of $1 service '${3:-}': $got, want $2"
}

farm_start_scheduler
sched_pid=${FARM_PIDS[-1]}
sched_http="http://127.0.0.1:$SCHED_METRICS_PORT"
expect_code "$sched_http/healthz" 200
expect_code "$sched_http/readyz" 200
expect_grpc "127.0.0.1:$SCHED_PORT" SERVING
expect_grpc "127.0.0.1:$SCHED_PORT" SERVING longshore.v1.BuildService
expect_grpc "127.0.0.1:$SCHED_PORT" SERVING longshore.v1.WorkerService
expect_grpc "127.0.0.1:$SCHED_PORT" NOT_FOUND no.such.Service
sched_metrics=$(curl -sf "$sched_http/metrics")
grep -q '^longshore_build_info{.*component="scheduler"' <<<"$sched_metrics" ||
  fail "the scheduler exports no longshore_build_info"
version=$("$FARM_DIR/bin/longshore-scheduler" --version)
[[ "$version" == "longshore-scheduler "* ]] || fail "--version printed '$version'"

health_port=$(free_port)
farm_start_worker w1 --health-listen "127.0.0.1:$health_port"
w_http="http://127.0.0.1:$WORKER_METRICS_PORT_w1"
expect_code "$w_http/healthz" 200
expect_code "$w_http/readyz" 200
expect_grpc "127.0.0.1:$health_port" SERVING
grep -q "sandbox self-test passed" "$FARM_DIR/worker-w1.log" ||
  fail "the worker did not log its sandbox self-test"
metrics=$(curl -sf "$w_http/metrics")
grep -q '^longshore_worker_ready 1' <<<"$metrics" || fail "longshore_worker_ready is not 1"
grep -q '^longshore_worker_sandbox_setup_seconds_count 1' <<<"$metrics" ||
  fail "the self-test's sandbox setup was not observed"

# The scheduler goes away: the worker stays alive but is not ready.
kill -TERM "$sched_pid"
expect_code "$w_http/readyz" 503
[[ "$(curl -s "$w_http/readyz")" == *"no stream to the scheduler"* ]] ||
  fail "/readyz does not say why the worker is not ready"
expect_code "$w_http/healthz" 200
expect_grpc "127.0.0.1:$health_port" NOT_SERVING
[[ "$(http_code "$sched_http/healthz")" == 000 ]] || fail "the stopped scheduler still answers"

# Back on the same ports: the worker reconnects and is ready again.
"$FARM_DIR/bin/longshore-scheduler" --listen "127.0.0.1:$SCHED_PORT" \
  --metrics-listen "127.0.0.1:$SCHED_METRICS_PORT" \
  --state-dir "$FARM_DIR/scheduler" >>"$FARM_DIR/scheduler.log" 2>&1 &
FARM_PIDS+=($!)
wait_for_port "$SCHED_PORT" scheduler
expect_code "$w_http/readyz" 200
expect_grpc "127.0.0.1:$health_port" SERVING
connects=$(curl -sf "$w_http/metrics" | awk '$1 == "longshore_worker_scheduler_connects_total" { print $2 }')
[[ "$connects" == 2 ]] || fail "longshore_worker_scheduler_connects_total is '$connects', want 2"

# A worker whose sandbox cannot start: alive, never ready, never registered.
# Its sandbox writes the seccomp program when asked and fails every step's
# setup, as one missing the kernel features would.
work="$FARM_DIR/work-broken"
mkdir -p "$work"
chown "$FARM_USER:" "$work"
cat >"$FARM_DIR/bin/broken-sandbox" <<'SH'
#!/bin/sh
if [ "$1" = --write-seccomp-bpf ]; then : >"$2"; exit 0; fi
echo "longshore-sandbox: mount(overlay): operation not permitted" >&2
exit 125
SH
chmod 0755 "$FARM_DIR/bin/broken-sandbox"
broken_port=$(free_port)
setpriv --reuid "$FARM_USER" --regid "$FARM_USER" --init-groups \
  env HOME="$work" "$FARM_DIR/bin/longshore-worker" \
  --scheduler "127.0.0.1:$SCHED_PORT" --work-dir "$work" --worker-id broken \
  --sandbox "$FARM_DIR/bin/broken-sandbox" --metrics-listen "127.0.0.1:$broken_port" \
  >"$FARM_DIR/worker-broken.log" 2>&1 &
FARM_PIDS+=($!)
broken_pid=$!
expect_code "http://127.0.0.1:$broken_port/readyz" 503
[[ "$(curl -s "http://127.0.0.1:$broken_port/readyz")" == *"self-test failed"* ]] ||
  fail "/readyz of the broken worker does not name the self-test"
sleep 1
kill -0 "$broken_pid" 2>/dev/null || fail "the broken worker exited instead of staying unready"
grep -q "registered with" "$FARM_DIR/worker-broken.log" &&
  fail "a worker that failed its self-test registered with the scheduler"
grep -q "mount(overlay): operation not permitted" "$FARM_DIR/worker-broken.log" ||
  fail "the broken worker's log does not say why its self-test failed"
echo "PASS: health"
