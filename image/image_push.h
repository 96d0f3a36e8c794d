// Pushes an image from the local content store to one or more references.
#ifndef LONGSHORE_IMAGE_IMAGE_PUSH_H_
#define LONGSHORE_IMAGE_IMAGE_PUSH_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "image/content_store.h"
#include "image/oci.h"
#include "image/reference.h"
#include "image/registry_client.h"

namespace longshore::image {

struct PushOptions {
  // Repositories known to hold a blob already (its base image's repository,
  // say), by digest: used for cross-repository mounts on the same registry.
  std::map<std::string, Reference> blob_sources;
  // Blob uploads at a time, per repository.
  int parallelism = 3;
};

struct PushResult {
  std::string digest;               // of the pushed manifest (or index)
  std::vector<std::string> pushed;  // normalized references, in order
  int blobs_uploaded = 0;
  int blobs_mounted = 0;
  int blobs_existed = 0;
};

// Pushes the image (or index) `manifest`, whose blobs are in `store`, to
// every reference in `refs` ("-t" names; tags, or digests which must equal
// the manifest's). Order: every blob of every repository first (HEAD, then
// mount or upload: each blob is uploaded at most once per repository and
// mounted from a repository of the same registry that already got it), then
// the image manifests of an index by digest, then the manifest under each
// tag. A failed push therefore never leaves a tag pointing at missing blobs.
absl::StatusOr<PushResult> PushImage(RegistryClient& client,
                                     ContentStore& store,
                                     const Descriptor& manifest,
                                     const std::vector<Reference>& refs,
                                     const PushOptions& opts = {});

}  // namespace longshore::image

#endif  // LONGSHORE_IMAGE_IMAGE_PUSH_H_
