#!/usr/bin/env bash
# Logs bounded, nothing lost silently: with --max-log-bytes 1MiB a step printing
# 20 MiB has its output kept up to the cap, then a line saying the rest is
# dropped; the build goes on and succeeds, and the drop is counted.
source "${TEST_SRCDIR}/${TEST_WORKSPACE}/tests/lib/farm.sh"

farm_init
farm_start_scheduler --max-log-bytes 1048576
farm_start_worker w1

ctx="$FARM_DIR/ctx"
make_context "$ctx"
cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox yes line-$((6*7))-0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890 | /bin/busybox head -c 20971520; echo; echo after-the-$((40+2))"]
RUN ["/bin/busybox", "sh", "-c", "echo next step ran > /next.txt"]
DOCKERFILE

"$LONGSHORE" build --progress=plain --output "type=oci,dest=$FARM_DIR/out,tar=false" -t cap:x \
  "$ctx" >"$FARM_DIR/build.out" 2>&1 || fail "the build failed: $(tail -5 "$FARM_DIR/build.out")"
grep -q "passed the scheduler's limit of 1048576 bytes (--max-log-bytes); the rest of it is dropped" \
  "$FARM_DIR/build.out" || fail "no line says the output was cut"
bytes=$(wc -c <"$FARM_DIR/build.out")
((bytes > 900000 && bytes < 1600000)) || fail "the client printed $bytes bytes, want about 1 MiB"
! grep -q after-the-42 "$FARM_DIR/build.out" || fail "output past the cap was kept"
umoci unpack --image "$FARM_DIR/out:x" "$FARM_DIR/bundle" >/dev/null || fail "umoci unpack failed"
[[ $(cat "$FARM_DIR/bundle/rootfs/next.txt") == "next step ran" ]] || fail "the build did not go on"
dropped=$(curl -sf "http://127.0.0.1:$SCHED_METRICS_PORT/metrics" |
  awk '$1 == "longshore_scheduler_log_bytes_dropped_total" { print $2 }')
awk -v d="$dropped" 'BEGIN { exit !(d > 19000000) }' || fail "dropped bytes counted: $dropped"
# The output lives in the build's append-only log file, not in the journal.
logs=("$FARM_DIR"/scheduler/logs/*.log)
[[ -f ${logs[0]} ]] || fail "no per-build log file under $FARM_DIR/scheduler/logs"
logsize=$(stat -c %s "${logs[0]}")
((logsize > 900000 && logsize < 1200000)) || fail "the log file holds $logsize bytes, want about 1 MiB"
in_journal=$(cat "$FARM_DIR"/scheduler/journal.db* | grep -a -o 'line-42-0123456789' | wc -l || true)
((in_journal == 0)) || fail "the journal holds $in_journal lines of the step's output"
grep -q "^WARNING: output past 1048576 bytes (--max-log-bytes) is dropped" "$FARM_DIR/build.out" ||
  fail "no warning event about the cap"
echo "PASS: log cap ($bytes bytes printed, $dropped dropped)"
