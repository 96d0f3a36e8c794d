// Path resolution inside an image root that may hold hostile symlinks: every
// lookup goes through openat2(RESOLVE_IN_ROOT), so `..` and absolute symlinks
// stay inside the root, as they would for a process chrooted there.
#ifndef LONGSHORE_WORKER_IN_ROOT_H_
#define LONGSHORE_WORKER_IN_ROOT_H_

#include <sys/types.h>

#include <string>

#include "absl/status/statusor.h"
#include "common/unique_fd.h"
#include "sandbox/in_root.h"

namespace longshore::worker {

// openat2(root_fd, path, flags, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS): the
// sandbox's, so the worker and the sandbox resolve image paths alike.
using sandbox::OpenInRoot;

// Creates every missing directory of `path` (absolute, inside the root) with
// `mode` and `uid:gid`, resolving existing components (symlinks too) inside the
// root. Returns the final directory, opened O_PATH|O_DIRECTORY.
absl::StatusOr<UniqueFd> MakeDirsInRoot(int root_fd, const std::string& path,
                                        mode_t mode, uid_t uid, gid_t gid);

// Splits "/a/b/c" into ("/a/b", "c"); "/" gives ("/", "").
std::pair<std::string, std::string> SplitParent(const std::string& path);

// Lexically cleans an absolute or relative path ("a/./b/../c" -> "a/c"); `..`
// never climbs above the start.
std::string CleanPath(const std::string& path);

}  // namespace longshore::worker

#endif  // LONGSHORE_WORKER_IN_ROOT_H_
