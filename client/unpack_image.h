// `longshore __unpack-image LAYOUT[:REF] CACHE_DIR`: unpacks an image from an
// OCI image layout into per-layer snapshot directories (overlay lower form),
// once per diffID, and prints them top-most first, one per line. It serves
// `longshore-sandbox --image`, so a user can rerun a step of a built image by
// hand without the farm.
#ifndef LONGSHORE_CLIENT_UNPACK_IMAGE_H_
#define LONGSHORE_CLIENT_UNPACK_IMAGE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace longshore::client {

// The snapshot directories of the image, top-most layer first. REF selects
// the manifest by its org.opencontainers.image.ref.name (or
// io.containerd.image.name); without one the layout must hold one image.
absl::StatusOr<std::vector<std::string>> UnpackImageLayout(
    const std::string& layout_and_ref, const std::string& cache_dir);

int RunUnpackImage(const std::vector<std::string>& args);

}  // namespace longshore::client

#endif  // LONGSHORE_CLIENT_UNPACK_IMAGE_H_
