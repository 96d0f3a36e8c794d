// Everything the worker process does before its first thread: refuse real root
// (unless told), enter its user namespace and a private mount namespace,
// prepare the work dir, find the sandbox and compile the seccomp filter once.
#ifndef LONGSHORE_WORKER_WORKER_SETUP_H_
#define LONGSHORE_WORKER_WORKER_SETUP_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace longshore::worker {

struct WorkerSetupOptions {
  std::string work_dir;
  bool allow_root = false;
  std::string sandbox_flag;  // --sandbox; empty searches beside the binary
  bool no_seccomp = false;
};

struct WorkerEnvironment {
  std::string work_dir;        // absolute
  std::string sandbox_binary;  // absolute
  std::string seccomp_bpf;     // compiled filter file, empty with no_seccomp
  pid_t original_pid = 0;      // pid of the process the operator started
  // A delegated cgroup v2 directory steps get cgroups under; empty when the
  // worker's cgroup is not delegated.
  std::string cgroup_parent;
};

// When this process's cgroup v2 directory is delegated (writable, with its
// cgroup.procs and cgroup.subtree_control), moves the processes `own` to a
// leaf "worker", enables the memory and pids controllers it has for its
// children (when no other process is left in it), and returns the directory;
// otherwise returns "". Either way `report` gets the line the worker logs:
// where steps run and how memory and pids limits are enforced.
absl::StatusOr<std::string> PrepareStepCgroups(const std::vector<pid_t>& own,
                                               std::string* report);

// Must run before any thread exists. Returns only in the re-executed worker,
// inside its namespaces; the process the operator started waits there and exits
// with the worker's status.
absl::StatusOr<WorkerEnvironment> PrepareWorkerProcess(
    const WorkerSetupOptions& opts);

// Where longshore-sandbox is: `flag` when set, else $LONGSHORE_SANDBOX, else
// beside `self_exe`, else ../sandbox/ from it (Bazel's bazel-bin layout).
absl::StatusOr<std::string> FindSandboxBinary(const std::string& flag,
                                              const std::string& self_exe);

}  // namespace longshore::worker

#endif  // LONGSHORE_WORKER_WORKER_SETUP_H_
