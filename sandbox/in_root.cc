#include "sandbox/in_root.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/errno_status.h"
#include "common/status_macros.h"

namespace longshore::sandbox {
namespace {

std::vector<std::string> Components(const std::string& path) {
  std::vector<std::string> out;
  for (absl::string_view c : absl::StrSplit(path, '/', absl::SkipEmpty())) {
    if (c == ".") continue;
    out.emplace_back(c);
  }
  return out;
}

}  // namespace

std::string FdPath(int fd) { return absl::StrCat("/proc/self/fd/", fd); }

absl::StatusOr<UniqueFd> OpenInRoot(int root_fd, const std::string& path,
                                    int flags, mode_t mode, int* err) {
  struct open_how how = {};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
  how.mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  std::string rel = path;
  while (!rel.empty() && rel[0] == '/') rel.erase(0, 1);
  if (rel.empty()) rel = ".";
  long fd;
  do {
    fd = ::syscall(SYS_openat2, root_fd, rel.c_str(), &how, sizeof(how));
    // EAGAIN: a concurrent rename raced the lookup; the kernel asks to retry.
  } while (fd < 0 && (errno == EINTR || errno == EAGAIN));
  if (fd < 0) {
    if (err != nullptr) *err = errno;
    return ErrnoStatus(errno, "openat2(%s)", path);
  }
  return UniqueFd(static_cast<int>(fd));
}

absl::StatusOr<UniqueFd> MakeDirsInRoot(int root_fd, const std::string& path,
                                        mode_t mode, uid_t uid, gid_t gid,
                                        std::vector<std::string>* created) {
  const std::vector<std::string> parts = Components(path);
  UniqueFd current;
  { ASSIGN_OR_RETURN(current, OpenInRoot(root_fd, "/", O_PATH | O_DIRECTORY)); }
  std::string prefix;
  for (const std::string& part : parts) {
    const std::string next = absl::StrCat(prefix, "/", part);
    int err = 0;
    absl::StatusOr<UniqueFd> fd =
        OpenInRoot(root_fd, next, O_PATH | O_DIRECTORY, 0, &err);
    if (!fd.ok() && err == ENOENT) {
      // `current` is the resolved parent, so the new directory lands inside
      // the root even when `prefix` went through symlinks.
      if (::mkdirat(current.get(), part.c_str(), mode) != 0 &&
          errno != EEXIST) {
        return ErrnoStatus(errno, "mkdirat(%s)", next);
      }
      if (uid != static_cast<uid_t>(-1) &&
          ::fchownat(current.get(), part.c_str(), uid, gid,
                     AT_SYMLINK_NOFOLLOW) != 0) {
        return ErrnoStatus(errno, "fchownat(%s, %d, %d)", next, uid, gid);
      }
      if (created != nullptr) created->push_back(next);
      fd = OpenInRoot(root_fd, next, O_PATH | O_DIRECTORY);
    }
    if (!fd.ok()) return fd.status();
    current = std::move(*fd);
    prefix = next;
  }
  return current;
}

absl::StatusOr<UniqueFd> MakeFileInRoot(int root_fd, const std::string& path,
                                        std::vector<std::string>* created) {
  int err = 0;
  absl::StatusOr<UniqueFd> fd = OpenInRoot(root_fd, path, O_PATH, 0, &err);
  if (fd.ok() || err != ENOENT) return fd;
  std::vector<std::string> parts = Components(path);
  if (parts.empty()) return absl::InvalidArgumentError("empty path");
  const std::string base = parts.back();
  parts.pop_back();
  ASSIGN_OR_RETURN(
      UniqueFd parent,
      MakeDirsInRoot(root_fd, absl::StrCat("/", absl::StrJoin(parts, "/")),
                     0755, static_cast<uid_t>(-1), static_cast<gid_t>(-1),
                     created));
  // O_NOFOLLOW|O_EXCL: a dangling symlink in the image is not followed out.
  UniqueFd file(::openat(parent.get(), base.c_str(),
                         O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                         0644));
  if (!file) return ErrnoStatus(errno, "openat(%s, O_CREAT)", path);
  if (created != nullptr) created->push_back(path);
  return OpenInRoot(root_fd, path, O_PATH);
}

}  // namespace longshore::sandbox
