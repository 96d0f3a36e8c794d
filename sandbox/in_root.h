// Path resolution inside a root directory that may be hostile: every path
// goes through openat2(2) with RESOLVE_IN_ROOT, so symlinks (absolute or with
// "..") resolve as if the root were "/", and never through magic links such as
// /proc/self/fd/N.
#ifndef LONGSHORE_SANDBOX_IN_ROOT_H_
#define LONGSHORE_SANDBOX_IN_ROOT_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/unique_fd.h"

namespace longshore::sandbox {

// openat2(root_fd, path, flags, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS).
// `display` names the path in errors (defaults to `path`). On failure the
// errno is also left in `*err` when given.
absl::StatusOr<UniqueFd> OpenInRoot(int root_fd, const std::string& path,
                                    int flags, mode_t mode = 0,
                                    int* err = nullptr);

// mkdir -p of `path` inside the root. Directories it creates get `mode` and,
// when uid/gid are not -1, that owner; their root-relative paths are appended
// to `created` (outermost first) when it is given. Returns an O_PATH fd of the
// directory.
absl::StatusOr<UniqueFd> MakeDirsInRoot(int root_fd, const std::string& path,
                                        mode_t mode, uid_t uid, gid_t gid,
                                        std::vector<std::string>* created);

// Makes sure `path` exists inside the root as a mount point for a file
// (creating an empty 0644 file and its parents when missing, recorded in
// `created`). Returns an O_PATH fd of it.
absl::StatusOr<UniqueFd> MakeFileInRoot(int root_fd, const std::string& path,
                                        std::vector<std::string>* created);

// "/proc/self/fd/N": a path the mount(2) family resolves to the fd's file.
std::string FdPath(int fd);

}  // namespace longshore::sandbox

#endif  // LONGSHORE_SANDBOX_IN_ROOT_H_
