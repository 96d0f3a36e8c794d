// RUN --mount for the sandbox: turns each mount of a step into
// longshore-sandbox flags (--bind SRC:DST[:rw], --tmpfs DST[:BYTES]) over
// directories the worker owns: persistent cache dirs (per worker, keyed by id,
// with BuildKit's sharing modes), read-only binds of the build context or of
// another stage's root.
#ifndef LONGSHORE_WORKER_RUN_MOUNTS_H_
#define LONGSHORE_WORKER_RUN_MOUNTS_H_

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/unique_fd.h"
#include "dockerfile/stage_evaluator.h"

namespace longshore::worker {

// Holds what the step's mounts need while it runs (cache locks); release by
// destruction after the step.
struct PreparedMounts {
  std::vector<std::string> sandbox_args;
  std::vector<UniqueFd> locks;
  std::vector<std::string> temp_dirs;  // removed by the caller afterwards
};

struct MountContext {
  std::string cache_root;   // <work>/cache/mounts
  std::string scratch_dir;  // this step's temp space
  std::string context_dir;  // the build context
  // A directory holding the root of stage `index` (mounted read-only by the
  // caller for as long as the step runs).
  std::function<absl::StatusOr<std::string>(int index)> stage_root;
  // The build's secrets by id (--secret), for type=secret.
  std::map<std::string, std::string> secrets;
};

// Errors name the mount (`RUN --mount=type=...,target=...`) and what is wrong.
absl::StatusOr<PreparedMounts> PrepareRunMounts(
    const std::vector<dockerfile::MountSpec>& mounts, const MountContext& ctx);

// `source` (relative, from a mount's source=) resolved inside `root` with
// symlinks followed inside it; the host path, which never leaves `root`.
absl::StatusOr<std::string> ResolveInside(const std::string& root,
                                          const std::string& source);

}  // namespace longshore::worker

#endif  // LONGSHORE_WORKER_RUN_MOUNTS_H_
