#!/usr/bin/env bash
# ops/systemd's units load: `systemd-analyze verify` accepts both (with
# ExecStart= pointing at the binaries this tree built, where the units say
# /usr/local/bin), the scheduler's sandboxing scores at most 2.0 on
# `systemd-analyze security`, and the worker's stop waits longer than its
# drain, signalling only the worker itself.
set -euo pipefail
fail() { echo "FAIL: $*" >&2; exit 1; }
command -v systemd-analyze >/dev/null || fail "systemd-analyze is missing: run ops/bootstrap.sh (package: systemd)"
root="${TEST_SRCDIR}/${TEST_WORKSPACE}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/bin"
install -m 0755 "$root/scheduler/longshore-scheduler" "$root/worker/longshore-worker" "$work/bin/"
for unit in longshore-scheduler.service longshore-worker.service; do
  [[ -f "$root/ops/systemd/$unit" ]] || fail "ops/systemd/$unit is missing"
  sed "s#/usr/local/bin/#$work/bin/#g" "$root/ops/systemd/$unit" >"$work/$unit"
  out=$(systemd-analyze verify "$work/$unit" 2>&1) || fail "systemd-analyze verify $unit: $out"
  # verify reports unknown settings and bad values on stderr yet may exit 0.
  [[ -z "$out" ]] || fail "systemd-analyze verify $unit: $out"
done
score=$(systemd-analyze security --offline=yes "$work/longshore-scheduler.service" 2>&1 |
  sed -n 's/.*Overall exposure level for longshore-scheduler.service: \([0-9.]*\).*/\1/p')
[[ -n "$score" ]] || fail "systemd-analyze security gave no exposure level"
awk -v s="$score" 'BEGIN { exit !(s <= 2.0) }' || fail "the scheduler unit's exposure level is $score (want <= 2.0)"
w="$work/longshore-worker.service"
grep -qx 'KillMode=mixed' "$w" || fail "the worker unit must signal only the worker (KillMode=mixed) so running steps finish"
drain=$(sed -n 's/.*DRAIN=\([0-9]*\)m.*/\1/p' "$w")
stop=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)min$/\1/p' "$w")
[[ -n "$drain" && -n "$stop" ]] || fail "the worker unit's DRAIN or TimeoutStopSec is not in minutes"
((stop > drain)) || fail "TimeoutStopSec=${stop}min does not outlast the ${drain}m drain"
grep -q -- '--slots ${SLOTS}' "$w" || fail "the worker unit does not set its slots"
echo "PASS: systemd units (scheduler exposure $score)"
