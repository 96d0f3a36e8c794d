#!/usr/bin/env bash
# Dispatch at farm scale: a real longshore-scheduler on loopback, a process of
# simulated workers that finish every build the moment it is assigned, and a
# process of submitters (bench/dispatch.cc). Prints:
#   1. builds/s end to end (submitted, assigned, finished, journaled) with
#      WORKERS workers draining QUEUED queued builds;
#   2. submit-to-assign latency p50/p99 with idle workers;
#   3. the cost of one Submit at 1,000 and at BIG queued builds;
#   4. the scheduler's peak RSS with BIG builds queued (2 KB Dockerfiles).
#
#   bazel build //bench:dispatch //scheduler:longshore-scheduler
#   bash bench/dispatch.sh [--workers 100] [--queued 10000] [--big 100000]
#
# Targets (2 cores): >= 2,000 builds/s; p99 assignment < 10 ms; submit cost at
# BIG within 1.5x of its cost at 1,000; < 200 MB RSS at BIG queued.
set -euo pipefail
workers=100
queued=10000
big=100000
latency_builds=2000
while [[ $# -gt 0 ]]; do
  case "$1" in
    --workers) workers=$2; shift 2 ;;
    --queued) queued=$2; shift 2 ;;
    --big) big=$2; shift 2 ;;
    --latency-builds) latency_builds=$2; shift 2 ;;
    *) echo "unknown flag $1" >&2; exit 2 ;;
  esac
done
cd "$(dirname "$0")/.."
bin=$(bazel info bazel-bin 2>/dev/null)
sched_bin="$bin/scheduler/longshore-scheduler"
bench_bin="$bin/bench/dispatch"
for b in "$sched_bin" "$bench_bin"; do
  [[ -x "$b" ]] || { echo "missing $b: bazel build //bench:dispatch //scheduler:longshore-scheduler" >&2; exit 1; }
done

tmp=$(mktemp -d /tmp/longshore-dispatch.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_scheduler NAME: a fresh scheduler with its own state; sets sched_pid,
# addr and metrics.
start_scheduler() {
  local port mport
  port=$(free_port); mport=$(free_port)
  mkdir -p "$tmp/$1"
  "$sched_bin" --listen "127.0.0.1:$port" --metrics-listen "127.0.0.1:$mport" \
    --state-dir "$tmp/$1" --retention 0 --max-queued 0 >"$tmp/$1.log" 2>&1 &
  sched_pid=$!
  pids+=("$sched_pid")
  addr="127.0.0.1:$port"
  metrics="http://127.0.0.1:$mport/metrics"
  for _ in $(seq 100); do curl -sf "$metrics" >/dev/null && return 0; sleep 0.05; done
  echo "scheduler did not start: $(cat "$tmp/$1.log")" >&2
  exit 1
}
stop_scheduler() { kill -TERM "$sched_pid"; wait "$sched_pid" 2>/dev/null || true; }
metric() { curl -sf "$metrics" | awk -v m="$1" '$1 == m { print $2 }'; }
finished() { metric 'longshore_scheduler_builds_finished_total{result="succeeded"}'; }
now_ns() { date +%s%N; }

echo "== dispatch bench: $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"

# 1. Throughput: QUEUED builds wait, then WORKERS workers (4 slots each) drain them.
start_scheduler throughput
"$bench_bin" submit --scheduler "$addr" --count "$queued" --threads 2 >"$tmp/fill.out"
echo "queue filled: $(cat "$tmp/fill.out")"
t0=$(now_ns)
"$bench_bin" workers --scheduler "$addr" --workers "$workers" --slots 4 >"$tmp/w1.out" 2>/dev/null &
wpid=$!; pids+=("$wpid")
while :; do
  f=$(finished); f=${f%.*}
  [[ "${f:-0}" -ge "$queued" ]] && break
  sleep 0.02
done
t1=$(now_ns)
kill -TERM "$wpid"; wait "$wpid" 2>/dev/null || true
rate=$(awk -v n="$queued" -v d=$((t1 - t0)) 'BEGIN { printf "%.0f", n / (d / 1e9) }')
echo "RESULT throughput: $queued builds through $workers workers in $(awk -v d=$((t1 - t0)) 'BEGIN { printf "%.2f", d / 1e9 }') s = $rate builds/s (target >= 2000)"
stop_scheduler

# 2. Latency: idle workers, builds submitted one at a time.
start_scheduler latency
"$bench_bin" workers --scheduler "$addr" --workers "$workers" --slots 4 >"$tmp/w2.out" 2>/dev/null &
wpid=$!; pids+=("$wpid")
sleep 1
"$bench_bin" submit --scheduler "$addr" --count "$latency_builds" --stamp >"$tmp/lat.out"
while :; do f=$(finished); f=${f%.*}; [[ "${f:-0}" -ge "$latency_builds" ]] && break; sleep 0.02; done
kill -TERM "$wpid"; wait "$wpid" 2>/dev/null || true
echo "RESULT latency: $(grep assign_latency "$tmp/w2.out") (target p99 < 10 ms)"
stop_scheduler

# 3 and 4. Submit cost at 1,000 and at BIG queued; RSS at BIG. No workers.
start_scheduler cost
"$bench_bin" submit --scheduler "$addr" --count 1000 --threads 2 >/dev/null
"$bench_bin" submit --scheduler "$addr" --count 1000 --threads 1 --first_index 1000 >"$tmp/c1.out"
echo "RESULT submit at 1000 queued: $(cat "$tmp/c1.out")"
"$bench_bin" submit --scheduler "$addr" --count $((big - 2000)) --threads 2 --first_index 2000 >"$tmp/fill2.out"
echo "queue filled to $big: $(cat "$tmp/fill2.out")"
"$bench_bin" submit --scheduler "$addr" --count 1000 --threads 1 --first_index "$big" >"$tmp/c2.out"
echo "RESULT submit at $big queued: $(cat "$tmp/c2.out")"
c1=$(grep -o 'p50=[0-9.]*' "$tmp/c1.out" | cut -d= -f2)
c2=$(grep -o 'p50=[0-9.]*' "$tmp/c2.out" | cut -d= -f2)
echo "RESULT submit cost ratio (p50 at $big / p50 at 1000): $(awk -v a="$c1" -v b="$c2" 'BEGIN { printf "%.2fx", b / a }') (target <= 1.5x)"
depth=$(metric longshore_scheduler_queue_depth)
hwm=$(awk '/VmHWM/ { print $2 }' "/proc/$sched_pid/status")
echo "RESULT scheduler peak RSS with ${depth%.*} queued: $((hwm / 1024)) MB (target < 200 MB)"
stop_scheduler
