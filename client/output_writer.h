// Writes a client-side output (`type=oci`, `type=docker`) fetched from the
// farm.
#ifndef LONGSHORE_CLIENT_OUTPUT_WRITER_H_
#define LONGSHORE_CLIENT_OUTPUT_WRITER_H_

#include <string>

#include "absl/status/status.h"

namespace longshore::client {

// Moves the downloaded tar at `tar_path` into place: renamed (or copied) to
// `dest` when the output is a tar, or extracted into the directory `dest` when
// not. The destination appears whole or not at all: a failed extraction removes
// what it wrote. Extraction refuses absolute paths, `..` and links leaving
// `dest`.
absl::Status PlaceOutput(const std::string& tar_path, const std::string& dest,
                         bool as_tar);

// `type=local`: extracts the filesystem tar into the directory `dest`
// (created if missing), as buildx's local exporter does: files already there
// are replaced, others left alone. Every file is the caller's (owners in the
// tar are not applied). Refuses absolute paths, `..` and writes through
// symlinks.
absl::Status PlaceLocalOutput(const std::string& tar_path,
                              const std::string& dest);

// `dest=-`: copies the file at `path` to the descriptor `fd` (stdout).
absl::Status CopyToFd(const std::string& path, int fd);

}  // namespace longshore::client

#endif  // LONGSHORE_CLIENT_OUTPUT_WRITER_H_
