// Resource limits of a step. With a delegated cgroup v2 directory the step
// gets a cgroup of its own (memory.max, pids.max); without one, rlimits stand
// in (see README.md, "Limits", for what each fallback does and does not
// cover). The disk limit is enforced by pid 1 measuring the upper directory.
#ifndef LONGSHORE_SANDBOX_LIMITS_H_
#define LONGSHORE_SANDBOX_LIMITS_H_

#include <cstdint>
#include <set>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/unique_fd.h"

namespace longshore::sandbox {

// 0 means no limit.
// One `--ulimit`: a resource's soft and hard limits (RLIM_INFINITY for
// unlimited).
struct Ulimit {
  int resource = -1;
  uint64_t soft = 0;
  uint64_t hard = 0;
};

struct StepLimits {
  // --ulimit, applied after the limits below and bounded by them: a hard
  // limit is never raised, only lowered (a plain array: the child reads it
  // after fork).
  static constexpr int kMaxUlimits = 16;
  Ulimit ulimits[kMaxUlimits];
  int ulimit_count = 0;
  uint64_t memory_bytes = 0;
  uint64_t pids = 0;
  uint64_t disk_bytes = 0;
  uint64_t nofile = 0;
  // Enforced by the step's cgroup (memory.max, pids.max); the rlimit
  // stand-in for that one is off.
  bool memory_in_cgroup = false;
  bool pids_in_cgroup = false;
};

// Sets the command's rlimits (soft = hard, so the step cannot raise them
// back: that needs CAP_SYS_RESOURCE in the initial user namespace):
// RLIMIT_CORE 0 always; RLIMIT_NOFILE when set; RLIMIT_FSIZE = disk limit;
// RLIMIT_AS = memory and RLIMIT_NPROC = pids unless the cgroup enforces them.
// Returns 0 or an errno value. Async-signal-safe.
int ApplyCommandRlimits(const StepLimits& limits);

// Run by pid 1 right before it creates the command's user namespace, when
// pids are limited without a cgroup. Since Linux 5.14 RLIMIT_NPROC is counted
// per user namespace (ucounts): every task of the command's namespace is also
// charged to pid 1's (namespace, uid) and checked there against the
// RLIMIT_NPROC pid 1 had when it created the namespace. Setting it to pids + 1
// (pid 1 itself) caps the step's tasks, whatever uids they take. Returns 0 or
// errno.
int SetNamespaceTaskLimit(uint64_t pids);

// Bytes allocated to everything under `dir_fd` (st_blocks, hard links counted
// once), without following symlinks. Stops early once the total passes
// `stop_above` (0: never). Directories nested deeper than kMaxDiskWalkDepth
// make it fail, so depth cannot hide data from the limit.
inline constexpr int kMaxDiskWalkDepth = 512;
absl::StatusOr<uint64_t> DiskUsage(int dir_fd, uint64_t stop_above);

// Where the unified (cgroup v2) hierarchy is mounted, from
// /proc/self/mountinfo: /sys/fs/cgroup on a v2 host, /sys/fs/cgroup/unified on
// a hybrid one; "" when it is not mounted.
std::string Cgroup2MountPoint();

// Writes `value` to the cgroup control file `path`.
absl::Status WriteCgroupFile(const std::string& path, const std::string& value);

// The controllers a cgroup.controllers or cgroup.subtree_control file lists.
absl::StatusOr<std::set<std::string>> ReadControllers(const std::string& path);

// Writes the limits whose controller is in `delegated` into the cgroup
// directory `dir`: memory.max with memory.swap.max 0 and memory.oom.group 1,
// pids.max = pids + 1 (pid 1 included). Sets limits->memory_in_cgroup /
// pids_in_cgroup to what it wrote.
absl::Status WriteCgroupLimits(const std::string& dir,
                               const std::set<std::string>& delegated,
                               StepLimits* limits);

// A step's own cgroup, a child of a delegated cgroup v2 directory. Pid 1 is
// born in it (clone3 CLONE_INTO_CGROUP) and its cgroup namespace is rooted
// there, so the step sees its own cgroup as "/" and its own limits.
class StepCgroup {
 public:
  // Creates `parent`/`name`. Each limit in `limits` whose controller `parent`
  // delegates (its cgroup.subtree_control lists it) is written there:
  // memory.max (with memory.swap.max 0 and memory.oom.group 1), pids.max;
  // `limits->memory_in_cgroup` / `pids_in_cgroup` say which, so the caller
  // falls back to rlimits for the others.
  static absl::StatusOr<StepCgroup> Create(const std::string& parent,
                                           const std::string& name,
                                           StepLimits* limits);
  StepCgroup(StepCgroup&& other) noexcept;
  StepCgroup& operator=(StepCgroup&&) = delete;
  // Removes the cgroup (it must be empty by then).
  ~StepCgroup();

  // An O_DIRECTORY fd for clone3(CLONE_INTO_CGROUP).
  int fd() const { return fd_.get(); }
  const std::string& path() const { return path_; }
  // True when the kernel's OOM killer acted in the cgroup.
  bool OomKilled() const;

 private:
  StepCgroup(std::string path, UniqueFd fd)
      : path_(std::move(path)), fd_(std::move(fd)) {}
  std::string path_;
  UniqueFd fd_;
};

}  // namespace longshore::sandbox

#endif  // LONGSHORE_SANDBOX_LIMITS_H_
