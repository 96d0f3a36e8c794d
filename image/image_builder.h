// Assembles an image from its config and layers: writes the config blob and the
// manifest blob into a ContentStore.
#ifndef LONGSHORE_IMAGE_IMAGE_BUILDER_H_
#define LONGSHORE_IMAGE_IMAGE_BUILDER_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "image/content_store.h"
#include "image/oci.h"

namespace longshore::image {

struct ImageWriteOptions {
  // Docker schema 2 media types for manifest and config (layers keep theirs).
  bool docker_media_types = false;
  // Manifest annotations (OCI only; Docker manifests have none).
  std::map<std::string, std::string> annotations;
};

struct WrittenImage {
  Descriptor manifest;  // what a tag or index.json points at
  Descriptor config;
};

// Writes `config` and a manifest over `layers` (in order, lowest first) into
// `store`. The layers' blobs must already be in the store and their count must
// match config.rootfs.diff_ids. Same inputs, same digests.
absl::StatusOr<WrittenImage> WriteImage(ContentStore& store,
                                        const OciConfig& config,
                                        const std::vector<Descriptor>& layers,
                                        const ImageWriteOptions& opts = {});

}  // namespace longshore::image

#endif  // LONGSHORE_IMAGE_IMAGE_BUILDER_H_
