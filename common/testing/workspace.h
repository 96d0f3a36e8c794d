// Test-only helpers to find files that live beside the source tree.
#ifndef LONGSHORE_COMMON_TESTING_WORKSPACE_H_
#define LONGSHORE_COMMON_TESTING_WORKSPACE_H_

#include <string>

#include "absl/status/statusor.h"

namespace longshore::testing {

// The source workspace root (the directory holding WORKSPACE), found by
// resolving the symlink Bazel's runfiles keep for //:WORKSPACE. Tests that use
// it must list
// "//:WORKSPACE" in `data`.
absl::StatusOr<std::string> WorkspaceRoot();

// BuildKit's conformance data: $LONGSHORE_CONFORMANCE_DIR when set, else
// `shared/conformance` beside the workspace or beside any folder above it. The
// error says what is missing and where it was looked for.
absl::StatusOr<std::string> ConformanceDir();

}  // namespace longshore::testing

#endif  // LONGSHORE_COMMON_TESTING_WORKSPACE_H_
