#include "worker/overlay_mount.h"

#include <errno.h>
#include <sys/mount.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/errno_status.h"
#include "common/log.h"

namespace longshore::worker {
namespace {

// overlayfs splits lowerdir on ':' and ','; escape them with a backslash.
std::string EscapeDir(const std::string& dir) {
  std::string out;
  for (char c : dir) {
    if (c == ':' || c == ',' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

}  // namespace

absl::StatusOr<OverlayMount> OverlayMount::Mount(
    const std::vector<std::string>& lowers, const std::string& upper,
    const std::string& work, const std::string& target,
    const std::string& empty_dir) {
  std::vector<std::string> escaped;
  for (const auto& l : lowers) escaped.push_back(EscapeDir(l));
  if (escaped.empty()) escaped.push_back(EscapeDir(empty_dir));
  if (upper.empty() && escaped.size() == 1) {
    // A single read-only layer: overlayfs wants two lowers without an upper.
    escaped.push_back(EscapeDir(empty_dir));
  }
  // userxattr: the only overlay flavour a user namespace may mount; whiteouts
  // are 0/0 character devices and opaque dirs carry user.overlay.opaque.
  std::string opts =
      absl::StrCat("userxattr,lowerdir=", absl::StrJoin(escaped, ":"));
  if (!upper.empty()) {
    absl::StrAppend(&opts, ",upperdir=", EscapeDir(upper),
                    ",workdir=", EscapeDir(work));
  }
  unsigned long flags = MS_NODEV | MS_NOSUID;
  if (upper.empty()) flags |= MS_RDONLY;
  if (mount("overlay", target.c_str(), "overlay", flags, opts.c_str()) != 0) {
    return ErrnoStatus(errno, "mount(overlay, %s, %s)", target, opts);
  }
  return OverlayMount(target);
}

OverlayMount::OverlayMount(OverlayMount&& other) noexcept
    : target_(std::move(other.target_)) {
  other.target_.clear();
}

OverlayMount& OverlayMount::operator=(OverlayMount&& other) noexcept {
  if (this != &other) {
    Unmount().IgnoreError();
    target_ = std::move(other.target_);
    other.target_.clear();
  }
  return *this;
}

OverlayMount::~OverlayMount() {
  absl::Status s = Unmount();
  if (!s.ok()) LS_LOG(ERROR) << s;
}

absl::Status OverlayMount::Unmount() {
  if (target_.empty()) return absl::OkStatus();
  std::string t = std::move(target_);
  target_.clear();
  if (umount2(t.c_str(), 0) != 0) {
    int err = errno;
    // Something still holds it (an open fd elsewhere): detach so it goes away
    // once released rather than leaking a mount.
    if (umount2(t.c_str(), MNT_DETACH) == 0) return absl::OkStatus();
    return ErrnoStatus(err, "umount(%s)", t);
  }
  return absl::OkStatus();
}

}  // namespace longshore::worker
