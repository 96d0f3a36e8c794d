#include "worker/in_root.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <vector>

#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/errno_status.h"
#include "common/status_macros.h"

namespace longshore::worker {

std::string CleanPath(const std::string& path) {
  bool absolute = !path.empty() && path[0] == '/';
  std::vector<std::string> out;
  for (absl::string_view part : absl::StrSplit(path, '/')) {
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      if (!out.empty()) out.pop_back();
      continue;
    }
    out.emplace_back(part);
  }
  std::string joined = absl::StrJoin(out, "/");
  if (absolute) return "/" + joined;
  return joined.empty() ? "." : joined;
}

std::pair<std::string, std::string> SplitParent(const std::string& path) {
  std::string clean = CleanPath(path);
  if (clean == "/" || clean == ".") return {clean, ""};
  size_t slash = clean.rfind('/');
  if (slash == std::string::npos) return {".", clean};
  if (slash == 0) return {"/", clean.substr(1)};
  return {clean.substr(0, slash), clean.substr(slash + 1)};
}

absl::StatusOr<UniqueFd> MakeDirsInRoot(int root_fd, const std::string& path,
                                        mode_t mode, uid_t uid, gid_t gid) {
  std::vector<std::string> parts =
      absl::StrSplit(CleanPath("/" + path), '/', absl::SkipEmpty());
  // Dangling symlinks on the way are followed (inside the root) and their
  // targets created, as a process chrooted there would see it; bounded like
  // the kernel's ELOOP.
  int links = 0;
  size_t i = 0;
  ASSIGN_OR_RETURN(UniqueFd dir,
                   OpenInRoot(root_fd, "/", O_PATH | O_DIRECTORY));
  std::string sofar;
  while (i < parts.size()) {
    std::string next_path = sofar + "/" + parts[i];
    auto next = OpenInRoot(root_fd, next_path, O_PATH | O_DIRECTORY);
    if (next.ok()) {
      dir = std::move(*next);
      sofar = next_path;
      ++i;
      continue;
    }
    if (next.status().code() != absl::StatusCode::kNotFound) {
      // ENOTDIR: a file where a directory must go.
      return next.status();
    }
    const std::string& name = parts[i];
    char target[4096];
    ssize_t n = readlinkat(dir.get(), name.c_str(), target, sizeof(target) - 1);
    if (n >= 0) {
      if (++links > 40) return ErrnoStatus(ELOOP, "mkdir(%s)", next_path);
      target[n] = '\0';
      std::string resolved =
          target[0] == '/' ? std::string(target) : sofar + "/" + target;
      std::vector<std::string> rest(parts.begin() + i + 1, parts.end());
      parts = absl::StrSplit(CleanPath(resolved), '/', absl::SkipEmpty());
      parts.insert(parts.end(), rest.begin(), rest.end());
      i = 0;
      sofar.clear();
      ASSIGN_OR_RETURN(dir, OpenInRoot(root_fd, "/", O_PATH | O_DIRECTORY));
      continue;
    }
    if (mkdirat(dir.get(), name.c_str(), mode) != 0 && errno != EEXIST) {
      return ErrnoStatus(errno, "mkdir(%s)", next_path);
    }
    ASSIGN_OR_RETURN(UniqueFd created,
                     OpenInRoot(root_fd, next_path, O_RDONLY | O_DIRECTORY));
    if (fchown(created.get(), uid, gid) != 0) {
      return ErrnoStatus(errno, "chown(%s)", next_path);
    }
    // mkdir applies the umask; set the mode exactly.
    if (fchmod(created.get(), mode) != 0) {
      return ErrnoStatus(errno, "chmod(%s)", next_path);
    }
    dir = std::move(created);
    sofar = next_path;
    ++i;
  }
  return dir;
}

}  // namespace longshore::worker
