#!/usr/bin/env bash
# Whole-build timeouts: the scheduler's --build-timeout stops a build that runs
# too long and fails it saying so (no step process is left behind); a build's
# own --timeout does the same; a timeout past --max-build-timeout is refused
# before anything is queued; a build within its timeout succeeds.
source "${TEST_SRCDIR}/${TEST_WORKSPACE}/tests/lib/farm.sh"

farm_init
farm_start_scheduler --build-timeout 3s --max-build-timeout 1h
farm_start_worker w1

ctx="$FARM_DIR/ctx"
make_context "$ctx"
cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY busybox /bin/busybox
ARG NAP=0
RUN ["/bin/busybox", "sh", "-c", "echo napping; /bin/busybox sleep $NAP"]
DOCKERFILE

# expect_timeout NAME PATTERN FLAGS...: the build fails within 30 s, stderr
# matching PATTERN.
expect_timeout() {
  local name=$1 pattern=$2 rc=0
  shift 2
  local start=$SECONDS
  "$LONGSHORE" build --progress=plain "$@" "$ctx" >"$FARM_DIR/$name.out" 2>&1 || rc=$?
  [[ $rc -ne 0 ]] || fail "$name: a build past its timeout succeeded"
  ((SECONDS - start < 30)) || fail "$name: took $((SECONDS - start)) s to time out"
  grep -q -- "$pattern" "$FARM_DIR/$name.out" ||
    fail "$name: the failure does not say why: $(tail -5 "$FARM_DIR/$name.out")"
}

expect_timeout default 'ran longer than its timeout of 3s (the scheduler.s --build-timeout' \
  --build-arg NAP=61
expect_timeout own 'ran longer than its timeout of 2s (longshore build --timeout)' \
  --timeout 2s --build-arg NAP=62
"$LONGSHORE" builds | awk 'NR > 1 { print $2 }' | sort | uniq -c | grep -q '2 failed' ||
  fail "the timed-out builds are not FAILED: $("$LONGSHORE" builds)"
# The stopped steps' processes are gone.
for _ in $(seq 50); do pgrep -f 'sleep 6[12]' >/dev/null || break; sleep 0.1; done
! pgrep -af 'sleep 6[12]' || fail "a timed-out step's process is still running"

rc=0
"$LONGSHORE" build --progress=plain --timeout 2h "$ctx" >"$FARM_DIR/toolong.out" 2>&1 || rc=$?
[[ $rc -ne 0 ]] || fail "a --timeout past --max-build-timeout was accepted"
grep -q 'at most 1h (the scheduler.s --max-build-timeout)' "$FARM_DIR/toolong.out" ||
  fail "the refusal does not name the limit: $(cat "$FARM_DIR/toolong.out")"
[[ $("$LONGSHORE" builds | grep -c '^[0-9a-f]') -eq 2 ]] || fail "the refused build was queued"

"$LONGSHORE" build --progress=plain --timeout 1m --build-arg NAP=4 "$ctx" \
  >"$FARM_DIR/ok.out" 2>&1 || fail "a build within its own timeout failed: $(tail -5 "$FARM_DIR/ok.out")"
echo "PASS: build timeout"
