#include "client/platform_index.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "image/reference.h"
#include "image/registry_client.h"

namespace longshore::client {

image::Index MakePlatformIndex(const std::vector<image::Descriptor>& manifests,
                               const std::vector<std::string>& platforms) {
  image::Index index;
  for (size_t i = 0; i < manifests.size(); ++i) {
    image::Descriptor d = manifests[i];
    std::vector<std::string> parts = absl::StrSplit(platforms[i], '/');
    image::Platform p;
    p.os = parts.size() > 0 ? parts[0] : "";
    p.architecture = parts.size() > 1 ? parts[1] : "";
    p.variant = parts.size() > 2 ? parts[2] : "";
    d.platform = p;
    d.annotations.clear();
    index.manifests.push_back(std::move(d));
  }
  return index;
}

absl::StatusOr<std::string> PushPlatformIndex(
    const std::vector<std::string>& tags,
    const std::vector<PlatformImage>& images) {
  image::RegistryOptions ropts;
  absl::Status creds = image::LoadDockerConfigCredentials(
      image::DefaultDockerConfigPath(), &ropts.credentials);
  if (!creds.ok() && !absl::IsNotFound(creds)) return creds;
  image::RegistryClient registry(ropts);
  std::string digest;
  for (const std::string& tag : tags) {
    absl::StatusOr<image::Reference> ref = image::ParseReference(tag);
    if (!ref.ok()) return ref.status();
    std::vector<image::Descriptor> manifests;
    std::vector<std::string> platforms;
    for (const PlatformImage& img : images) {
      image::Reference by_digest = *ref;
      by_digest.tag.clear();
      by_digest.digest = img.manifest_digest;
      auto raw = registry.GetManifest(by_digest);
      if (!raw.ok()) {
        return absl::Status(
            raw.status().code(),
            absl::StrCat("the ", img.platform, " image ", img.manifest_digest,
                         " in ", tag, ": ", raw.status().message()));
      }
      manifests.push_back(raw->descriptor);
      platforms.push_back(img.platform);
    }
    const std::string bytes =
        image::ToJson(MakePlatformIndex(manifests, platforms));
    auto pushed =
        registry.PushManifest(*ref, ref->tag, image::kMediaTypeOciIndex, bytes);
    if (!pushed.ok()) {
      return absl::Status(pushed.status().code(),
                          absl::StrCat("pushing the index to ", tag, ": ",
                                       pushed.status().message()));
    }
    digest = *pushed;
  }
  return digest;
}

}  // namespace longshore::client
