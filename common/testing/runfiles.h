// Test-only: paths of files a test declares in its `data`.
#ifndef LONGSHORE_COMMON_TESTING_RUNFILES_H_
#define LONGSHORE_COMMON_TESTING_RUNFILES_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace longshore::testing {

// The path under the test's runfiles of `path`, given relative to the
// repository root (e.g. "third_party/buildkit/testdata/shell/wordsTest").
// Tests read only what their `data` lists, so a test can never depend on files
// beside or above the checkout. The error names the path and the fix.
absl::StatusOr<std::string> RunfilePath(absl::string_view path);

}  // namespace longshore::testing

#endif  // LONGSHORE_COMMON_TESTING_RUNFILES_H_
