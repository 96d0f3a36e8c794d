// `longshore build --platform a,b --push`: one build per platform, each
// pushed by digest (push-by-digest=true), then combined here into one OCI
// index pushed under every -t name, as buildx does for a multi-platform
// build.
#ifndef LONGSHORE_CLIENT_PLATFORM_INDEX_H_
#define LONGSHORE_CLIENT_PLATFORM_INDEX_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "image/oci.h"

namespace longshore::client {

struct PlatformImage {
  std::string platform;         // "linux/arm64", "linux/arm/v7"
  std::string manifest_digest;  // what its build pushed by digest
};

// The index of `manifests` (each with its platform), in the order given.
image::Index MakePlatformIndex(const std::vector<image::Descriptor>& manifests,
                               const std::vector<std::string>& platforms);

// Looks each image up in every tag's repository (its descriptor: media type
// and size), then pushes the index under each tag. The registry's
// credentials come from the caller's docker config, as docker's would;
// loopback registries speak plain HTTP. Returns the index digest.
absl::StatusOr<std::string> PushPlatformIndex(
    const std::vector<std::string>& tags,
    const std::vector<PlatformImage>& images);

}  // namespace longshore::client

#endif  // LONGSHORE_CLIENT_PLATFORM_INDEX_H_
