#!/usr/bin/env bash
# What happened to builds, read back from a real farm: `longshore logs` gives
# every byte a step wrote (compared with what the step itself captured), by
# step, stdout and stderr apart, and follows a running build to its end;
# `longshore inspect` shows submitter, worker, times, steps with durations and
# cache hits, and outputs; `longshore builds` filters by state, submitter,
# time and count, shows times and durations, and speaks JSON.
source "${TEST_SRCDIR}/${TEST_WORKSPACE}/tests/lib/farm.sh"

farm_init
farm_start_scheduler
farm_start_worker w1

ctx="$FARM_DIR/ctx"
make_context "$ctx"
cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN i=0; while [ $i -lt 500 ]; do echo "line $i $(head -c 24 /dev/urandom | od -An -tx1)"; i=$((i+1)); done | tee /captured
RUN echo "to stderr" >&2; echo "to stdout"
DOCKERFILE

LONGSHORE_SUBMITTER=alice "$LONGSHORE" build --progress=plain \
  --metadata-file "$FARM_DIR/md.json" -o "type=local,dest=$FARM_DIR/out" "$ctx" \
  2>"$FARM_DIR/build.log" || { cat "$FARM_DIR/build.log" >&2; fail "build failed"; }
id=$(jq -r '."longshore.build.id"' "$FARM_DIR/md.json")

# logs: the captured step, byte for byte.
"$LONGSHORE" inspect --format json "$id" >"$FARM_DIR/inspect.json" || fail "inspect --format json failed"
step=$(jq -r '.steps[] | select(.instruction | contains("tee /captured")) | .index' "$FARM_DIR/inspect.json")
[[ -n "$step" ]] || fail "inspect lists no tee step: $(cat "$FARM_DIR/inspect.json")"
"$LONGSHORE" logs --step "$step" "$id" >"$FARM_DIR/step.out" 2>"$FARM_DIR/step.err" || fail "logs --step failed"
cmp "$FARM_DIR/step.out" "$FARM_DIR/out/captured" ||
  fail "logs --step $step differs from what the step captured ($(wc -c <"$FARM_DIR/step.out") vs $(wc -c <"$FARM_DIR/out/captured") bytes)"
# The whole build: that step's bytes and the last step's, streams apart.
"$LONGSHORE" logs "$id" >"$FARM_DIR/all.out" 2>"$FARM_DIR/all.err" || fail "logs failed"
[[ "$(grep -c '^line ' "$FARM_DIR/all.out")" -eq 500 ]] || fail "logs: not 500 lines of the big step"
grep -qx "to stdout" "$FARM_DIR/all.out" || fail "logs: the last step's stdout is missing"
grep -qx "to stderr" "$FARM_DIR/all.err" || fail "logs: the last step's stderr is not on stderr"
grep -q "to stderr" "$FARM_DIR/all.out" && fail "logs: stderr went to stdout"

# inspect: who, where, when, what ran.
"$LONGSHORE" inspect "$id" >"$FARM_DIR/inspect.txt" || fail "inspect failed"
for want in "State: *succeeded" "Submitter: *alice" "Worker: *w1 \(attempt 1\)" \
  "Started: .*\(waited " "Finished: .*\(took " "Steps: *[0-9]+ run, 0 cached" \
  "type=local,dest=$FARM_DIR/out"; do
  grep -qE -- "$want" "$FARM_DIR/inspect.txt" || { cat "$FARM_DIR/inspect.txt" >&2; fail "inspect: no '$want'"; }
done
[[ "$(jq -r .submitter "$FARM_DIR/inspect.json")" == alice ]] || fail "inspect json: submitter"
[[ "$(jq '[.steps[] | select(.duration_ms != null)] | length' "$FARM_DIR/inspect.json")" -ge 3 ]] ||
  fail "inspect json: steps without durations"

# A rebuild by bob is all cache hits, and inspect says so.
LONGSHORE_SUBMITTER=bob "$LONGSHORE" build --progress=plain \
  --metadata-file "$FARM_DIR/md2.json" "$ctx" 2>"$FARM_DIR/build2.log" || fail "rebuild failed"
id2=$(jq -r '."longshore.build.id"' "$FARM_DIR/md2.json")
"$LONGSHORE" inspect "$id2" >"$FARM_DIR/inspect2.txt"
grep -qE "Steps: *0 run, [0-9]+ cached" "$FARM_DIR/inspect2.txt" ||
  { cat "$FARM_DIR/inspect2.txt" >&2; fail "inspect: the rebuild's cache hits are not shown"; }
