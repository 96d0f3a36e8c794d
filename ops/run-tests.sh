#!/usr/bin/env bash
# Runs the whole suite: every Bazel test target, the formatting check, the
# hermeticity check (nothing refers outside the repository), and every fuzz
# target of fuzz/ for a bounded time.
# Writes the totals (test cases from Bazel's XML results, targets that failed to
# build, and the format check) to .test-summary as "N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")/.."
BAZEL=${BAZEL:-bazel}

# A summary is only ever this run's: an earlier one is gone before anything runs.
rm -f .test-summary
log=$(mktemp)
trap 'rm -f "$log"' EXIT
$BAZEL test ${BAZEL_FLAGS:-} //... 2>&1 | tee "$log"
bazel_rc=${PIPESTATUS[0]}

passed=0
failed=0
testlogs=$($BAZEL info bazel-testlogs 2>/dev/null)
# Only targets this run reported; stale XML of deleted targets is not counted.
while read -r target status; do
  xml="$testlogs/${target#//}"
  xml="${xml/://}/test.xml"
  if [[ "$status" == PASSED || "$status" == FAILED || "$status" == FLAKY ]] && [[ -f "$xml" ]]; then
    t=$(grep -o '<testsuites[^>]*' "$xml" | head -1 | grep -o ' tests="[0-9]*"' | grep -o '[0-9]*')
    f=$(grep -o '<testsuites[^>]*' "$xml" | head -1 | grep -o ' failures="[0-9]*"' | grep -o '[0-9]*')
    e=$(grep -o '<testsuites[^>]*' "$xml" | head -1 | grep -o ' errors="[0-9]*"' | grep -o '[0-9]*')
    t=${t:-0}; f=${f:-0}; e=${e:-0}
    if [[ "$t" -eq 0 ]]; then
      # Non-gtest tests (sh_test) report one case: the target itself.
      if [[ "$status" == FAILED ]]; then failed=$((failed + 1)); else passed=$((passed + 1)); fi
    else
      bad=$((f + e))
      # A target that crashed after its cases passed still failed.
      if [[ "$status" == FAILED && "$bad" -eq 0 ]]; then bad=1; fi
      failed=$((failed + bad))
      passed=$((passed + t - f - e))
    fi
  elif [[ "$status" == PASSED ]]; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))  # TIMEOUT, NO STATUS, FAILED TO BUILD, INCOMPLETE
  fi
done < <(grep -E '^//[^ ]+ +(\(cached\) )?(PASSED|FAILED|FLAKY|TIMEOUT|NO STATUS|INCOMPLETE)' "$log" |
  sed -E 's/^(\/\/[^ ]+) +(\(cached\) )?(PASSED|FAILED TO BUILD|FAILED|FLAKY|TIMEOUT|NO STATUS|INCOMPLETE).*/\1 \3/')
if [[ $bazel_rc -ne 0 && $passed -eq 0 && $failed -eq 0 ]]; then
  echo "run-tests: bazel test failed before running any test" >&2
  failed=1
fi

if ./ops/check-format.sh; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
if ./ops/check-hermetic.sh; then passed=$((passed + 1)); else failed=$((failed + 1)); fi

# Every parser of untrusted input under libFuzzer (ASan + UBSan), each target
# for LONGSHORE_FUZZ_SECONDS (default 35; ten targets two at a time, about
# five minutes with the build) on its corpus in fuzz/corpus/ (docs/fuzzing.md).
# One entry per target: failed on a crash, sanitizer report, failed check or
# hang, or when the targets do not build.
fuzz_results=$(mktemp)
FUZZ_RESULTS="$fuzz_results" fuzz/run.sh "${LONGSHORE_FUZZ_SECONDS:-35}"
fuzz_rc=$?
fuzz_passed=$(grep -c ' passed$' "$fuzz_results" || true)
fuzz_failed=$(grep -c ' failed$' "$fuzz_results" || true)
rm -f "$fuzz_results"
if [[ $fuzz_rc -ne 0 && $fuzz_failed -eq 0 ]]; then
  echo "fuzz: fuzz/run.sh failed (exit $fuzz_rc) before reporting a target" >&2
  fuzz_failed=1
fi
echo "fuzz: $fuzz_passed passed, $fuzz_failed failed (the playground self-test and one entry per target)"
passed=$((passed + fuzz_passed))
failed=$((failed + fuzz_failed))

echo "$passed passed, $failed failed" | tee .test-summary
[[ $failed -eq 0 && $bazel_rc -eq 0 ]]
