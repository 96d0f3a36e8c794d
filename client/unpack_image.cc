#include "client/unpack_image.h"

#include <stdio.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/errno_status.h"
#include "common/file_util.h"
#include "common/status_macros.h"
#include "image/layer_apply.h"
#include "image/oci.h"

namespace longshore::client {
namespace {

std::string BlobPath(const std::string& layout, const std::string& digest) {
  absl::string_view hex = digest;
  absl::ConsumePrefix(&hex, "sha256:");
  return absl::StrCat(layout, "/blobs/sha256/", hex);
}

absl::StatusOr<image::Descriptor> PickManifest(const std::string& layout,
                                               const std::string& ref) {
  ASSIGN_OR_RETURN(std::string index_json, ReadFile(layout + "/index.json"));
  ASSIGN_OR_RETURN(image::Index index, image::ParseIndex(index_json));
  std::vector<image::Descriptor> matches;
  for (const auto& d : index.manifests) {
    if (ref.empty()) {
      matches.push_back(d);
      continue;
    }
    for (const char* key :
         {image::kAnnotationRefName, image::kAnnotationContainerdImageName}) {
      auto it = d.annotations.find(key);
      if (it != d.annotations.end() && it->second == ref) {
        matches.push_back(d);
        break;
      }
    }
  }
  if (matches.size() != 1) {
    return absl::NotFoundError(absl::StrCat(
        layout, ": ", matches.empty() ? "no" : "more than one", " image",
        ref.empty() ? "" : absl::StrCat(" named ", ref), " in index.json",
        ref.empty() ? " (name one as LAYOUT:REF)" : ""));
  }
  image::Descriptor d = matches[0];
  if (image::IsIndexMediaType(d.media_type)) {
    ASSIGN_OR_RETURN(std::string nested, ReadFile(BlobPath(layout, d.digest)));
    ASSIGN_OR_RETURN(image::Index nested_index, image::ParseIndex(nested));
    ASSIGN_OR_RETURN(d, image::SelectPlatform(
                            nested_index, image::Platform{"amd64", "linux"}));
  }
  return d;
}

}  // namespace

absl::StatusOr<std::vector<std::string>> UnpackImageLayout(
    const std::string& layout_and_ref, const std::string& cache_dir) {
  std::string layout = layout_and_ref;
  std::string ref;
  size_t colon = layout_and_ref.rfind(':');
  if (colon != std::string::npos &&
      layout_and_ref.find('/', colon) == std::string::npos) {
    layout = layout_and_ref.substr(0, colon);
    ref = layout_and_ref.substr(colon + 1);
  }
  ASSIGN_OR_RETURN(image::Descriptor md, PickManifest(layout, ref));
  ASSIGN_OR_RETURN(std::string manifest_json,
                   ReadFile(BlobPath(layout, md.digest)));
  ASSIGN_OR_RETURN(image::Manifest manifest,
                   image::ParseManifest(manifest_json));
  ASSIGN_OR_RETURN(std::string config_json,
                   ReadFile(BlobPath(layout, manifest.config.digest)));
  ASSIGN_OR_RETURN(image::OciConfig config, image::ParseConfig(config_json));
  if (config.rootfs.diff_ids.size() != manifest.layers.size()) {
    return absl::DataLossError(
        absl::StrCat(layout, ": the manifest has ", manifest.layers.size(),
                     " layers but the config lists ",
                     config.rootfs.diff_ids.size(), " diffIDs"));
  }
  RETURN_IF_ERROR(MakeDirs(cache_dir, 0700));
  std::vector<std::string> dirs;
  for (size_t i = 0; i < manifest.layers.size(); ++i) {
    const std::string& diff_id = config.rootfs.diff_ids[i];
    absl::string_view hex = diff_id;
    absl::ConsumePrefix(&hex, "sha256:");
    std::string dir = absl::StrCat(cache_dir, "/", hex);
    if (!PathExists(dir)) {
      ASSIGN_OR_RETURN(std::string tmp, MakeTempDir(cache_dir, ".unpack-"));
      image::ApplyOptions opts;
      // Only root (in a user namespace) can give files the image's owners.
      opts.preserve_owner = geteuid() == 0;
      auto applied =
          image::ApplyLayer(BlobPath(layout, manifest.layers[i].digest),
                            manifest.layers[i].media_type, tmp, opts);
      if (!applied.ok() || applied->diff_id != diff_id) {
        RemoveTree(tmp).IgnoreError();
        if (!applied.ok()) return applied.status();
        return absl::DataLossError(
            absl::StrCat("layer ", manifest.layers[i].digest, " has diffID ",
                         applied->diff_id, ", the config says ", diff_id));
      }
      if (rename(tmp.c_str(), dir.c_str()) != 0) {
        // Another run unpacked the same layer first: use it.
        RemoveTree(tmp).IgnoreError();
      }
    }
    dirs.insert(dirs.begin(), dir);
  }
  return dirs;
}

int RunUnpackImage(const std::vector<std::string>& args) {
  if (args.size() != 2) {
    fprintf(stderr, "usage: longshore __unpack-image LAYOUT[:REF] CACHE_DIR\n");
    return 2;
  }
  auto dirs = UnpackImageLayout(args[0], args[1]);
  if (!dirs.ok()) {
    fprintf(stderr, "longshore: %s\n",
            std::string(dirs.status().message()).c_str());
    return 1;
  }
  for (const auto& d : *dirs) printf("%s\n", d.c_str());
  return 0;
}

}  // namespace longshore::client
