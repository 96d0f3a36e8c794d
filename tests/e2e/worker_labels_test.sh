#!/usr/bin/env bash
# --worker-label: a build runs only on a worker registered with every label it
# names (longshore-worker --labels); one no worker has waits queued while other
# builds go on, and runs once such a worker connects.
source "${TEST_SRCDIR}/${TEST_WORKSPACE}/tests/lib/farm.sh"

farm_init
farm_start_scheduler
farm_start_worker plain
farm_start_worker gpu --labels pool=gpu,zone=eu

ctx="$FARM_DIR/ctx"
make_true_context "$ctx"

# build_on NAME FLAGS...: builds $ctx with FLAGS; fails the test if it fails.
build_on() {
  local name=$1
  shift
  "$LONGSHORE" build --progress=plain "$@" "$ctx" >"$FARM_DIR/$name.out" 2>&1 ||
    fail "$name failed: $(cat "$FARM_DIR/$name.out")"
}
worker_of() {
  "$LONGSHORE" builds | awk -v id="$1" '$1 == id { print $3 }'
}
last_build() { "$LONGSHORE" builds | awk 'NR == 2 { print $1 }'; }

for i in 1 2 3; do
  build_on gpu-$i --worker-label pool=gpu
  [[ $(worker_of "$(last_build)") == gpu ]] ||
    fail "a pool=gpu build ran on $(worker_of "$(last_build)"): $("$LONGSHORE" builds)"
done
build_on both --worker-label pool=gpu --worker-label zone=eu
[[ $(worker_of "$(last_build)") == gpu ]] || fail "a pool=gpu,zone=eu build ran elsewhere"

# A label no worker has: queued, while a plain build goes through meanwhile.
LONGSHORE_SUBMITTER=ci "$LONGSHORE" build --progress=plain --worker-label pool=arm \
  "$ctx" >"$FARM_DIR/arm.out" 2>&1 &
arm=$!
for _ in $(seq 50); do
  "$LONGSHORE" builds | grep -q ' queued ' && break
  sleep 0.1
done
"$LONGSHORE" builds | grep -q ' queued ' || fail "the pool=arm build is not queued: $("$LONGSHORE" builds)"
build_on plain
"$LONGSHORE" builds | grep -q ' queued ' || fail "the pool=arm build left the queue without a matching worker"
farm_start_worker arm --labels pool=arm
wait "$arm" || fail "the pool=arm build failed: $(cat "$FARM_DIR/arm.out")"
[[ $("$LONGSHORE" builds | awk '$2 == "succeeded" && $3 == "arm"' | wc -l) -eq 1 ]] ||
  fail "the pool=arm build did not run on worker arm: $("$LONGSHORE" builds)"
# Of six builds only the unlabelled one could have run on worker plain.
[[ $("$LONGSHORE" builds | awk '$3 == "plain"' | wc -l) -le 1 ]] ||
  fail "a labelled build ran on worker plain: $("$LONGSHORE" builds)"

# Malformed labels are refused by the client, naming the flag.
rc=0
"$LONGSHORE" build --worker-label gpu "$ctx" >"$FARM_DIR/bad.out" 2>&1 || rc=$?
[[ $rc -ne 0 ]] && grep -q -- '--worker-label gpu: expected KEY=VALUE' "$FARM_DIR/bad.out" ||
  fail "a malformed --worker-label was not refused clearly: $(cat "$FARM_DIR/bad.out")"
echo "PASS: worker labels"
