#include "image/image_pull.h"

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "image/parallel_for.h"

namespace longshore::image {

absl::StatusOr<PulledImage> PullImage(RegistryClient& client,
                                      const Reference& ref, ContentStore& store,
                                      const PullOptions& opts) {
  ASSIGN_OR_RETURN(ResolvedManifest resolved,
                   client.ResolveManifest(ref, opts.platform));
  const Manifest& m = resolved.manifest;
  if (m.layers.size() != resolved.config.rootfs.diff_ids.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        ref.Normalized(), ": manifest ", resolved.descriptor.digest, " has ",
        m.layers.size(), " layers but its config lists ",
        resolved.config.rootfs.diff_ids.size(), " diff_ids"));
  }
  for (const Descriptor& l : m.layers) {
    auto c = LayerCompression(l.media_type);
    if (!c.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          ref.Normalized(), ": layer ", l.digest, ": ", c.status().message()));
    }
  }

  // Manifests and config first: they are small, and the store then holds the
  // whole image description even while layers are still arriving.
  if (resolved.index) {
    ASSIGN_OR_RETURN(std::string d, store.Put(resolved.index_bytes));
    if (d != resolved.index->digest) {
      return absl::InternalError("index digest changed on the way to disk");
    }
  }
  ASSIGN_OR_RETURN(std::string md, store.Put(resolved.bytes));
  ASSIGN_OR_RETURN(std::string cd, store.Put(resolved.config_bytes));
  if (md != resolved.descriptor.digest || cd != m.config.digest) {
    return absl::InternalError("digest changed on the way to disk");
  }

  RETURN_IF_ERROR(ParallelFor(
      static_cast<int>(m.layers.size()), opts.parallelism,
      [&](int i) { return client.FetchBlob(ref, m.layers[i], store); }));

  PulledImage out;
  out.ref = ref;
  out.ref.digest = resolved.descriptor.digest;
  out.manifest = resolved.descriptor;
  out.index = resolved.index;
  out.config_descriptor = m.config;
  out.config = std::move(resolved.config);
  out.layers = m.layers;
  out.diff_ids = out.config.rootfs.diff_ids;
  LS_LOG(DEBUG) << "pulled " << ref.Normalized() << " (" << out.manifest.digest
                << ", " << out.layers.size() << " layers)";
  return out;
}

}  // namespace longshore::image
