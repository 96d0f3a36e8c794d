#!/usr/bin/env bash
# Identical submissions in flight share one execution: two clients submit the
# same build (same submitter and inputs, different output paths) while the first
# is running; the step runs once (a marker line per execution in a cache mount),
# both clients see it through and get their own copy of the output. Another
# submitter's identical build is its own execution. Cancelling one merged client
# leaves the other's build running to success.
source "${TEST_SRCDIR}/${TEST_WORKSPACE}/tests/lib/farm.sh"

farm_init
farm_start_scheduler
farm_start_worker w1 --slots 2

ctx="$FARM_DIR/ctx"
make_marker_context "$ctx"

# build NAME SUBMITTER CASE: in the background, output to $FARM_DIR/NAME.tar.
pids=()
build() {
  LONGSHORE_SUBMITTER=$2 "$LONGSHORE" build --progress=plain --build-arg "CASE=$3" --build-arg NAP=4 \
    -t merge:x --output "type=oci,dest=$FARM_DIR/$1.d,tar=false" "$ctx" \
    >"$FARM_DIR/$1.out" 2>&1 &
  pids+=($!)
}
runs_in() {
  [[ -d "$FARM_DIR/$1.bundle" ]] ||
    umoci unpack --image "$FARM_DIR/$1.d:x" "$FARM_DIR/$1.bundle" >/dev/null ||
    fail "umoci could not unpack $1's output"
  cat "$FARM_DIR/$1.bundle/rootfs/runs.txt"
}

build first team-a merge
for _ in $(seq 200); do grep -q 'long step' "$FARM_DIR/first.out" 2>/dev/null && break; sleep 0.1; done
build second team-a merge
for i in "${!pids[@]}"; do
  wait "${pids[$i]}" || fail "client $i failed: $(tail -20 "$FARM_DIR"/*.out)"
done
# The same build from another submitter is a build of its own, not merged.
pids=()
build other team-b merge
wait "${pids[0]}" || fail "team-b's build failed: $(tail -20 "$FARM_DIR/other.out")"
grep -q 'sharing the execution of build' "$FARM_DIR/second.out" ||
  fail "the second client was not told it shares an execution: $(cat "$FARM_DIR/second.out")"
grep -q 'long step' "$FARM_DIR/second.out" || fail "the second client missed the step's output"
[[ $(runs_in first) == 1 && $(runs_in second) == 1 ]] ||
  fail "the step ran first: $(runs_in first), second: $(runs_in second) times; want 1 (one shared execution)"
cmp -s <(jq -S . "$FARM_DIR/first.d/index.json") <(jq -S . "$FARM_DIR/second.d/index.json") ||
  fail "the merged clients got different images"
[[ -f "$FARM_DIR/other.d/index.json" ]] || fail "team-b got no output"
curl -sf "http://127.0.0.1:$SCHED_METRICS_PORT/metrics" >"$FARM_DIR/metrics.txt" ||
  fail "the scheduler's metrics could not be read"
grep -q '^longshore_scheduler_builds_merged_total 1' "$FARM_DIR/metrics.txt" ||
  fail "the merge was not counted: $(grep merged_total "$FARM_DIR/metrics.txt")"
[[ $("$LONGSHORE" builds | grep -c succeeded) -eq 3 ]] || fail "not three successes: $("$LONGSHORE" builds)"

# Cancel one of two merged clients (its Ctrl-C: longshore cancel of its id):
# the other's build goes on to success.
pids=()
build keep team-c cancel
for _ in $(seq 200); do grep -q 'long step' "$FARM_DIR/keep.out" 2>/dev/null && break; sleep 0.1; done
build leave team-c cancel
for _ in $(seq 100); do grep -q 'sharing the execution' "$FARM_DIR/leave.out" 2>/dev/null && break; sleep 0.1; done
leave_id=$("$LONGSHORE" builds | awk 'NR == 2 { print $1 }')
"$LONGSHORE" cancel "$leave_id" | grep -q cancelled || fail "cancel of the merged build did not say cancelled"
wait "${pids[0]}" || fail "the remaining client's build failed after the other left: $(tail -20 "$FARM_DIR/keep.out")"
rc=0; wait "${pids[1]}" || rc=$?
[[ $rc -ne 0 ]] || fail "the cancelled client reported success"
echo "PASS: merge"
