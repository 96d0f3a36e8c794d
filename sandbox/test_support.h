// Test support: running binaries as the unprivileged user the worker runs as,
// from a world-readable copy (Bazel's output tree under /root is not
// reachable by that user).
#ifndef LONGSHORE_SANDBOX_TEST_SUPPORT_H_
#define LONGSHORE_SANDBOX_TEST_SUPPORT_H_

#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace longshore::sandbox::testing {

inline constexpr char kUnprivilegedUser[] = "longshore";

struct UnprivilegedUser {
  uid_t uid = 0;
  gid_t gid = 0;
};

// The user's ids; the error names what is missing (root, the user, ...).
absl::StatusOr<UnprivilegedUser> FindUnprivilegedUser();

// The path of a runfile built from this package (e.g. "longshore-sandbox").
absl::StatusOr<std::string> RunfilePath(const std::string& name);

// A fresh world-traversable directory under /tmp, removed by the destructor.
class ScratchDir {
 public:
  static absl::StatusOr<ScratchDir> Create(const std::string& prefix);
  ScratchDir(ScratchDir&& other) noexcept;
  ScratchDir& operator=(ScratchDir&&) = delete;
  ~ScratchDir();
  const std::string& path() const { return path_; }

 private:
  explicit ScratchDir(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

// Copies `source` to `dest` with mode 0755.
absl::Status CopyExecutable(const std::string& source, const std::string& dest);

// lchown -R.
absl::Status ChownTree(const std::string& path, uid_t uid, gid_t gid);

struct RunResult {
  int exit_code = -1;  // 128+N when killed by signal N
  std::string out;
  std::string err;
  double seconds = 0;
};

struct RunOptions {
  std::vector<std::string> env = {"PATH=/usr/bin:/bin", "TMPDIR=/tmp"};
  // Kill the process (group) after this long.
  int timeout_seconds = 60;
  // Left open, without close-on-exec, at this descriptor number in the child.
  int leak_fd = -1;
  // Run as this user (default the unprivileged user); as_root keeps uid 0.
  bool as_root = false;
  // When set, a cgroup v2 directory the child moves itself into (as root,
  // before dropping privileges).
  std::string cgroup;
  // Called once with the child's pid after the first line of stdout arrives.
  std::function<void(pid_t)> on_first_line;
};

// Runs argv[0] with argv, waits, and collects its output.
absl::StatusOr<RunResult> Run(const std::vector<std::string>& argv,
                              const RunOptions& opts = {});

}  // namespace longshore::sandbox::testing

#endif  // LONGSHORE_SANDBOX_TEST_SUPPORT_H_
