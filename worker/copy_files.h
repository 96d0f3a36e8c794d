// COPY and ADD: copying files from the build context (or another stage's root)
// into an image root, with Docker's rules for sources, destinations and owners.
#ifndef LONGSHORE_WORKER_COPY_FILES_H_
#define LONGSHORE_WORKER_COPY_FILES_H_

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace longshore::worker {

struct CopyOptions {
  // Root the sources are relative to (the context, or a stage's rootfs); paths
  // cannot leave it.
  int src_root_fd = -1;
  // As written after expansion; may hold wildcards (* ? [..]).
  std::vector<std::string> sources;
  // Absolute inside the destination root; a trailing '/' means "a directory".
  std::string dest;
  int dst_root_fd = -1;
  // --chown; absent means 0:0 (Docker's rule for COPY and ADD).
  uid_t uid = 0;
  gid_t gid = 0;
  // Whether --chown was given (ADD keeps an archive's owners otherwise).
  bool chown_given = false;
  // --chmod, applied to every copied file and directory.
  std::optional<mode_t> mode;
  // ADD: local tar archives (plain or compressed) are unpacked into dest.
  bool add = false;
  // What the error messages call the instruction ("COPY" or "ADD").
  std::string instruction = "COPY";
};

// Copies per Docker's rules: a directory source copies its contents; several
// sources (or a wildcard) need a destination ending in '/'; a single file lands
// at `dest` unless it names an existing directory or ends in '/'. Files keep
// mode and mtime; everything new is owned by uid:gid. Symlinks inside sources
// are copied as symlinks; a top-level source symlink is followed inside its
// root.
absl::Status CopyFiles(const CopyOptions& opts);

// Content checksum of the sources for the cache key: relative paths, types,
// modes, link targets and file bytes of everything the sources match, in sorted
// order. Mtimes and owners do not count. NotFound names a source that matches
// nothing.
absl::StatusOr<std::string> ChecksumSources(
    int src_root_fd, const std::vector<std::string>& sources);

// Expands wildcards of one source against the root; a source without wildcards
// is returned cleaned (and must exist). Results are sorted, relative, cleaned.
absl::StatusOr<std::vector<std::string>> ExpandSource(int src_root_fd,
                                                      const std::string& src);

}  // namespace longshore::worker

#endif  // LONGSHORE_WORKER_COPY_FILES_H_
