#!/usr/bin/env bash
# Builds every libFuzzer target of fuzz/targets.mk with Debian's clang (ASan +
# UBSan) and runs each for a bounded time, FUZZ_JOBS (2) at a time, on its
# corpus fuzz/corpus/NAME/ (read only: what the run finds stays in the run's
# own directory).
#
#   fuzz/run.sh [SECONDS] [NAME...]      (default: 60 s each, every target)
#
# Environment:
#   FUZZ_JOBS     targets run at once, and make's -j (default 2)
#   FUZZ_OUT      build directory, kept between runs for incremental builds
#                 (default: a temporary one, removed at the end)
#   FUZZ_RESULTS  a file to which "NAME passed" or "NAME failed" is appended
#                 per target (ops/run-tests.sh counts them)
#
# Exits non-zero when a build fails or any target finds a crash, a sanitizer
# report, a failed check, a leak or a hang (an input slower than 10 s). The
# failing input and the log are kept, and the command that replays it is
# printed (docs/fuzzing.md).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "${here}/.." && pwd)"
seconds=60
if [[ $# -gt 0 && "$1" =~ ^[0-9]+$ ]]; then
  seconds="$1"
  shift
fi
jobs="${FUZZ_JOBS:-2}"
cxx="${CXX:-clang++}"
results="${FUZZ_RESULTS:-}"

all_targets=$(make -s -f "${here}/targets.mk" --no-print-directory \
  ROOT="${root}" -E 'print-targets: ; @echo $(TARGETS)' print-targets)
if [[ $# -gt 0 ]]; then
  targets=("$@")
  for t in "${targets[@]}"; do
    if [[ " ${all_targets} " != *" ${t} "* ]]; then
      echo "fuzz/run.sh: no target \"${t}\"; targets: ${all_targets}" >&2
      exit 2
    fi
  done
else
  read -r -a targets <<<"${all_targets}"
fi

record() {  # NAME passed|failed
  if [[ -n "${results}" ]]; then echo "$1 $2" >>"${results}"; fi
}

for tool in "${cxx}" make protoc; do
  if ! command -v "${tool}" >/dev/null; then
    echo "fuzz/run.sh: ${tool} not found (ops/bootstrap.sh installs clang, libclang-rt-14-dev, make and protobuf-compiler)" >&2
    for t in playground_selftest "${targets[@]}"; do record "${t}" failed; done
    exit 2
  fi
done

work="$(mktemp -d "${TMPDIR:-/tmp}/longshore-fuzz.XXXXXX")"
out="${FUZZ_OUT:-${work}/build}"
keep=0
cleanup() {
  if [[ ${keep} -eq 0 ]]; then rm -rf "${work}"; fi
}
trap cleanup EXIT

echo "fuzz/run.sh: building ${#targets[@]} targets into ${out}"
bins=("${out}/bin/playground_selftest")
for t in "${targets[@]}"; do bins+=("${out}/bin/${t}_fuzzer"); done
start=$(date +%s)
if ! make -f "${here}/targets.mk" -j"${jobs}" ROOT="${root}" OUT="${out}" \
  CXX="${cxx}" "${bins[@]}" >"${work}/build.log" 2>&1; then
  tail -40 "${work}/build.log" >&2
  echo "fuzz/run.sh: build failed; the whole log is in ${work}/build.log" >&2
  keep=1
  for t in playground_selftest "${targets[@]}"; do record "${t}" failed; done
  exit 1
fi
echo "fuzz/run.sh: built in $(($(date +%s) - start)) s"

# The archive targets' check that nothing outside the destination changed must
# catch what it is there to catch.
if "${out}/bin/playground_selftest"; then
  record playground_selftest passed
else
  echo "fuzz/run.sh: the playground's escape check is broken (fuzz/playground_selftest.cc)" >&2
  record playground_selftest failed
  keep=1
  exit 1
fi

# Per-target options: the longest input worth trying, and a dictionary of
# tokens the format is made of when there is one.
max_len_of() {
  case "$1" in
    context_tar | layer_apply | add_archive) echo 65536 ;;
    dockerfile) echo 8192 ;;
    oci_json) echo 16384 ;;
    *) echo 4096 ;;
  esac
}

