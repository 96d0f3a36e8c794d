#include "common/testing/runfiles.h"

#include <stdlib.h>
#include <sys/stat.h>

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace longshore::testing {

absl::StatusOr<std::string> RunfilePath(absl::string_view path) {
  const char* srcdir = getenv("TEST_SRCDIR");
  const char* ws = getenv("TEST_WORKSPACE");
  if (srcdir == nullptr || ws == nullptr) {
    return absl::FailedPreconditionError(
        "TEST_SRCDIR/TEST_WORKSPACE unset: run this test with `bazel test`");
  }
  std::string full = absl::StrCat(srcdir, "/", ws, "/", path);
  struct stat st;
  if (::stat(full.c_str(), &st) != 0) {
    return absl::NotFoundError(absl::StrCat(
        path, " is not in the test's runfiles (", full,
        "): add the target that provides it to the test's `data`"));
  }
  return full;
}

}  // namespace longshore::testing
