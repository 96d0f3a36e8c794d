// WORKDIR: the directory made in the step's root, owned by the stage's user.
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "worker/build_run.h"
#include "worker/in_root.h"
#include "worker/passwd.h"

namespace longshore::worker {
namespace build_internal {

absl::Status BuildRun::ExecWorkdir(const std::string& path,
                                   const StageResult& r,
                                   const std::string& step_dir) {
  ASSIGN_OR_RETURN(StepRoot dst, MountStepRoot(r, step_dir));
  const UniqueFd& root = dst.fd;
  uid_t uid = 0;
  gid_t gid = 0;
  if (!r.config.user.empty()) {
    auto u = ResolveUserInRoot(root.get(), r.config.user);
    if (u.ok()) {
      uid = u->uid;
      gid = u->gid;
    }
  }
  auto dir = MakeDirsInRoot(root.get(), path, 0755, uid, gid);
  if (!dir.ok()) {
    return absl::Status(
        dir.status().code(),
        absl::StrCat("WORKDIR ", path, ": ", dir.status().message()));
  }
  dir->reset();
  return dst.Unmount();
}

}  // namespace build_internal
}  // namespace longshore::worker
