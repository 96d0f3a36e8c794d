// What the parent side hands to the step's pid 1 (by memory: pid 1 runs in
// the parent's memory, or in a copy of it when clone3 places it in a cgroup)
// and the pid-1 side itself.
#ifndef LONGSHORE_SANDBOX_STEP_H_
#define LONGSHORE_SANDBOX_STEP_H_

#include <sys/wait.h>

#include <string>
#include <vector>

#include "sandbox/limits.h"
#include "sandbox/rootfs.h"

namespace longshore::sandbox {

// Exit statuses of the sandbox itself (the command's own pass through).
inline constexpr int kExitSandboxFailure = 125;
inline constexpr int kExitNotExecutable = 126;
inline constexpr int kExitNotFound = 127;
inline constexpr int kExitTimeout = 124;
// A limit stopped the step (disk, or the cgroup's OOM kill).
inline constexpr int kExitLimit = 123;

struct StepConfig {
  RootfsSpec rootfs;
  std::string hostname;
  std::string cwd;
  std::vector<std::string> env;
  std::string user;
  std::vector<std::string> command;
  StepLimits limits;
  // Compiled seccomp program; empty means none.
  std::string seccomp_program;
  // pid 1 reads one byte here once the parent has set up its user namespace
  // (or right away); EOF means the parent died.
  int sync_fd = -1;
  // --network default: pid 1 creates the tap slirp4netns attaches to, writes
  // one byte here, then reads a second byte from sync_fd (slirp4netns is
  // ready) before going on.
  int tap_ready_fd = -1;
  // pid 1 writes one byte here after the command's execve, then closes it.
  int ready_fd = -1;
  // Close-on-exec; errors go here as one line "operation: reason".
  int status_fd = -1;
  // Become uid/gid 0 in the new namespace first (it was created by an
  // unprivileged parent whose own id is not 0 inside).
  bool become_root = false;
  // setgroups(2) is allowed in pid 1's user namespace.
  bool setgroups_allowed = true;
  // RUN --security=insecure: the bounding set is not reduced and root keeps
  // every capability of the namespace (no seccomp program either).
  bool insecure = false;
};

// The step's pid 1: assembles the root, starts the command in a nested user
// and mount namespace, forwards signals to it, reaps orphans, and exits with
// the command's status (128+N when killed by signal N). Never returns.
[[noreturn]] void StepInitMain(const StepConfig& config);

// A wait status as an exit code: the process's own, 128+N when killed by
// signal N (as shells report it), else kExitSandboxFailure.
inline int StatusToExitCode(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return kExitSandboxFailure;
}

// Writes "message\n" to `fd` and _exits with `code`. Async-signal-safe apart
// from formatting already done by the caller.
[[noreturn]] void FailFast(int fd, const std::string& message, int code);

}  // namespace longshore::sandbox

#endif  // LONGSHORE_SANDBOX_STEP_H_
