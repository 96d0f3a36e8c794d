// The image (config, manifest) stored, then each requested output: an OCI
// layout or Docker archive to upload, or a push to a registry.
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/file_util.h"
#include "common/status_macros.h"
#include "image/image_push.h"
#include "image/layer_commit.h"
#include "image/oci.h"
#include "image/oci_layout.h"
#include "worker/build_run.h"
#include "worker/image_assembly.h"
#include "worker/output_compression.h"

namespace longshore::worker {
namespace build_internal {

absl::Status BuildRun::Export(const StageResult& final_stage,
                              BuildOutcome* out) {
  ImageInputs in;
  in.config = final_stage.config;
  for (const auto& l : final_stage.layers) {
    in.layers.push_back(l.blob);
    in.diff_ids.push_back(l.diff_id);
  }
  in.history = final_stage.history;
  // The image is as old as its newest step, so a rebuild served entirely
  // from the cache has the same config and digest (as BuildKit's does).
  in.created = source_date_epoch_ ? Created() : LastCreated(final_stage);
  for (const auto& kv : req_.spec.labels()) in.labels[kv.key()] = kv.value();
  // The config names the platform the image was built for.
  std::vector<std::string> platform =
      absl::StrSplit(plan_.stages[plan_.target].platform, '/');
  if (platform.size() >= 2) {
    in.os = platform[0];
    in.architecture = platform[1];
    in.variant = platform.size() > 2 ? platform[2] : "";
  }
  ASSIGN_OR_RETURN(image::Descriptor manifest, StoreImage(store_, in));
  out->image_digest = manifest.digest;
  {
    ASSIGN_OR_RETURN(std::string manifest_json,
                     store_->ReadBlob(manifest.digest));
    ASSIGN_OR_RETURN(image::Manifest parsed,
                     image::ParseManifest(manifest_json));
    out->config_digest = parsed.config.digest;
  }
  std::vector<std::string> tags(req_.spec.tags().begin(),
                                req_.spec.tags().end());
  std::vector<std::string> pushed_refs;
  const image::Descriptor built = manifest;
  for (int i = 0; i < req_.spec.outputs_size(); ++i) {
    const v1::OutputSpec& o = req_.spec.outputs(i);
    if (o.type() == v1::OutputSpec::LOCAL || o.type() == v1::OutputSpec::TAR) {
      RETURN_IF_ERROR(MakeDirs(opts_.work_dir + "/outputs", 0700));
      std::string path =
          absl::StrCat(opts_.work_dir, "/outputs/", req_.build_id, "-",
                       req_.attempt, "-", i, ".tar");
      RETURN_IF_ERROR(WriteFilesystemTar(final_stage, path));
      out->output_files.emplace_back(i, path);
      continue;
    }
    // Each output may want its layers in another compression.
    ASSIGN_OR_RETURN(OutputCompression oc, ParseOutputCompression(o));
    ASSIGN_OR_RETURN(manifest, ConvertImageLayers(*store_, built, oc));
    if (i == 0) out->image_digest = manifest.digest;
    RETURN_IF_ERROR(MakeDirs(opts_.work_dir + "/outputs", 0700));
    std::string path = absl::StrCat(opts_.work_dir, "/outputs/", req_.build_id,
                                    "-", req_.attempt, "-", i, ".tar");
    switch (o.type()) {
      case v1::OutputSpec::OCI: {
        RETURN_IF_ERROR(image::WriteOciLayoutTarFile(
            *store_, image::ImageExport{manifest, tags}, path));
        out->output_files.emplace_back(i, path);
        break;
      }
      case v1::OutputSpec::DOCKER: {
        RETURN_IF_ERROR(image::WriteDockerArchiveFile(
            *store_, image::ImageExport{manifest, tags}, path));
        out->output_files.emplace_back(i, path);
        break;
      }
      case v1::OutputSpec::REGISTRY: {
        if (tags.empty()) {
          return absl::InvalidArgumentError(
              "type=registry: at least one -t NAME:TAG is required to push");
        }
        // push-by-digest=true (buildx's attribute): the manifest goes to
        // each tag's repository under its digest only, for the client to
        // combine platforms into one index under the tags.
        bool by_digest = false;
        for (const auto& kv : o.attrs()) {
          if (kv.key() == "push-by-digest") by_digest = kv.value() == "true";
        }
        std::vector<image::Reference> refs;
        for (const auto& t : tags) {
          ASSIGN_OR_RETURN(image::Reference ref, image::ParseReference(t));
          if (by_digest) {
            ref.tag.clear();
            ref.digest = manifest.digest;
          }
          refs.push_back(std::move(ref));
        }
        image::PushOptions popts;
        {
          absl::MutexLock l(&mu_);
          popts.blob_sources = blob_sources_;
        }
        auto pushed =
            image::PushImage(*registry_, *store_, manifest, refs, popts);
        if (!pushed.ok()) {
          return absl::Status(pushed.status().code(),
                              absl::StrCat("pushing ", tags.front(), ": ",
                                           pushed.status().message()));
        }
        pushed_refs.insert(pushed_refs.end(), pushed->pushed.begin(),
                           pushed->pushed.end());
        break;
      }
      default:
        return absl::InvalidArgumentError(
            absl::StrCat("output ", i, ": unknown type"));
    }
  }
  out->references = pushed_refs.empty() ? tags : pushed_refs;
  return absl::OkStatus();
}

absl::Status BuildRun::WriteFilesystemTar(const StageResult& final_stage,
                                          const std::string& path) {
  // The layers merged read-only by overlayfs, which hides whiteouts and
  // opaque markers: what a container of the image would see at /.
  std::string merged = absl::StrCat(tmp_, "/export-", ++mounts_);
  RETURN_IF_ERROR(MakeDirs(merged, 0755));
  ASSIGN_OR_RETURN(OverlayMount m, OverlayMount::Mount(Lowers(final_stage), "",
                                                       "", merged, EmptyDir()));
  image::CommitOptions copts;
  copts.compression = image::Compression::kNone;
  copts.source_date_epoch = source_date_epoch_;
  absl::StatusOr<image::CommittedLayer> written =
      image::CommitLayer(merged, path, copts);
  RETURN_IF_ERROR(m.Unmount());
  if (!written.ok()) {
    return absl::Status(written.status().code(),
                        absl::StrCat("writing the filesystem output: ",
                                     written.status().message()));
  }
  return absl::OkStatus();
}

}  // namespace build_internal
}  // namespace longshore::worker
