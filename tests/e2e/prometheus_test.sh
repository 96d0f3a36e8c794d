#!/usr/bin/env bash
# The operators' view through a real Prometheus: Debian's prometheus scrapes a
# scheduler and two workers (one pool) every second while builds run: one
# executed, the same again from the cache, another executed, one that fails.
# Then every PromQL expression of ops/prometheus/longshore-rules.yml and of the
# Grafana dashboard ops/grafana/longshore.json (tests/tools/promql_exprs.py
# lists them) runs through Prometheus's HTTP API; any error or empty answer
# fails the test. The new metrics are checked for the values the builds imply.
source "${TEST_SRCDIR}/${TEST_WORKSPACE}/tests/lib/farm.sh"

farm_init
need prometheus
need promtool prometheus
need curl
[[ -x /usr/bin/python3 ]] && /usr/bin/python3 -c 'import yaml' 2>/dev/null ||
  fail "python3-yaml is missing: run ops/bootstrap.sh (package: python3-yaml)"
root="${TEST_SRCDIR}/${TEST_WORKSPACE}"
rules="$root/ops/prometheus/longshore-rules.yml"
dashboard="$root/ops/grafana/longshore.json"
exprs_py="$root/tests/tools/promql_exprs.py"
for f in "$rules" "$dashboard" "$exprs_py"; do
  [[ -f "$f" ]] || fail "missing $f (is it in the test's data?)"
done

farm_start_scheduler
farm_start_worker w1 --store-budget 1073741824
farm_start_worker w2 --store-budget 1073741824

cp "$rules" "$FARM_DIR/longshore-rules.yml"
prom_port=$(free_port)
cat >"$FARM_DIR/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: ["longshore-rules.yml"]
scrape_configs:
  - job_name: longshore-scheduler
    static_configs: [{targets: ["127.0.0.1:$SCHED_METRICS_PORT"]}]
  - job_name: longshore-workers
    static_configs:
      - targets: ["127.0.0.1:$WORKER_METRICS_PORT_w1", "127.0.0.1:$WORKER_METRICS_PORT_w2"]
YAML
promtool check config "$FARM_DIR/prometheus.yml" >/dev/null || fail "the test's Prometheus config does not load"
prometheus --config.file="$FARM_DIR/prometheus.yml" --storage.tsdb.path="$FARM_DIR/tsdb" \
  --web.listen-address="127.0.0.1:$prom_port" >"$FARM_DIR/prometheus.log" 2>&1 &
FARM_PIDS+=($!)
wait_for_port "$prom_port" prometheus

# build NAME DOCKERFILE [expect-fail]
build() {
  local ctx="$FARM_DIR/ctx-$1"
  make_context "$ctx"
  printf '%s\n' "$2" >"$ctx/Dockerfile"
  if "$LONGSHORE" build --progress=plain "$ctx" >"$FARM_DIR/build-$1.log" 2>&1; then
    [[ -z "${3:-}" ]] || fail "build $1 succeeded; it should fail"
  else
    [[ -n "${3:-}" ]] || { cat "$FARM_DIR/build-$1.log" >&2; fail "build $1 failed"; }
  fi
}
build a $'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "sh", "-c", "echo a > /a"]'
build a $'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "sh", "-c", "echo a > /a"]'
build b $'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "sh", "-c", "echo b > /b"]'
build fails $'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "false"]' expect-fail

api() { curl -sf --get "http://127.0.0.1:$prom_port/api/v1/query" --data-urlencode "query=$1" || true; }
# value EXPR: the first sample's value, or "" when none.
value() { api "$1" | jq -r '.data.result[0].value[1] // ""' 2>/dev/null || true; }
# expect EXPR VALUE: waits (scrapes are 1s apart) until EXPR equals VALUE.
expect() {
  local got=""
  for _ in $(seq 60); do
    got=$(value "$1")
    [[ "$got" == "$2" ]] && return 0
    sleep 0.5
  done
  fail "Prometheus: $1 = '$got', want $2"
}
expect 'sum(longshore_scheduler_builds_finished_total{result="succeeded"})' 3
expect 'sum(longshore_scheduler_builds_finished_total{result="failed"})' 1
expect 'sum(longshore_worker_builds_total)' 4
expect 'count(longshore_worker_ready == 1)' 2
expect 'count(longshore_build_info{component="worker"})' 2
expect 'count(longshore_build_info{component="scheduler"})' 1
# The cached build: its COPY and RUN were local cache hits; every other
# filesystem step a miss (no remote tier is configured, so none is asked).
expect 'sum(longshore_worker_cache_lookups_total{tier="local", result="hit"}) >= bool 2' 1
expect 'sum(longshore_worker_cache_lookups_total{tier="remote"})' 0
# Three RUN steps executed, with the default network (slirp4netns); each
# sandbox's setup observed, as well as each worker's self-test.
expect 'sum(longshore_worker_run_steps_total{network="default"})' 3
expect 'sum(longshore_worker_sandbox_setup_seconds_count)' 5
expect 'sum(longshore_worker_context_bytes_fetched_total) > bool 0' 1
expect 'sum(longshore_worker_commit_bytes_total) > bool 0' 1
expect 'sum(longshore_worker_commit_seconds_count) >= bool 2' 1
expect 'min(longshore_worker_store_used_bytes) >= bool 0' 1
expect 'sum(longshore_worker_store_budget_bytes)' 2147483648
expect 'sum(longshore_worker_slots{state="free"})' 2
# The recording rules have been evaluated (every second here).
expect 'count(longshore:build_failure_ratio:rate15m)' 1

# Every expression of the rules and the dashboard, against the live data.
exprs=$(LS_SCHEDULER_JOB=longshore-scheduler LS_POOL_JOB=longshore-workers \
  /usr/bin/python3 "$exprs_py" "$rules" "$dashboard") || fail "promql_exprs.py: $exprs"
count=0
failures=()
while IFS=$'\t' read -r name expr; do
  count=$((count + 1))
  answer=""
  for _ in $(seq 20); do
    answer=$(curl -s --get "http://127.0.0.1:$prom_port/api/v1/query" --data-urlencode "query=$expr" || true)
    [[ "$(jq -r '.status' <<<"$answer" 2>/dev/null)" == success &&
      "$(jq -r '.data.result | length' <<<"$answer")" -gt 0 ]] && break
    sleep 0.5
  done
  if [[ "$(jq -r '.status' <<<"$answer" 2>/dev/null)" != success ]]; then
    failures+=("$name: error: $(jq -r '.error // .' <<<"$answer" 2>/dev/null || echo "$answer") [$expr]")
  elif [[ "$(jq -r '.data.result | length' <<<"$answer")" -eq 0 ]]; then
    failures+=("$name: no series [$expr]")
  fi
done <<<"$exprs"
((count >= 40)) || fail "only $count expressions found in the rules and the dashboard"
if ((${#failures[@]})); then
  printf '  %s\n' "${failures[@]}" >&2
  fail "${#failures[@]} of $count expressions failed"
fi
echo "PASS: prometheus ($count expressions of the rules and the dashboard answered)"
