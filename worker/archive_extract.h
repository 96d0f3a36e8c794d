// ADD of a local tar archive (plain, gzip, bzip2, xz or zstd): its entries are
// extracted into the destination directory inside the image root, every path
// resolved in the root so the archive cannot write outside it.
#ifndef LONGSHORE_WORKER_ARCHIVE_EXTRACT_H_
#define LONGSHORE_WORKER_ARCHIVE_EXTRACT_H_

#include <sys/types.h>

#include <optional>
#include <string>

#include "absl/status/status.h"

namespace longshore::worker {

struct ArchiveExtractOptions {
  // --chown applies to every entry; otherwise the archive's owners are kept.
  std::optional<uid_t> uid;
  std::optional<gid_t> gid;
  // Bound on the bytes of regular files (a hostile "tar bomb"); 0: none.
  int64_t max_bytes = 0;
};

// True when the open file starts like an archive ADD extracts.
bool LooksLikeArchive(int fd);

// Extracts the archive open as `archive_fd` (named `display` in errors) into
// `dest_dir` (absolute, created if missing) inside the root `root_fd`.
// Entries named with `..` or absolute paths are cleaned into the destination
// the way `tar` in a chroot would place them; links resolve inside the root.
absl::Status ExtractArchiveInRoot(int archive_fd, const std::string& display,
                                  int root_fd, const std::string& dest_dir,
                                  const ArchiveExtractOptions& opts);

}  // namespace longshore::worker

#endif  // LONGSHORE_WORKER_ARCHIVE_EXTRACT_H_
