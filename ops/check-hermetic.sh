#!/usr/bin/env bash
# Fails, naming file and line, when a tracked file refers to something outside the
# repository: the development machines' shared/ folder or its conformance data, the
# environment override that once pointed there, the checkout's own absolute path, or
# the //:WORKSPACE runfiles symlink that leads from a test back into the source tree.
# Tests read what their Bazel `data` lists and nothing else (docs/building.md).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd -P)
self=ops/check-hermetic.sh

# Spelled from parts, so this file does not itself read as such a reference.
outside=shared
patterns=(
  -e "\\.\\./${outside}\\b"
  -e "\\b${outside}/conformance\\b"
  -e "LONGSHORE_CONFORMANCE""_DIR"
  -e "//:""WORKSPACE"
  -e "readlink -f[^|;]*WORKSPACE"
  -e "$(printf '%s' "$root" | sed 's/[.[\*^$]/\\&/g')/"
)

hits=$(git ls-files -z -- . ":(exclude)${self}" ':(exclude)third_party/*/testdata/**' |
  xargs -0 grep -nIE "${patterns[@]}" -- 2>/dev/null || true)
if [[ -n "$hits" ]]; then
  echo "check-hermetic: tracked files refer to paths outside the repository:" >&2
  printf '%s\n' "$hits" | sed 's/^/  /' >&2
  echo "check-hermetic: vendor what is needed under third_party/ and give it to tests as Bazel data" >&2
  exit 1
fi
n=$(git ls-files | wc -l)
echo "check-hermetic: ${n} tracked files refer to nothing outside the repository"
