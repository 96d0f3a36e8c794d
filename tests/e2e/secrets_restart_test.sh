#!/usr/bin/env bash
# Secrets across scheduler restarts. Without --secrets-key-file a queued
# build's secret values live only in memory: after a restart the build fails
# before it runs, naming the secret and saying to resubmit. With the key,
# they are sealed in the journal and the build runs with them after the
# restart.
source "${TEST_SRCDIR}/${TEST_WORKSPACE}/tests/lib/farm.sh"

farm_init
farm_start_scheduler
sched_pid=${FARM_PIDS[-1]}

stop_scheduler() {
  kill -TERM "$sched_pid" 2>/dev/null || true
  wait "$sched_pid" 2>/dev/null || true
}
restart_scheduler() {
  stop_scheduler
  "$FARM_DIR/bin/longshore-scheduler" --listen "127.0.0.1:$SCHED_PORT" \
    --metrics-listen "127.0.0.1:$SCHED_METRICS_PORT" \
    --state-dir "$FARM_DIR/scheduler" "$@" >>"$FARM_DIR/scheduler.log" 2>&1 &
  sched_pid=$!
  FARM_PIDS+=($!)
  wait_for_port "$SCHED_PORT" "restarted scheduler"
}
wait_queued() {
  for _ in $(seq 100); do
    "$LONGSHORE" builds 2>/dev/null | grep -q ' queued ' && return 0
    sleep 0.1
  done
  fail "the build was not queued"
}

ctx="$FARM_DIR/ctx"
make_context "$ctx"
cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
ARG TRY
RUN --mount=type=secret,id=npm,required=true cat /run/secrets/npm > /got.txt
DOCKERFILE
secret="npm-$RANDOM-$RANDOM"
printf '%s' "$secret" >"$FARM_DIR/npm"

# 1. No key: the value is lost in the restart; the build fails, never runs.
"$LONGSHORE" build --progress=plain --secret "id=npm,src=$FARM_DIR/npm" --build-arg TRY=1 \
  "$ctx" >"$FARM_DIR/lost.log" 2>&1 &
client=$!
wait_queued
! grep -q -- "$secret" "$FARM_DIR/scheduler/journal.db"* || fail "the secret's value reached the journal"
restart_scheduler
farm_start_worker w1
rc=0
wait "$client" || rc=$?
[[ $rc -ne 0 ]] || fail "the build whose secret was lost succeeded: $(cat "$FARM_DIR/lost.log")"
grep -q 'secret "npm" was lost when the scheduler restarted before the build ran' "$FARM_DIR/lost.log" &&
  grep -q 'Resubmit the build' "$FARM_DIR/lost.log" ||
  fail "the failure does not name the secret and say to resubmit: $(cat "$FARM_DIR/lost.log")"
! grep -q 'building on worker' "$FARM_DIR/lost.log" || fail "the build ran without its secret"
echo "without a key: $(grep -o 'secret "npm" was lost[^:]*' "$FARM_DIR/lost.log" | head -1)"

# 2. With --secrets-key-file the sealed value survives the restart.
openssl rand -hex 32 >"$FARM_DIR/secrets.key"
chmod 644 "$FARM_DIR/secrets.key"
stop_scheduler
rc=0
"$FARM_DIR/bin/longshore-scheduler" --listen "127.0.0.1:$(free_port)" --metrics-listen "" \
  --state-dir "$FARM_DIR/scheduler" --secrets-key-file "$FARM_DIR/secrets.key" \
  >"$FARM_DIR/loose-key.log" 2>&1 || rc=$?
[[ $rc -ne 0 ]] && grep -q "chmod 600" "$FARM_DIR/loose-key.log" ||
  fail "a key file others can read was accepted (exit $rc): $(cat "$FARM_DIR/loose-key.log")"
chmod 600 "$FARM_DIR/secrets.key"
restart_scheduler --secrets-key-file "$FARM_DIR/secrets.key"
# (w1 reconnects to the restarted scheduler within its backoff.)
for _ in $(seq 150); do
  "$LONGSHORE" drain w1 >/dev/null 2>&1 && break
  sleep 0.1
done
"$LONGSHORE" workers | grep -q "^w1 .*draining" || fail "could not drain w1: $("$LONGSHORE" workers)"
"$LONGSHORE" build --progress=plain --secret "id=npm,src=$FARM_DIR/npm" --build-arg TRY=2 \
  --output "type=oci,dest=$FARM_DIR/out,tar=false" -t sealed:x "$ctx" >"$FARM_DIR/sealed.log" 2>&1 &
client=$!
wait_queued
! grep -q -- "$secret" "$FARM_DIR/scheduler/journal.db"* || fail "the secret's value is in the journal in clear"
restart_scheduler --secrets-key-file "$FARM_DIR/secrets.key"
for _ in $(seq 150); do
  "$LONGSHORE" undrain w1 >/dev/null 2>&1 && break
  sleep 0.1
done
rc=0
wait "$client" || rc=$?
[[ $rc -eq 0 ]] || fail "the sealed build failed after the restart: $(tail -20 "$FARM_DIR/sealed.log")"
umoci unpack --image "$FARM_DIR/out:x" "$FARM_DIR/bundle" >/dev/null || fail "umoci unpack failed"
[[ $(cat "$FARM_DIR/bundle/rootfs/got.txt") == "$secret" ]] ||
  fail "the step did not get the secret after the restart: $(cat "$FARM_DIR/bundle/rootfs/got.txt")"
echo "PASS: a lost secret fails the build naming it; a sealed one survives the restart"
