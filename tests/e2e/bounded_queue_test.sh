#!/usr/bin/env bash
# A bounded queue: past --max-queued-per-submitter and --max-queued, Submit
# fails at once with RESOURCE_EXHAUSTED naming the limit and the depth, and
# nothing accepted is dropped: once a worker connects every queued build runs.
source "${TEST_SRCDIR}/${TEST_WORKSPACE}/tests/lib/farm.sh"

farm_init
farm_start_scheduler --max-queued 3 --max-queued-per-submitter 2

ctx="$FARM_DIR/ctx"
make_true_context "$ctx"

queued() { "$LONGSHORE" builds | awk '$2 == "queued"' | wc -l; }
# submit NAME SUBMITTER: a build in the background (it waits in the queue).
# Each has a build arg of its own: identical submissions would share one
# execution instead of taking a place each.
bg=()
submit() {
  LONGSHORE_SUBMITTER=$2 "$LONGSHORE" build --progress=plain --build-arg "NAME=$1" "$ctx" \
    >"$FARM_DIR/$1.out" 2>&1 &
  bg+=($!)
}
wait_queued() {
  for _ in $(seq 100); do [[ $(queued) -eq $1 ]] && return 0; sleep 0.1; done
  fail "expected $1 queued builds, have $(queued): $("$LONGSHORE" builds)"
}

# No worker yet: builds stay queued.
submit a1 team-a; wait_queued 1
submit a2 team-a; wait_queued 2

# A third from team-a is over its share.
rc=0
LONGSHORE_SUBMITTER=team-a "$LONGSHORE" build --progress=plain --build-arg NAME=a3 "$ctx" \
  >"$FARM_DIR/a3.out" 2>&1 || rc=$?
[[ $rc -ne 0 ]] || fail "a third team-a build was accepted past --max-queued-per-submitter 2"
grep -q 'RESOURCE_EXHAUSTED\|resource exhausted\|has 2 builds queued' "$FARM_DIR/a3.out" ||
  fail "the refusal does not say why: $(cat "$FARM_DIR/a3.out")"
grep -q 'submitter "team-a" has 2 builds queued and the limit per submitter is 2 (--max-queued-per-submitter)' \
  "$FARM_DIR/a3.out" || fail "the refusal does not name the limit and depth: $(cat "$FARM_DIR/a3.out")"

# team-b still has room in the queue as a whole...
submit b1 team-b; wait_queued 3
# ...until the queue as a whole is full.
rc=0
LONGSHORE_SUBMITTER=team-c "$LONGSHORE" build --progress=plain --build-arg NAME=c1 "$ctx" \
  >"$FARM_DIR/c1.out" 2>&1 || rc=$?
[[ $rc -ne 0 ]] || fail "a build was accepted past --max-queued 3"
grep -q '3 builds are queued and the limit is 3 (--max-queued)' "$FARM_DIR/c1.out" ||
  fail "the refusal does not name the limit and depth: $(cat "$FARM_DIR/c1.out")"
[[ $(queued) -eq 3 ]] || fail "a refused submit changed the queue: $("$LONGSHORE" builds)"
[[ $("$LONGSHORE" builds | grep -c '^[0-9a-f]') -eq 3 ]] ||
  fail "a refused submit left a build record: $("$LONGSHORE" builds)"
curl -sf "http://127.0.0.1:$SCHED_METRICS_PORT/metrics" >"$FARM_DIR/metrics"
grep -q 'longshore_scheduler_submits_rejected_total{reason="submitter_queue_full"} 1' "$FARM_DIR/metrics" ||
  fail "per-submitter refusal not counted: $(grep rejected "$FARM_DIR/metrics")"
grep -q 'longshore_scheduler_submits_rejected_total{reason="queue_full"} 1' "$FARM_DIR/metrics" ||
  fail "queue-full refusal not counted: $(grep rejected "$FARM_DIR/metrics")"

# Nothing accepted is lost: a worker runs all three.
farm_start_worker w1
for i in "${!bg[@]}"; do
  wait "${bg[$i]}" || fail "queued build $i failed: $(cat "$FARM_DIR"/*.out)"
done
[[ $("$LONGSHORE" builds | awk '$2 == "succeeded"' | wc -l) -eq 3 ]] ||
  fail "not every accepted build succeeded: $("$LONGSHORE" builds)"
echo "PASS: bounded queue"
