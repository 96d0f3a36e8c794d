// Pulls an image from a registry into the local content store.
#ifndef LONGSHORE_IMAGE_IMAGE_PULL_H_
#define LONGSHORE_IMAGE_IMAGE_PULL_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "image/content_store.h"
#include "image/oci.h"
#include "image/reference.h"
#include "image/registry_client.h"

namespace longshore::image {

struct PullOptions {
  // The platform picked from an index; linux/amd64 by default.
  Platform platform = {"amd64", "linux", "", {}, ""};
  // Layer downloads at a time.
  int parallelism = 3;
};

struct PulledImage {
  // The reference pinned to the manifest it resolved to (normalized, with
  // "@sha256:..." of the image manifest).
  Reference ref;
  Descriptor manifest;              // the image manifest (platform-selected)
  std::optional<Descriptor> index;  // when the reference named an index
  Descriptor config_descriptor;
  OciConfig config;
  std::vector<Descriptor> layers;     // lowest first
  std::vector<std::string> diff_ids;  // config.rootfs.diff_ids
};

// Resolves `ref`, then makes the manifest, the config and every layer blob
// present in `store` (blobs the store already has are not downloaded). Each
// blob is verified against its digest before it enters the store. The image
// is checked for consistency: as many layers as diff_ids, layer media types
// that are layers.
absl::StatusOr<PulledImage> PullImage(RegistryClient& client,
                                      const Reference& ref, ContentStore& store,
                                      const PullOptions& opts = {});

}  // namespace longshore::image

#endif  // LONGSHORE_IMAGE_IMAGE_PULL_H_