# The Dockerfile target also starts from BuildKit's conformance files, made
# into seeds here (third_party/buildkit/testdata is part of the repository).
buildkit_seeds() {
  local dir="$1" testdata="${root}/third_party/buildkit/testdata" i=0 f line t
  mkdir -p "${dir}"
  if [[ ! -d "${testdata}/parser/testfiles" || ! -f "${testdata}/shell/wordsTest" ]]; then
    echo "fuzz/run.sh: BuildKit's test data missing from ${testdata} (it is part of the repository)" >&2
    return 1
  fi
  while IFS= read -r -d '' f; do
    cp "${f}" "${dir}/seed-$((i++))"
  done < <(find "${testdata}/parser" -name Dockerfile -print0)
  for t in envVarTest wordsTest; do
    while IFS= read -r line; do
      [[ -z "${line}" || "${line}" == \#* ]] && continue
      printf '%s' "${line}" | cut -d'|' -f2 >"${dir}/word-$((i++))"
    done <"${testdata}/shell/${t}"
  done
}

run_one() {  # NAME: fuzzes it for ${seconds} s; output in ${work}/NAME.log
  local t="$1" dirs=() opts=()
  mkdir -p "${work}/new/${t}" "${work}/artifacts" "${work}/cwd/${t}"
  dirs=("${work}/new/${t}" "${root}/fuzz/corpus/${t}")
  if [[ "${t}" == dockerfile ]]; then
    buildkit_seeds "${work}/buildkit" || return 1
    dirs+=("${work}/buildkit")
  fi
  if [[ -f "${root}/fuzz/dict/${t}.dict" ]]; then
    opts+=(-dict="${root}/fuzz/dict/${t}.dict")
  fi
  # Run from a directory of its own: libFuzzer writes nothing else, but a
  # target that misbehaved should not do it in the checkout.
  (cd "${work}/cwd/${t}" &&
    "${out}/bin/${t}_fuzzer" -max_total_time="${seconds}" -timeout=10 \
      -rss_limit_mb=2048 -max_len="$(max_len_of "${t}")" \
      -artifact_prefix="${work}/artifacts/${t}-" -print_final_stats=1 \
      "${opts[@]}" "${dirs[@]}")
}

echo "fuzz/run.sh: running ${#targets[@]} targets for ${seconds} s each, ${jobs} at a time"
failed=0
finish() {  # NAME: reports how its run ended
  local t="$1" rc stats
  rc=$(cat "${work}/${t}.rc")
  stats=$(grep -E '^stat::number_of_executed_units' "${work}/${t}.log" | awk '{print $2}' || true)
  if [[ ${rc} -eq 0 ]]; then
    echo "fuzz: ${t}: ${stats:-?} inputs in ${seconds} s, no crash"
    record "${t}" passed
    return
  fi
  keep=1
  failed=$((failed + 1))
  echo "fuzz: ${t}: FAILED (exit ${rc}); last lines of ${work}/${t}.log:" >&2
  tail -40 "${work}/${t}.log" | sed 's/^/  /' >&2
  for a in "${work}/artifacts/${t}-"*; do
    [[ -e "${a}" ]] || continue
    echo "fuzz: ${t}: failing input kept at ${a}; replay it with" >&2
    echo "  ${out}/bin/${t}_fuzzer ${a}" >&2
  done
  record "${t}" failed
}
running() {  # how many started targets have not ended
  local n=0 t
  for t in "${started[@]}"; do [[ -f "${work}/${t}.rc" ]] || n=$((n + 1)); done
  echo "${n}"
}
started=()
for t in "${targets[@]}"; do
  while [[ $(running) -ge ${jobs} ]]; do sleep 1; done
  (
    rc=0
    run_one "${t}" >"${work}/${t}.log" 2>&1 || rc=$?
    echo "${rc}" >"${work}/${t}.rc"
  ) &
  started+=("${t}")
done
wait
for t in "${targets[@]}"; do finish "${t}"; done

if [[ ${failed} -gt 0 ]]; then
  echo "fuzz/run.sh: ${failed} of ${#targets[@]} targets failed; logs and inputs in ${work}" >&2
  exit 1
fi
echo "fuzz/run.sh: ${#targets[@]} targets clean"
