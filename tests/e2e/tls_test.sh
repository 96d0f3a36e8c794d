#!/usr/bin/env bash
# The scheduler serves gRPC over mutual TLS: a worker and a client holding
# certificates from the farm's CA build through it; a plaintext client, a
# client without a certificate and one whose certificate another CA signed
# are turned away, and the scheduler never sees their builds. Roles: only a
# certificate named like a worker may act as one, only an operator's may
# drain.
source "${TEST_SRCDIR}/${TEST_WORKSPACE}/tests/lib/farm.sh"

farm_init

farm_tls_init
make_cert worker farm-ca "/CN=worker-w1"
make_cert ci farm-ca "/CN=ci"
make_cert ops farm-ca "/CN=ops-alice"
make_cert ci2 farm-ca "/CN=ci-other-team"
make_cert rogue rogue-ca "/CN=ci"
chmod 0644 "$tls"/*.pem
chown "$FARM_USER:" "$tls/worker.key" "$tls/ci.key"
chmod 0600 "$tls"/*.key

# Role names without client certificates to check them against: refused.
rc=0
"$FARM_DIR/bin/longshore-scheduler" --listen 127.0.0.1:0 --metrics-listen "" \
  --state-dir "$FARM_DIR/bad-scheduler" --tls-cert "$tls/scheduler.pem" \
  --tls-key "$tls/scheduler.key" --tls-worker-names 'worker-*' \
  >"$FARM_DIR/bad-scheduler.log" 2>&1 || rc=$?
[[ $rc -eq 2 ]] && grep -q -- "--tls-worker-names and --tls-operator-names need --tls-client-ca" \
  "$FARM_DIR/bad-scheduler.log" ||
  { cat "$FARM_DIR/bad-scheduler.log" >&2; fail "--tls-worker-names without --tls-client-ca: exit $rc"; }

farm_start_scheduler --tls-cert "$tls/scheduler.pem" --tls-key "$tls/scheduler.key" \
  --tls-client-ca "$tls/farm-ca.pem" --tls-worker-names 'worker-*' \
  --tls-operator-names 'ops-*'
export LONGSHORE_TLS_CA="$tls/farm-ca.pem" LONGSHORE_TLS_CERT="$tls/ci.pem" \
  LONGSHORE_TLS_KEY="$tls/ci.key"
farm_start_worker w1 --tls-ca "$tls/farm-ca.pem" --tls-cert "$tls/worker.pem" \
  --tls-key "$tls/worker.key"

ctx="$FARM_DIR/ctx"
make_context "$ctx"
cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "sh", "-c", "echo over-tls > /proof"]
DOCKERFILE
rc=0
LONGSHORE_SUBMITTER=pretender "$LONGSHORE" build --progress=plain \
  --output "type=oci,dest=$FARM_DIR/out.tar" "$ctx" 2>"$FARM_DIR/build.log" || rc=$?
[[ $rc -eq 0 ]] || { cat "$FARM_DIR/build.log" >&2; fail "the build over TLS exited $rc"; }
grep -q 'building on worker w1' "$FARM_DIR/build.log" || fail "the build did not run on w1"
# Listed to a file: `tar | grep -q` under pipefail fails when grep exits early.
tar -tf "$FARM_DIR/out.tar" >"$FARM_DIR/out.list"
grep -q '^index.json$' "$FARM_DIR/out.list" || fail "no OCI output over TLS"
# The submitter is the certificate's name, whatever the client claims.
grep -q 'queued (submitter "ci")' "$FARM_DIR/scheduler.log" ||
  fail "the build was not recorded as submitted by ci: $(grep queued "$FARM_DIR/scheduler.log")"

# refused NAME [VAR=VALUE...]: a build with the client's TLS settings changed
# as given fails before the scheduler accepts it.
refused() {
  local name=$1 rc=0
  shift
  env "$@" "$LONGSHORE" build --progress=plain "$ctx" >"$FARM_DIR/$name.log" 2>&1 || rc=$?
  [[ $rc -ne 0 ]] || fail "$name: the build was accepted"
  echo "$name: exit $rc: $(grep -m1 ERROR "$FARM_DIR/$name.log")"
}
refused plaintext -u LONGSHORE_TLS_CA -u LONGSHORE_TLS_CERT -u LONGSHORE_TLS_KEY
refused no-client-cert -u LONGSHORE_TLS_CERT -u LONGSHORE_TLS_KEY
refused rogue-cert LONGSHORE_TLS_CERT="$tls/rogue.pem" LONGSHORE_TLS_KEY="$tls/rogue.key"
refused wrong-ca LONGSHORE_TLS_CA="$tls/rogue-ca.pem"
# A certificate without its key is a usage error naming the variable.
rc=0
env -u LONGSHORE_TLS_KEY "$LONGSHORE" build "$ctx" >"$FARM_DIR/half.log" 2>&1 || rc=$?
[[ $rc -eq 2 ]] && grep -q "LONGSHORE_TLS_KEY is missing" "$FARM_DIR/half.log" ||
  { cat "$FARM_DIR/half.log" >&2; fail "a certificate without a key: exit $rc"; }
[[ $("$LONGSHORE" builds | tail -n +2 | wc -l) -eq 1 ]] ||
  fail "the scheduler lists builds it should never have accepted: $("$LONGSHORE" builds)"

# Roles. The CI certificate cannot register as a worker (it would be handed
# other teams' builds and secrets)...
work="$FARM_DIR/work-impostor"
mkdir -p "$work" && chown "$FARM_USER:" "$work"
setpriv --reuid "$FARM_USER" --regid "$FARM_USER" --init-groups \
  env HOME="$work" "$FARM_DIR/bin/longshore-worker" \
  --scheduler "127.0.0.1:$SCHED_PORT" --work-dir "$work" --worker-id impostor \
  --tls-ca "$tls/farm-ca.pem" --tls-cert "$tls/ci.pem" --tls-key "$tls/ci.key" \
  >"$FARM_DIR/worker-impostor.log" 2>&1 &
FARM_PIDS+=($!)
for _ in $(seq 100); do
  grep -q "may not call Connect" "$FARM_DIR/worker-impostor.log" && break
  sleep 0.1
done
grep -q 'certificate "ci" (submitter) may not call Connect: only the worker role registers as a worker' \
  "$FARM_DIR/worker-impostor.log" ||
  { cat "$FARM_DIR/worker-impostor.log" >&2; fail "a CI certificate registered as a worker"; }
! LONGSHORE_TLS_CERT="$tls/ops.pem" LONGSHORE_TLS_KEY="$tls/ops.key" "$LONGSHORE" workers |
  grep -q '^impostor ' || fail "the impostor is listed as a worker"
# ...nor drain one; an operator's certificate can.
rc=0
"$LONGSHORE" drain w1 >"$FARM_DIR/drain-ci.log" 2>&1 || rc=$?
[[ $rc -ne 0 ]] && grep -q 'certificate "ci" (submitter) may not call Drain: this call is for operators' "$FARM_DIR/drain-ci.log" ||
  { cat "$FARM_DIR/drain-ci.log" >&2; fail "a CI certificate drained a worker (exit $rc)"; }
LONGSHORE_TLS_CERT="$tls/ops.pem" LONGSHORE_TLS_KEY="$tls/ops.key" "$LONGSHORE" drain w1 |
  grep -q "draining" || fail "the operator could not drain w1"
LONGSHORE_TLS_CERT="$tls/ops.pem" LONGSHORE_TLS_KEY="$tls/ops.key" "$LONGSHORE" undrain w1 >/dev/null ||
  fail "the operator could not undrain w1"

# A build is cancelled by its submitter or an operator, not by another team.
slow="$FARM_DIR/slow"
make_context "$slow"
printf 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "sleep", "60"]\n' >"$slow/Dockerfile"
"$LONGSHORE" build --progress=plain "$slow" >"$FARM_DIR/slow.log" 2>&1 &
client=$!
id=""
for _ in $(seq 100); do
  id=$("$LONGSHORE" builds | awk '$2 == "running" {print $1; exit}')
  [[ -n "$id" ]] && break
  sleep 0.1
done
[[ -n "$id" ]] || { cat "$FARM_DIR/slow.log" >&2; fail "the slow build did not start"; }
rc=0
LONGSHORE_TLS_CERT="$tls/ci2.pem" LONGSHORE_TLS_KEY="$tls/ci2.key" "$LONGSHORE" cancel "$id" \
  >"$FARM_DIR/cancel-other.log" 2>&1 || rc=$?
[[ $rc -ne 0 ]] && grep -q "certificate \"ci-other-team\" (submitter) may not call Cancel for build $id, which another submitter owns" "$FARM_DIR/cancel-other.log" ||
  { cat "$FARM_DIR/cancel-other.log" >&2; fail "another team cancelled the build (exit $rc)"; }
LONGSHORE_TLS_CERT="$tls/ops.pem" LONGSHORE_TLS_KEY="$tls/ops.key" "$LONGSHORE" cancel "$id" \
  >/dev/null || fail "the operator could not cancel the build"
rc=0
wait "$client" || rc=$?
[[ $rc -ne 0 ]] || fail "the cancelled build's client exited 0"
echo "PASS: mutual TLS between client, scheduler and worker"
