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

}  // namespace longshore::client

#endif  // LONGSHORE_CLIENT_OUTPUT_WRITER_H_