grep -qE "#[0-9]+ +CACHED" "$FARM_DIR/inspect2.txt" || fail "inspect: no CACHED step"

# logs --follow: a running build, followed to its end; without --follow the
# same command returns at once with what there is so far.
cat >"$ctx/Dockerfile.slow" <<'DOCKERFILE'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "sh", "-c", "for i in 0 1 2 3 4 5 6 7 8 9; do echo tick $i; /bin/busybox sleep 0.4; done"]
DOCKERFILE
slow=$(LONGSHORE_SUBMITTER=carol "$LONGSHORE" build --detach -f "$ctx/Dockerfile.slow" "$ctx")
for _ in $(seq 100); do
  "$LONGSHORE" logs "$slow" | grep -q "tick 0" && break
  sleep 0.1
done
start=$(date +%s%N)
timeout 10 "$LONGSHORE" logs "$slow" >"$FARM_DIR/partial.out" || fail "logs without --follow did not return"
grep -q "tick 0" "$FARM_DIR/partial.out" || fail "logs of a running build: no tick 0"
grep -q "tick 9" "$FARM_DIR/partial.out" && fail "logs without --follow waited for the end"
timeout 60 "$LONGSHORE" logs --follow "$slow" >"$FARM_DIR/follow.out" || fail "logs --follow failed"
[[ "$(grep -c '^tick ' "$FARM_DIR/follow.out")" -eq 10 ]] || fail "logs --follow: $(cat "$FARM_DIR/follow.out")"

# builds: filters, times, JSON.
"$LONGSHORE" builds >"$FARM_DIR/builds.txt"
head -n1 "$FARM_DIR/builds.txt" | grep -qE "BUILD +STATE +WORKER +SUBMITTER +CREATED +DURATION" ||
  fail "builds: header $(head -n1 "$FARM_DIR/builds.txt")"
grep -qE "^$id +succeeded +w1 +alice +20[0-9-]+T[0-9:]+Z +[0-9.]+s " "$FARM_DIR/builds.txt" ||
  { cat "$FARM_DIR/builds.txt" >&2; fail "builds: no row for $id with times"; }
[[ "$("$LONGSHORE" builds --submitter bob | tail -n +2 | awk '{print $1}')" == "$id2" ]] ||
  fail "builds --submitter bob: $("$LONGSHORE" builds --submitter bob)"
[[ "$("$LONGSHORE" builds --limit 1 | tail -n +2 | wc -l)" -eq 1 ]] || fail "builds --limit 1"
[[ "$("$LONGSHORE" builds --limit 1 | tail -n +2 | awk '{print $1}')" == "$slow" ]] ||
  fail "builds --limit 1 is not the newest"
[[ "$("$LONGSHORE" builds --state failed | tail -n +2 | wc -l)" -eq 0 ]] || fail "builds --state failed lists builds"
[[ "$("$LONGSHORE" builds --state succeeded | tail -n +2 | wc -l)" -eq 3 ]] || fail "builds --state succeeded"
"$LONGSHORE" builds --format json >"$FARM_DIR/builds.json"
[[ "$(jq length "$FARM_DIR/builds.json")" -eq 3 ]] || fail "builds --format json: $(cat "$FARM_DIR/builds.json")"
[[ "$(jq -r --arg id "$id" '.[] | select(.id == $id) | .submitter' "$FARM_DIR/builds.json")" == alice ]] ||
  fail "builds json: submitter"
jq -e '.[] | select(.duration_ms == null or .duration_ms < 0)' "$FARM_DIR/builds.json" >/dev/null &&
  fail "builds json: a finished build without a duration"
sleep 2
[[ "$("$LONGSHORE" builds --since 1s | tail -n +2 | wc -l)" -eq 0 ]] || fail "builds --since 1s lists old builds"
[[ "$("$LONGSHORE" builds --since 1h | tail -n +2 | wc -l)" -eq 3 ]] || fail "builds --since 1h"
rc=0
"$LONGSHORE" builds --since yesterday >/dev/null 2>"$FARM_DIR/bad.log" || rc=$?
[[ $rc -eq 2 ]] && grep -q -- "--since yesterday" "$FARM_DIR/bad.log" || fail "builds --since yesterday: exit $rc"
echo "PASS: logs, inspect and builds"
