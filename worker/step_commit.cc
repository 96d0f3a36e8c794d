// An upper dir to a layer blob and a snapshot; a cached layer back to a
// snapshot.
#include <dirent.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/errno_status.h"
#include "common/status_macros.h"
#include "image/layer_apply.h"
#include "image/layer_commit.h"
#include "worker/build_run.h"

namespace longshore::worker {
namespace build_internal {

// Commits an upper dir to a layer; nullopt when the step changed nothing.
absl::StatusOr<std::optional<Layer>> BuildRun::Commit(
    const std::string& upper) {
  ASSIGN_OR_RETURN(bool empty, IsEmptyDir(upper));
  if (empty) return std::optional<Layer>();
  const absl::Time started = absl::Now();
  image::CommitOptions copts;
  copts.source_date_epoch = source_date_epoch_;
  ASSIGN_OR_RETURN(std::string blob_tmp, store_->NewTempPath("layer"));
  auto committed = image::CommitLayer(upper, blob_tmp, copts);
  if (!committed.ok()) {
    unlink(blob_tmp.c_str());
    return committed.status();
  }
  RETURN_IF_ERROR(store_->CommitTemp(blob_tmp, committed->digest));
  Layer layer;
  layer.blob = committed->descriptor();
  layer.diff_id = committed->diff_id;
  // The upper dir is already the layer in overlay form: it becomes the
  // snapshot as it is, without extracting the blob again.
  ASSIGN_OR_RETURN(image::ContentStore::Lease lease,
                   store_->CommitSnapshot(committed->diff_id, upper));
  layer.snapshot =
      std::make_shared<image::ContentStore::Lease>(std::move(lease));
  if (opts_.observer != nullptr) {
    opts_.observer->LayerCommitted(absl::ToDoubleSeconds(absl::Now() - started),
                                   layer.blob.size);
  }
  return std::optional<Layer>(layer);
}

absl::StatusOr<bool> BuildRun::IsEmptyDir(const std::string& dir) {
  UniqueFd fd(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return ErrnoStatus(errno, "open(%s)", dir);
  DIR* d = fdopendir(fd.release());
  if (d == nullptr) return ErrnoStatus(errno, "fdopendir(%s)", dir);
  bool empty = true;
  while (struct dirent* e = readdir(d)) {
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
      empty = false;
      break;
    }
  }
  closedir(d);
  return empty;
}

absl::Status BuildRun::UseCached(const image::CacheEntry& hit, StageResult* r,
                                 image::HistoryEntry hist) {
  // The step keeps the date it was first built at (recorded with the cache
  // entry): the image is then the same wherever and whenever it is rebuilt.
  hist.created = source_date_epoch_ ? Created() : CreatedOf(hit);
  if (hit.layer) {
    Layer layer;
    layer.blob = *hit.layer;
    layer.diff_id = hit.diff_id;
    ASSIGN_OR_RETURN(layer.snapshot, EnsureSnapshot(layer));
    r->layers.push_back(layer);
    hist.empty_layer = false;
  } else {
    hist.empty_layer = true;
  }
  r->history.push_back(hist);
  return absl::OkStatus();
}

// The extracted form of `layer`, extracting its blob when no snapshot exists.
absl::StatusOr<std::shared_ptr<image::ContentStore::Lease>>
BuildRun::EnsureSnapshot(const Layer& layer) {
  auto fill = [&](const std::string& dir) -> absl::Status {
    image::ApplyOptions aopts;
    ASSIGN_OR_RETURN(image::AppliedLayer applied,
                     image::ApplyLayer(store_->BlobPath(layer.blob.digest),
                                       layer.blob.media_type, dir, aopts));
    if (applied.diff_id != layer.diff_id) {
      return absl::DataLossError(absl::StrCat("layer ", layer.blob.digest,
                                              " has diffID ", applied.diff_id,
                                              ", expected ", layer.diff_id));
    }
    return absl::OkStatus();
  };
  ASSIGN_OR_RETURN(image::ContentStore::Lease lease,
                   store_->GetOrCreateSnapshot(layer.diff_id, fill));
  return std::make_shared<image::ContentStore::Lease>(std::move(lease));
}

}  // namespace build_internal
}  // namespace longshore::worker
