#include "image/image_builder.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace longshore::image {

absl::StatusOr<WrittenImage> WriteImage(ContentStore& store,
                                        const OciConfig& config,
                                        const std::vector<Descriptor>& layers,
                                        const ImageWriteOptions& opts) {
  if (layers.size() != config.rootfs.diff_ids.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "image has ", layers.size(), " layers but its config lists ",
        config.rootfs.diff_ids.size(), " diff_ids"));
  }
  for (const Descriptor& l : layers) {
    RETURN_IF_ERROR(LayerCompression(l.media_type).status());
    if (!store.Has(l.digest)) {
      return absl::NotFoundError(
          absl::StrCat("layer blob ", l.digest, " is not in the store"));
    }
    if (opts.docker_media_types && l.media_type == kMediaTypeOciLayerZstd) {
      return absl::InvalidArgumentError(
          "zstd layers need OCI media types; Docker schema 2 has none");
    }
  }
  std::string config_json = ToJson(config);
  ASSIGN_OR_RETURN(std::string config_digest, store.Put(config_json));

  WrittenImage out;
  out.config.media_type =
      opts.docker_media_types ? kMediaTypeDockerConfig : kMediaTypeOciConfig;
  out.config.digest = config_digest;
  out.config.size = static_cast<int64_t>(config_json.size());

  Manifest m;
  m.media_type = opts.docker_media_types ? kMediaTypeDockerManifest
                                         : kMediaTypeOciManifest;
  m.config = out.config;
  m.layers = layers;
  if (!opts.docker_media_types) m.annotations = opts.annotations;
  std::string manifest_json = ToJson(m);
  ASSIGN_OR_RETURN(std::string manifest_digest, store.Put(manifest_json));
  out.manifest.media_type = m.media_type;
  out.manifest.digest = manifest_digest;
  out.manifest.size = static_cast<int64_t>(manifest_json.size());
  return out;
}

}  // namespace longshore::image
