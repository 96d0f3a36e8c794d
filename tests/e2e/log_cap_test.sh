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
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox yes 0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789 | /bin/busybox head -c 20971520; echo; echo after-the-$((40+2))"]
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
echo "PASS: log cap ($bytes bytes printed, $dropped dropped)"
