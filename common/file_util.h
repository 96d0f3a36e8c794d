// Whole-file and directory helpers for trusted paths (the worker's own state).
// Paths inside an image rootfs are hostile and must go through image/ and
// sandbox/ instead.
#ifndef LONGSHORE_COMMON_FILE_UTIL_H_
#define LONGSHORE_COMMON_FILE_UTIL_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace longshore {

absl::StatusOr<std::string> ReadFile(const std::string& path);
// Writes to `path.tmp.<pid>` and renames, so readers never see a partial file.
absl::Status WriteFileAtomic(const std::string& path, absl::string_view data,
                             int mode = 0644);
// Copies everything left to read from `in` into `out` (sendfile when the kernel
// can, read/write otherwise); the names appear in errors.
absl::Status CopyFdContents(int in, int out, const std::string& in_name,
                            const std::string& out_name);
// Copies the file `from` to `to` through `to`.tmp.<pid> and a rename, so `to`
// appears whole or not at all.
absl::Status CopyFileAtomic(const std::string& from, const std::string& to,
                            int mode = 0644);
// mkdir -p; existing directories are fine.
absl::Status MakeDirs(const std::string& path, int mode = 0755);
// rm -rf that does not follow symlinks; a missing path is OK.
absl::Status RemoveTree(const std::string& path);
// mkdtemp under `parent` with `prefix`.
absl::StatusOr<std::string> MakeTempDir(const std::string& parent,
                                        const std::string& prefix);
bool PathExists(const std::string& path);

// Names in the directory open as `dirfd` (which stays open and unmoved),
// without "." and "..", in byte order: the order every walk that must be
// reproducible (tars, checksums) uses.
absl::StatusOr<std::vector<std::string>> ListDirSorted(
    int dirfd, const std::string& display);
absl::StatusOr<std::vector<std::string>> ListDirSorted(const std::string& path);

}  // namespace longshore

#endif  // LONGSHORE_COMMON_FILE_UTIL_H_
