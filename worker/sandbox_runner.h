// Runs one RUN step through the `longshore-sandbox` executable and streams its
// output. The worker is multi-threaded, so namespaces are never set up here:
// the sandbox is a fresh single-threaded process (see sandbox/README.md).
#ifndef LONGSHORE_WORKER_SANDBOX_RUNNER_H_
#define LONGSHORE_WORKER_SANDBOX_RUNNER_H_

#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace longshore::worker {

struct SandboxInvocation {
  std::string sandbox_binary;
  // The sandbox's $TMPDIR, where it keeps the mount point it shares between
  // steps; empty leaves /tmp.
  std::string tmp_dir;
  std::vector<std::string> lowers;  // top-most first
  std::string upper;
  std::string work;
  std::string hostname;
  std::string cwd;
  std::string user;
  std::string network;  // none|host|default
  std::vector<std::string> env;
  std::vector<std::string> argv;
  std::string seccomp_bpf;  // compiled filter file; empty disables (debug)
  int timeout_seconds = 0;
  std::vector<std::string> extra_args;  // further sandbox flags (mounts...)
};

struct SandboxOutcome {
  int exit_code = 0;        // the command's, 128+N for signal N
  bool timed_out = false;   // the sandbox's timeout fired (exit 124)
  bool cancelled = false;   // `cancel` was set and the step was killed
  std::string setup_error;  // exit 125: the sandbox's one-line reason
  std::string limit_error;  // exit 123: which limit stopped the step
  // From spawning the sandbox to the command's start (its --ready-fd byte);
  // negative when the command never started.
  double setup_seconds = -1;
};

enum class OutputStream { kStdout = 1, kStderr = 2 };

// Spawns the sandbox, calls `on_output` with each chunk of stdout/stderr as it
// arrives (from this thread), and waits for it. When `cancelled` (polled every
// 100 ms) returns true, the step is killed.
absl::StatusOr<SandboxOutcome> RunSandbox(
    const SandboxInvocation& inv,
    const std::function<void(OutputStream, absl::string_view)>& on_output,
    const std::function<bool()>& cancelled);

// The argv passed to the sandbox for `inv` (exposed for tests and debugging:
// the worker logs it so a user can reproduce a step by hand).
std::vector<std::string> SandboxArgv(const SandboxInvocation& inv);

}  // namespace longshore::worker

#endif  // LONGSHORE_WORKER_SANDBOX_RUNNER_H_
