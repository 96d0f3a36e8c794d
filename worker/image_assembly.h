// Turns a finished stage (the Dockerfile's config, layers and history) into an
// OCI image config and manifest in the content store.
#ifndef LONGSHORE_WORKER_IMAGE_ASSEMBLY_H_
#define LONGSHORE_WORKER_IMAGE_ASSEMBLY_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "dockerfile/image_config.h"
#include "image/content_store.h"
#include "image/oci.h"

namespace longshore::worker {

struct ImageInputs {
  dockerfile::ImageConfig config;
  std::vector<image::Descriptor> layers;  // bottom first
  std::vector<std::string> diff_ids;      // same order
  std::vector<image::HistoryEntry> history;
  std::string created;                        // RFC 3339
  std::map<std::string, std::string> labels;  // --label, over the Dockerfile's
  std::string architecture = "amd64";
  std::string os = "linux";
  std::string variant;
};

// The OCI image config for `in`: Docker's field semantics (Env, Cmd,
// Entrypoint, WorkingDir, User, Labels, ExposedPorts, Volumes, StopSignal,
// Healthcheck, Shell, OnBuild), rootfs diff_ids and history.
image::OciConfig ToOciConfig(const ImageInputs& in);

// The Dockerfile view of a base image's config (the inverse of ToOciConfig's
// mapping), so a stage built on it starts from its Env, Cmd, User, OnBuild...
dockerfile::ImageConfig FromOciConfig(const image::OciConfig& config);

// Writes the config and manifest blobs and returns the manifest's descriptor.
absl::StatusOr<image::Descriptor> StoreImage(image::ContentStore* store,
                                             const ImageInputs& in);

}  // namespace longshore::worker

#endif  // LONGSHORE_WORKER_IMAGE_ASSEMBLY_H_
