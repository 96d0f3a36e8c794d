#!/usr/bin/env bash
# Inputs bounded: a context over the scheduler's --max-context-bytes is refused
# before it is received, naming the limit, and nothing is queued or stored; one
# within the limit builds.
source "${TEST_SRCDIR}/${TEST_WORKSPACE}/tests/lib/farm.sh"

farm_init
farm_start_scheduler --max-context-bytes 4000000
farm_start_worker w1

small="$FARM_DIR/small"
make_true_context "$small"
big="$FARM_DIR/big"
make_true_context "$big"
head -c 6000000 /dev/urandom >"$big/blob"

rc=0
"$LONGSHORE" build --progress=plain "$big" >"$FARM_DIR/big.out" 2>&1 || rc=$?
[[ $rc -ne 0 ]] || fail "a context over --max-context-bytes was accepted"
grep -q "over the scheduler's limit of 4000000 bytes (--max-context-bytes)" "$FARM_DIR/big.out" ||
  fail "the refusal does not name the limit: $(cat "$FARM_DIR/big.out")"
[[ $("$LONGSHORE" builds | grep -c '^[0-9a-f]') -eq 0 ]] || fail "the refused build was queued"
stored=$(find "$FARM_DIR/scheduler/contexts" -type f -size +1000k 2>/dev/null | wc -l)
[[ $stored -eq 0 ]] || fail "the refused context was stored"

"$LONGSHORE" build --progress=plain "$small" >"$FARM_DIR/small.out" 2>&1 ||
  fail "a context within the limit failed: $(tail -5 "$FARM_DIR/small.out")"
echo "PASS: context limit"
