#!/usr/bin/env bash
# `longshore dockerfile parse`: the --format=ast dump equals BuildKit's `result`
# for every directory of BuildKit's parser testfiles/, every negative
# Dockerfile is rejected (exit 1, an error naming the file), and --format=json
# gives the line ranges of testfile-line.
set -euo pipefail
fail() { echo "FAIL: $*" >&2; exit 1; }
longshore="${TEST_SRCDIR}/${TEST_WORKSPACE}/client/longshore"
[[ -x "$longshore" ]] || fail "missing //client:longshore"
# BuildKit's parser data, vendored under third_party/buildkit (a `data` dependency).
conf="${TEST_SRCDIR}/${TEST_WORKSPACE}/third_party/buildkit/testdata"
[[ -d "$conf/parser/testfiles" ]] ||
  fail "BuildKit's parser data missing from the runfiles: add //third_party/buildkit:parser_testdata to data"

n=0
for d in "$conf"/parser/testfiles/*/; do
  got=$("$longshore" dockerfile parse --format=ast "$d/Dockerfile") ||
    fail "parse of $(basename "$d") exited non-zero"
  diff <(printf '%s\n' "$got") "$d/result" >/dev/null ||
    fail "$(basename "$d"): dump differs from BuildKit's result"
  n=$((n + 1))
done
[[ $n -gt 30 ]] || fail "only $n conformance directories found"

neg=0
for d in "$conf"/parser/testfiles-negative/*/; do
  rc=0
  err=$("$longshore" dockerfile parse --format=json "$d/Dockerfile" 2>&1 >/dev/null) || rc=$?
  [[ $rc -eq 1 ]] || fail "$(basename "$d"): negative Dockerfile accepted (rc $rc)"
  [[ "$err" == *"$d"* || "$err" == *Dockerfile* ]] || fail "$(basename "$d"): error does not name the file: $err"
  neg=$((neg + 1))
done
[[ $neg -gt 0 ]] || fail "no negative conformance files found"

lines=$("$longshore" dockerfile parse --format=json "$conf/parser/testfile-line/Dockerfile" |
  jq -c '[.instructions[] | [.start_line, .end_line]]')
[[ "$lines" == "[[5,5],[11,12],[17,31]]" ]] || fail "line ranges $lines, want [[5,5],[11,12],[17,31]]"
echo "PASS: $n dumps equal BuildKit's, $neg negative files rejected, line ranges match"
