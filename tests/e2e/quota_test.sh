#!/usr/bin/env bash
# Per-submitter storage quota (--submitter-quota-bytes) over build logs and
# client-side outputs: output past it is dropped with a marker and a warning
# while the build goes on; an output upload that would pass it fails the
# build; a submitter at its quota cannot submit; each error names the limit,
# and other submitters are not affected.
source "${TEST_SRCDIR}/${TEST_WORKSPACE}/tests/lib/farm.sh"

farm_init
farm_start_scheduler --submitter-quota-bytes 300000
farm_start_worker w1

ctx="$FARM_DIR/ctx"
make_context "$ctx"
cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY busybox /bin/busybox
ARG N
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox yes 0123456789abcdef | /bin/busybox head -c 500000; echo; echo tail-$N-$((40+2))"]
RUN ["/bin/busybox", "sh", "-c", "echo went-on > /next.txt"]
DOCKERFILE

# A noisy build: its output stops at the quota; the build succeeds.
LONGSHORE_SUBMITTER=noisy "$LONGSHORE" build --progress=plain --build-arg N=1 "$ctx" \
  >"$FARM_DIR/noisy.log" 2>&1 || fail "the noisy build failed: $(tail -5 "$FARM_DIR/noisy.log")"
grep -q "the rest of this build's output is dropped: submitter \"noisy\" stores" "$FARM_DIR/noisy.log" ||
  fail "no marker line says the output was cut: $(tail -5 "$FARM_DIR/noisy.log")"
grep -q "^WARNING: output dropped: .*(--submitter-quota-bytes)" "$FARM_DIR/noisy.log" ||
  fail "no warning event: $(tail -5 "$FARM_DIR/noisy.log")"
! grep -q "tail-1-42" "$FARM_DIR/noisy.log" || fail "output past the quota was kept"
grep -q "DONE" "$FARM_DIR/noisy.log" || fail "the build did not go on"

# At its quota the submitter cannot submit, and nothing is queued...
rc=0
LONGSHORE_SUBMITTER=noisy "$LONGSHORE" build --progress=plain --build-arg N=2 "$ctx" \
  >"$FARM_DIR/refused.log" 2>&1 || rc=$?
[[ $rc -ne 0 ]] || fail "a submitter over its quota submitted"
grep -q 'submitter "noisy" has filled its quota of 300000 bytes of build logs and outputs (.* stored) (--submitter-quota-bytes)' "$FARM_DIR/refused.log" &&
  grep -q "nothing was queued" "$FARM_DIR/refused.log" ||
  fail "the refusal does not name the limit: $(cat "$FARM_DIR/refused.log")"
[[ $("$LONGSHORE" builds | tail -n +2 | wc -l) -eq 1 ]] || fail "a refused build was queued: $("$LONGSHORE" builds)"

# ...while another submitter builds; its output image (busybox, over 300 kB)
# would pass its quota, so the upload fails the build, naming the limit.
rc=0
LONGSHORE_SUBMITTER=other "$LONGSHORE" build --progress=plain --build-arg N=3 \
  --output "type=oci,dest=$FARM_DIR/big.tar" "$ctx" >"$FARM_DIR/big.log" 2>&1 || rc=$?
grep -q "building on worker" "$FARM_DIR/big.log" || fail "another submitter was refused: $(cat "$FARM_DIR/big.log")"
[[ $rc -ne 0 ]] || fail "an output past the quota was stored"
grep -q "uploading output 0: .*output 0 of [0-9]* bytes would pass its quota of 300000 bytes (--submitter-quota-bytes)" \
  "$FARM_DIR/big.log" || fail "the upload refusal does not name the limit: $(tail -5 "$FARM_DIR/big.log")"
[[ ! -e "$FARM_DIR/big.tar" ]] || fail "a half-written output was left at $FARM_DIR/big.tar"
rejected=$(curl -sf "http://127.0.0.1:$SCHED_METRICS_PORT/metrics" |
  awk '$1 == "longshore_scheduler_submits_rejected_total{reason=\"submitter_quota\"}" { print $2 }' || true)
[[ $rejected == 1 ]] || fail "refusals by quota counted: '$rejected'"
echo "PASS: storage quota per submitter"
