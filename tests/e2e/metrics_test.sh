#!/usr/bin/env bash
# Metrics through a real Prometheus: it scrapes the scheduler and a worker while a
# build runs twice (the second time from the cache), and its query API then shows
# the finished builds, the executed and cached steps, and the connected worker.
# The repository's rules file must load.
source "${TEST_SRCDIR}/${TEST_WORKSPACE}/tests/lib/farm.sh"

farm_init
need prometheus
need promtool prometheus
need curl
farm_start_scheduler
farm_start_worker w1

rules="${TEST_SRCDIR}/${TEST_WORKSPACE}/ops/prometheus/longshore-rules.yml"
[[ -f "$rules" ]] || fail "missing $rules (is //ops:prometheus_config in the test's data?)"
promtool check rules "$rules" >/dev/null || fail "ops/prometheus/longshore-rules.yml does not load"
cp "$rules" "$FARM_DIR/longshore-rules.yml"

prom_port=$(free_port)
cat >"$FARM_DIR/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
rule_files: ["longshore-rules.yml"]
scrape_configs:
  - job_name: longshore-scheduler
    static_configs: [{targets: ["127.0.0.1:$SCHED_METRICS_PORT"]}]
  - job_name: longshore-worker
    static_configs: [{targets: ["127.0.0.1:$WORKER_METRICS_PORT_w1"]}]
YAML
prometheus --config.file="$FARM_DIR/prometheus.yml" --storage.tsdb.path="$FARM_DIR/tsdb" \
  --web.listen-address="127.0.0.1:$prom_port" >"$FARM_DIR/prometheus.log" 2>&1 &
FARM_PIDS+=($!)
wait_for_port "$prom_port" prometheus

ctx="$FARM_DIR/ctx"
make_context "$ctx"
cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "true"]
DOCKERFILE
for i in 1 2; do
  "$LONGSHORE" build --progress=plain "$ctx" 2>"$FARM_DIR/build$i.log" ||
    { cat "$FARM_DIR/build$i.log" >&2; fail "build $i failed"; }
done

# query EXPR: the first sample's value, or "" when none.
query() {
  { curl -sf --get "http://127.0.0.1:$prom_port/api/v1/query" --data-urlencode "query=$1" |
    jq -r '.data.result[0].value[1] // ""'; } || true
}
# expect EXPR VALUE: waits (scrapes are 1s apart) until EXPR equals VALUE.
expect() {
  local got=""
  for _ in $(seq 60); do
    got=$(query "$1")
    [[ "$got" == "$2" ]] && return 0
    sleep 0.5
  done
  fail "Prometheus: $1 = '$got', want $2"
}
expect 'sum(longshore_scheduler_builds_finished_total{result="succeeded"})' 2
expect 'sum(longshore_scheduler_builds_submitted_total)' 2
expect 'longshore_scheduler_queue_depth' 0
expect 'sum(longshore_scheduler_workers)' 1
expect 'sum(longshore_worker_steps_total{cached="false"})' 2
expect 'sum(longshore_worker_steps_total{cached="true"})' 2
expect 'sum(longshore_worker_builds_total{result="succeeded"})' 2
expect 'longshore_worker_scheduler_connected' 1
expect 'sum(longshore_worker_step_duration_seconds_count{kind="run"})' 1
echo "PASS: metrics"
