// Overlay mounts made by the worker itself (for COPY, ADD and WORKDIR, and for
// read-only views of other stages). Needs a mount namespace owned by the
// worker's user namespace: the worker enters both at start-up.
#ifndef LONGSHORE_WORKER_OVERLAY_MOUNT_H_
#define LONGSHORE_WORKER_OVERLAY_MOUNT_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace longshore::worker {

class OverlayMount {
 public:
  // Mounts `lowers` (top-most first) with `upper`/`work` at `target`. With an
  // empty `upper` the mount is read-only. `empty_dir` is used as the lower when
  // `lowers` is empty (FROM scratch), since overlayfs needs one.
  static absl::StatusOr<OverlayMount> Mount(
      const std::vector<std::string>& lowers, const std::string& upper,
      const std::string& work, const std::string& target,
      const std::string& empty_dir);
  OverlayMount(OverlayMount&& other) noexcept;
  OverlayMount& operator=(OverlayMount&& other) noexcept;
  OverlayMount(const OverlayMount&) = delete;
  OverlayMount& operator=(const OverlayMount&) = delete;
  ~OverlayMount();

  const std::string& target() const { return target_; }
  // Unmounts now; the destructor does it otherwise (errors then only logged).
  absl::Status Unmount();

 private:
  explicit OverlayMount(std::string target) : target_(std::move(target)) {}
  std::string target_;
};

}  // namespace longshore::worker

#endif  // LONGSHORE_WORKER_OVERLAY_MOUNT_H_
