#include "common/testing/workspace.h"

#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <string>

#include "absl/strings/str_cat.h"

namespace longshore::testing {
namespace {

bool IsDir(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

}  // namespace

absl::StatusOr<std::string> WorkspaceRoot() {
  const char* srcdir = getenv("TEST_SRCDIR");
  const char* ws = getenv("TEST_WORKSPACE");
  if (srcdir == nullptr || ws == nullptr) {
    return absl::FailedPreconditionError(
        "TEST_SRCDIR/TEST_WORKSPACE unset: run this test with `bazel test`");
  }
  std::string link = absl::StrCat(srcdir, "/", ws, "/WORKSPACE");
  char resolved[PATH_MAX];
  if (realpath(link.c_str(), resolved) == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot resolve ", link, ": add \"//:WORKSPACE\" to the test's data"));
  }
  std::string root = resolved;
  return root.substr(0, root.rfind('/'));
}

absl::StatusOr<std::string> ConformanceDir() {
  if (const char* env = getenv("LONGSHORE_CONFORMANCE_DIR")) {
    if (!IsDir(env)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "LONGSHORE_CONFORMANCE_DIR=", env, " is not a directory"));
    }
    return std::string(env);
  }
  auto root = WorkspaceRoot();
  if (!root.ok()) return root.status();
  // shared/conformance beside the checkout, or beside any folder above it (a
  // clone made one level deeper finds the same data).
  std::string dir = *root;
  while (!dir.empty()) {
    dir = dir.substr(0, dir.rfind('/'));
    std::string candidate = absl::StrCat(dir, "/shared/conformance");
    if (IsDir(candidate)) {
      char resolved[PATH_MAX];
      if (realpath(candidate.c_str(), resolved) == nullptr) return candidate;
      return std::string(resolved);
    }
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "BuildKit conformance data not found in shared/conformance beside ",
      *root,
      " or any folder above it (set LONGSHORE_CONFORMANCE_DIR to the folder "
      "holding buildkit-parser/ and buildkit-shell/)"));
}

}  // namespace longshore::testing
