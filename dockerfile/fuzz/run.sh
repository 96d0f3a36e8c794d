#!/usr/bin/env bash
# Builds the Dockerfile frontend's libFuzzer target with Debian's clang
# (ASan + UBSan) into a temporary directory and runs it for a bounded time,
# with a corpus seeded from BuildKit's test data (vendored in
# third_party/buildkit/testdata).
#
#   dockerfile/fuzz/run.sh [SECONDS]        (default 60)
#
# Exits non-zero when the fuzzer finds a crash, a sanitizer report or a hang
# (an input slower than 10 s), or when the build fails.
set -euo pipefail

seconds="${1:-60}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "${here}/../.." && pwd)"
testdata="${root}/third_party/buildkit/testdata"
cxx="${CXX:-clang++}"

if ! command -v "${cxx}" >/dev/null; then
  echo "fuzz/run.sh: ${cxx} not found (install Debian's clang and libclang-rt-14-dev)" >&2
  exit 2
fi
if [[ ! -d "${testdata}/parser/testfiles" || ! -f "${testdata}/shell/wordsTest" ]]; then
  echo "fuzz/run.sh: BuildKit's test data missing from ${testdata} (it is part of the repository)" >&2
  exit 2
fi

work="$(mktemp -d /tmp/longshore-dockerfile-fuzz.XXXXXX)"
trap 'rm -rf "${work}"' EXIT

sources=(
  build_plan.cc dockerignore.cc image_config.cc instruction_flags.cc
  parser.cc shell_lex.cc stage_evaluator.cc text_util.cc
)
srcs=()
for s in "${sources[@]}"; do srcs+=("${root}/dockerfile/${s}"); done

absl_libs=(
  -labsl_statusor -labsl_status -labsl_cord -labsl_cordz_info
  -labsl_cord_internal -labsl_cordz_functions -labsl_cordz_handle
  -labsl_exponential_biased -labsl_raw_hash_set -labsl_hashtablez_sampler
  -labsl_hash -labsl_city -labsl_low_level_hash -labsl_str_format_internal
  -labsl_synchronization -labsl_graphcycles_internal -labsl_stacktrace
  -labsl_symbolize -labsl_debugging_internal -labsl_demangle_internal
  -labsl_malloc_internal -labsl_time -labsl_civil_time -labsl_time_zone
  -labsl_strings -labsl_strings_internal -labsl_strerror
  -labsl_bad_optional_access -labsl_bad_variant_access -labsl_int128
  -labsl_base -labsl_spinlock_wait -labsl_throw_delegate
  -labsl_raw_logging_internal -labsl_log_severity -lpthread
)

echo "fuzz/run.sh: building into ${work}"
"${cxx}" -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined \
  -fno-sanitize-recover=undefined -I"${root}" \
  "${here}/parser_fuzzer.cc" "${srcs[@]}" "${absl_libs[@]}" \
  -o "${work}/parser_fuzzer"

mkdir -p "${work}/corpus"
i=0
while IFS= read -r -d '' f; do
  cp "${f}" "${work}/corpus/seed-$((i++))"
done < <(find "${testdata}/parser" -name Dockerfile -print0)
# Every input line of the shell tests becomes a seed word.
for t in envVarTest wordsTest; do
  while IFS= read -r line; do
    [[ -z "${line}" || "${line}" == \#* ]] && continue
    printf '%s' "${line}" | cut -d'|' -f2 >"${work}/corpus/word-$((i++))"
  done <"${testdata}/shell/${t}"
done
echo "fuzz/run.sh: ${i} seeds, running for ${seconds}s"

cd "${work}"
# -timeout makes any single input slower than 10 s count as a hang.
"${work}/parser_fuzzer" -max_total_time="${seconds}" -timeout=10 \
  -rss_limit_mb=2048 -max_len=8192 -print_final_stats=1 "${work}/corpus"
