// The overlays a step sees: the stage's layers as lowers, the step's upper.
#include <fcntl.h>

#include "common/errno_status.h"
#include "common/file_util.h"
#include "common/status_macros.h"
#include "worker/build_run.h"

namespace longshore::worker {
namespace build_internal {

absl::StatusOr<BuildRun::StepRoot> BuildRun::MountStepRoot(
    const StageResult& r, const std::string& step_dir) {
  std::string merged = step_dir + "/merged";
  RETURN_IF_ERROR(MakeDirs(merged, 0755));
  ASSIGN_OR_RETURN(OverlayMount m,
                   OverlayMount::Mount(Lowers(r), step_dir + "/upper",
                                       step_dir + "/work", merged, EmptyDir()));
  UniqueFd fd(open(merged.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return ErrnoStatus(errno, "open(%s)", merged);
  return StepRoot{std::move(m), std::move(fd)};
}

std::vector<std::string> BuildRun::Lowers(const StageResult& r) const {
  std::vector<std::string> lowers;
  for (auto it = r.layers.rbegin(); it != r.layers.rend(); ++it) {
    lowers.push_back(it->snapshot->path());
  }
  return lowers;
}

std::string BuildRun::EmptyDir() {
  std::string d = tmp_ + "/empty";
  MakeDirs(d, 0755).IgnoreError();
  return d;
}

}  // namespace build_internal
}  // namespace longshore::worker
