#include "image/image_push.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "image/parallel_for.h"

namespace longshore::image {
namespace {

struct ImageParts {
  std::string top_bytes;
  // Config and layer blobs, each once.
  std::vector<Descriptor> blobs;
  // For an index: its image manifests and their bytes.
  std::vector<std::pair<Descriptor, std::string>> children;
};

absl::Status AddManifestBlobs(const Descriptor& d, absl::string_view bytes,
                              std::set<std::string>* seen, ImageParts* parts) {
  auto m = ParseManifest(bytes);
  if (!m.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("manifest ", d.digest, ": ", m.status().message()));
  }
  if (seen->insert(m->config.digest).second) parts->blobs.push_back(m->config);
  for (const Descriptor& l : m->layers) {
    if (seen->insert(l.digest).second) parts->blobs.push_back(l);
  }
  return absl::OkStatus();
}

absl::StatusOr<ImageParts> Collect(ContentStore& store, const Descriptor& top) {
  ImageParts parts;
  std::set<std::string> seen;
  ASSIGN_OR_RETURN(parts.top_bytes, store.ReadBlob(top.digest));
  if (IsManifestMediaType(top.media_type)) {
    RETURN_IF_ERROR(AddManifestBlobs(top, parts.top_bytes, &seen, &parts));
    return parts;
  }
  if (!IsIndexMediaType(top.media_type)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot push ", top.digest, ": media type ", top.media_type,
        " is neither an image manifest nor an index"));
  }
  auto index = ParseIndex(parts.top_bytes);
  if (!index.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("index ", top.digest, ": ", index.status().message()));
  }
  for (const Descriptor& child : index->manifests) {
    if (!IsManifestMediaType(child.media_type)) {
      return absl::InvalidArgumentError(
          absl::StrCat("index ", top.digest, ": entry ", child.digest, " is a ",
                       child.media_type, "; nested indexes are not pushed"));
    }
    ASSIGN_OR_RETURN(std::string bytes, store.ReadBlob(child.digest));
    RETURN_IF_ERROR(AddManifestBlobs(child, bytes, &seen, &parts));
    parts.children.emplace_back(child, std::move(bytes));
  }
  return parts;
}

}  // namespace

absl::StatusOr<PushResult> PushImage(RegistryClient& client,
                                     ContentStore& store,
                                     const Descriptor& manifest,
                                     const std::vector<Reference>& refs,
                                     const PushOptions& opts) {
  if (refs.empty()) return absl::InvalidArgumentError("nothing to push to");
  for (const Reference& r : refs) {
    if (!r.digest.empty() && r.digest != manifest.digest) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot push ", manifest.digest, " as ", r.Normalized(),
                       ": the reference pins another digest"));
    }
  }
  ASSIGN_OR_RETURN(ImageParts parts, Collect(store, manifest));
  // Keep every blob from garbage collection while it is being pushed.
  std::vector<ContentStore::Lease> leases;
  for (const Descriptor& b : parts.blobs) {
    auto lease = store.AcquireBlob(b.digest);
    if (!lease.ok()) {
      return absl::NotFoundError(absl::StrCat(
          "cannot push ", manifest.digest, ": blob ", b.digest,
          " is not in the local store: ", lease.status().message()));
    }
    leases.push_back(std::move(*lease));
  }

  // Distinct repositories, in the order given.
  std::vector<Reference> repos;
  std::set<std::string> repo_names;
  for (const Reference& r : refs) {
    if (repo_names.insert(r.Name()).second) {
      Reference repo = r;
      repo.tag.clear();
      repo.digest.clear();
      repos.push_back(repo);
    }
  }

  PushResult result;
  result.digest = manifest.digest;
  absl::Mutex mu;
  std::vector<Reference> done;  // repositories holding every blob
  for (const Reference& repo : repos) {
    const Reference* same_registry = nullptr;
    for (const Reference& d : done) {
      if (d.registry == repo.registry) same_registry = &d;
    }
    RETURN_IF_ERROR(ParallelFor(
        static_cast<int>(parts.blobs.size()), opts.parallelism,
        [&](int i) -> absl::Status {
          const Descriptor& b = parts.blobs[i];
          const Reference* from = same_registry;
          if (from == nullptr) {
            auto it = opts.blob_sources.find(b.digest);
            if (it != opts.blob_sources.end() &&
                it->second.registry == repo.registry) {
              from = &it->second;
            }
          }
          ASSIGN_OR_RETURN(BlobPushResult r,
                           client.PushBlob(repo, b, leases[i].path(), from));
          absl::MutexLock lock(&mu);
          switch (r) {
            case BlobPushResult::kExisted:
              ++result.blobs_existed;
              break;
            case BlobPushResult::kMounted:
              ++result.blobs_mounted;
              break;
            case BlobPushResult::kUploaded:
              ++result.blobs_uploaded;
              break;
          }
          return absl::OkStatus();
        }));
    for (const auto& [child, bytes] : parts.children) {
      RETURN_IF_ERROR(
          client.PushManifest(repo, child.digest, child.media_type, bytes)
              .status());
    }
    done.push_back(repo);
  }

  // Tags last, once every repository holds everything they point at.
  for (const Reference& r : refs) {
    std::string target = r.tag.empty() ? manifest.digest : r.tag;
    ASSIGN_OR_RETURN(
        std::string digest,
        client.PushManifest(r, target, manifest.media_type, parts.top_bytes));
    if (digest != manifest.digest) {
      return absl::InternalError(absl::StrCat("pushed manifest hashes to ",
                                              digest, ", expected ",
                                              manifest.digest));
    }
    Reference pushed = r;
    pushed.digest = manifest.digest;
    result.pushed.push_back(pushed.Normalized());
    LS_LOG(INFO) << "pushed " << pushed.Normalized();
  }
  return result;
}

}  // namespace longshore::image
