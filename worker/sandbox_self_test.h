// The worker's sandbox check at start: one sandbox assembles a root (user,
// mount, pid and network namespaces, an overlay, the seccomp filter) and
// reaches its command's execve. A worker that fails it reports not ready
// (/readyz) instead of failing every build it is given.
#ifndef LONGSHORE_WORKER_SANDBOX_SELF_TEST_H_
#define LONGSHORE_WORKER_SANDBOX_SELF_TEST_H_

#include <string>

#include "absl/status/statusor.h"

namespace longshore::worker {

struct SelfTestOptions {
  std::string sandbox_binary;
  std::string seccomp_bpf;    // empty: without the filter (--no-seccomp)
  std::string scratch_dir;    // a directory the worker owns (its tmp)
  std::string cgroup_parent;  // as for steps; may be empty
};

// Seconds the sandbox took to set up, or why it failed.
absl::StatusOr<double> SandboxSelfTest(const SelfTestOptions& opts);

}  // namespace longshore::worker

#endif  // LONGSHORE_WORKER_SANDBOX_SELF_TEST_H_
