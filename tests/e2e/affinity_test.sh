#!/usr/bin/env bash
# Cache-aware placement through real processes: a rebuild goes to the worker
# that built the same Dockerfile when it is free (its steps come from its cache),
# and to an idle cold worker at once when the warm one is busy.
source "${TEST_SRCDIR}/${TEST_WORKSPACE}/tests/lib/farm.sh"

farm_init
farm_start_scheduler
farm_start_worker w1
farm_start_worker w2

ctx="$FARM_DIR/ctx"
make_context "$ctx"
cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY busybox /bin/busybox
ARG NAP=0
RUN ["/bin/busybox", "sh", "-c", "echo slow step; /bin/busybox sleep 1"]
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox sleep $NAP"]
DOCKERFILE
other="$FARM_DIR/other"
make_context "$other"
printf 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "sh", "-c", "/bin/busybox sleep 8"]\n' \
  >"$other/Dockerfile"

newest_worker() { "$LONGSHORE" builds | awk 'NR == 2 { print $3 }'; }

# The first build goes to w2: w1 is drained meanwhile. Without affinity the
# tie between two idle workers goes to w1 (listed first).
"$LONGSHORE" drain w1 >/dev/null
"$LONGSHORE" build --progress=plain "$ctx" >"$FARM_DIR/first.out" 2>&1 ||
  fail "first build failed: $(tail -5 "$FARM_DIR/first.out")"
"$LONGSHORE" undrain w1 >/dev/null
[[ $(newest_worker) == w2 ]] || fail "the first build ran on $(newest_worker), not w2"
sleep 3  # A heartbeat carries w2's warm keys.

# Both idle: the rebuild goes to w2, and its steps come from w2's cache.
"$LONGSHORE" build --progress=plain "$ctx" >"$FARM_DIR/rebuild.out" 2>&1 ||
  fail "rebuild failed: $(tail -5 "$FARM_DIR/rebuild.out")"
[[ $(newest_worker) == w2 ]] || fail "the rebuild went to cold $(newest_worker), not warm w2"
grep -q CACHED "$FARM_DIR/rebuild.out" || fail "the rebuild on the warm worker ran every step again"
# Read whole before grep: grep -q stopping early would fail curl (pipefail).
metrics=$(curl -sf "http://127.0.0.1:$SCHED_METRICS_PORT/metrics")
grep -q 'longshore_scheduler_placements_total{reason="dockerfile"} 1' <<<"$metrics" ||
  fail "the warm placement was not counted"

# w2 busy with another build (w1 drained while it is placed): the next
# rebuild does not wait for w2.
"$LONGSHORE" drain w1 >/dev/null
"$LONGSHORE" build --progress=plain "$other" >"$FARM_DIR/busy.out" 2>&1 &
busy=$!
for _ in $(seq 100); do "$LONGSHORE" builds | grep -q ' running .*w2' && break; sleep 0.1; done
"$LONGSHORE" builds | grep -q ' running .*w2' || fail "w2 did not take the long build: $("$LONGSHORE" builds)"
"$LONGSHORE" undrain w1 >/dev/null
start=$SECONDS
"$LONGSHORE" build --progress=plain "$ctx" >"$FARM_DIR/third.out" 2>&1 ||
  fail "third build failed: $(tail -5 "$FARM_DIR/third.out")"
[[ $(newest_worker) == w1 ]] || fail "with w2 busy the rebuild ran on $(newest_worker), not idle w1"
((SECONDS - start < 6)) || fail "the rebuild waited $((SECONDS - start)) s for the busy warm worker"
wait "$busy" || fail "the long build failed"
echo "PASS: affinity"
