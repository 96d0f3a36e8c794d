// One build's run on this worker, private to the executor. The class is
// declared here and defined across files, one per concern, so each step kind
// reads top to bottom in a file named for it:
//
//   build_run.cc     the build from parse to result: plan, failures, events
//   stage_graph.cc   stages in dependency order (in parallel when
//                    independent), step numbers, base images
//   build_step.cc    one step's path: key, cache lookup, execute, commit,
//                    cache record
//   step_key.cc      what a step's cache key covers, COPY/ADD source sums
//   step_root.cc     the overlays a step sees and writes into
//   run_step.cc      RUN in the sandbox
//   copy_step.cc     COPY/ADD: context, stages, images, URLs
//   workdir_step.cc  WORKDIR
//   step_commit.cc   an upper dir to a layer and snapshot; cached layers
//   build_export.cc  the image and the requested outputs
#ifndef LONGSHORE_WORKER_BUILD_RUN_H_
#define LONGSHORE_WORKER_BUILD_RUN_H_

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "common/unique_fd.h"
#include "dockerfile/build_plan.h"
#include "dockerfile/parser.h"
#include "dockerfile/stage_evaluator.h"
#include "image/content_store.h"
#include "image/layer_cache.h"
#include "image/oci.h"
#include "image/reference.h"
#include "image/registry_client.h"
#include "proto/longshore.pb.h"
#include "worker/build_executor.h"
#include "worker/overlay_mount.h"
#include "worker/url_fetch.h"

namespace longshore::worker {
namespace build_internal {

using Clock = std::chrono::steady_clock;

// A layer of a stage's filesystem, in image order (bottom first).
struct Layer {
  image::Descriptor blob;
  std::string diff_id;
  // The extracted directory (usable as an overlay lower), held from garbage
  // collection while any stage of the build still uses it.
  std::shared_ptr<image::ContentStore::Lease> snapshot;
};

struct StageResult {
  dockerfile::ImageConfig config;
  std::vector<Layer> layers;
  std::vector<image::HistoryEntry> history;
  std::string cache_key;
};

// A failure with the step and line it belongs to.
struct StepFailure {
  absl::Status status;
  v1::StepRef step;
  int line = 0;
};

int64_t NowNanos();

// The digest of `parts`, each ended by a NUL.
std::string KeyOf(const std::vector<std::string>& parts);

// "Dockerfile:12: unknown instruction: RUNN" -> 12.
int LineFromMessage(absl::string_view message);

class BuildRun {
 public:
  BuildRun(const ExecutorOptions& opts, image::ContentStore* store,
           image::LayerCache* cache, image::RegistryClient* registry,
           const BuildRequest& req, BuildEventSink* sink,
           const std::atomic<bool>* cancel)
      : opts_(opts),
        store_(store),
        cache_(cache),
        registry_(registry),
        req_(req),
        sink_(sink),
        cancel_(cancel) {}

  BuildOutcome Run();

 private:
  // The step's root as the worker sees it: an overlay of the stage's layers
  // with the step's fresh upper dir, mounted at <step>/merged.
  struct StepRoot {
    OverlayMount mount;
    UniqueFd fd;
    absl::Status Unmount() {
      fd.reset();
      return mount.Unmount();
    }
  };

  // Source root for a COPY: the context, or a read-only view of another stage.
  struct SourceRoot {
    UniqueFd fd;
    std::optional<OverlayMount> mount;
  };

  // build_run.cc
  absl::Status Build(BuildOutcome* out);
  absl::Status Fail(absl::Status s, const v1::StepRef& step, int line);
  bool Cancelled() const { return stop_ || (cancel_ != nullptr && *cancel_); }
  void EmitStarted(const v1::StepRef& ref);
  void EmitFinished(const v1::StepRef& ref, Clock::time_point start,
                    const std::string& layer_digest);
  void Warn(const std::string& message);
  std::string Created() const;
  std::string CreatedOf(const image::CacheEntry& hit) const;
  static std::string LastCreated(const StageResult& r);

  // stage_graph.cc
  absl::Status BuildStages();
  void CountSteps();
  absl::Status BuildStage(int stage_index);
  v1::StepRef MakeStep(const dockerfile::Stage& st, const dockerfile::Node& n);
  absl::StatusOr<StageResult> BaseImage(const std::string& ref_text,
                                        const std::string& platform);

  // build_step.cc
  absl::Status BuildStep(const dockerfile::Stage& st,
                         const dockerfile::Node& node,
                         const dockerfile::ExpandedStep& step, StageResult* r);

  // step_key.cc
  absl::StatusOr<std::string> StepKey(const dockerfile::ExpandedStep& step,
                                      const StageResult& r);
  absl::StatusOr<std::string> SourceChecksum(const dockerfile::CopyStep& c,
                                             const StageResult& r);

  // step_root.cc
  absl::StatusOr<StepRoot> MountStepRoot(const StageResult& r,
                                         const std::string& step_dir);
  std::vector<std::string> Lowers(const StageResult& r) const;
  std::string EmptyDir();

  // run_step.cc
  absl::Status ExecRun(const dockerfile::ExpandedStep& step,
                       const StageResult& r, const v1::StepRef& ref,
                       const std::string& step_dir);

  // copy_step.cc
  absl::Status ExecCopy(const dockerfile::CopyStep& c, const StageResult& r,
                        const std::string& step_dir);
  absl::StatusOr<std::pair<uid_t, gid_t>> ResolveChown(const std::string& chown,
                                                       int root_fd);
  absl::StatusOr<std::vector<std::string>> LocalSources(
      const dockerfile::CopyStep& c);
  absl::StatusOr<SourceRoot> OpenSource(const dockerfile::CopyStep& c,
                                        const std::string& mount_dir);
  absl::StatusOr<FetchedUrl> Fetch(const std::string& url);
  absl::Status PlaceDownload(const FetchedUrl& f, const std::string& url,
                             const std::string& dest, bool into_dir, int dst_fd,
                             std::pair<uid_t, gid_t> owner,
                             std::optional<mode_t> mode);

  // workdir_step.cc
  absl::Status ExecWorkdir(const std::string& path, const StageResult& r,
                           const std::string& step_dir);

  // step_commit.cc
  absl::StatusOr<std::optional<Layer>> Commit(const std::string& upper);
  static absl::StatusOr<bool> IsEmptyDir(const std::string& dir);
  absl::Status UseCached(const image::CacheEntry& hit, StageResult* r,
                         image::HistoryEntry hist);
  absl::StatusOr<std::shared_ptr<image::ContentStore::Lease>> EnsureSnapshot(
      const Layer& layer);

  // build_export.cc
  absl::Status Export(const StageResult& final_stage, BuildOutcome* out);
  // `type=local` and `type=tar`: the final filesystem as an uncompressed tar.
  absl::Status WriteFilesystemTar(const StageResult& final_stage,
                                  const std::string& path);

  const ExecutorOptions& opts_;
  image::ContentStore* store_;
  image::LayerCache* cache_;
  image::RegistryClient* registry_;
  const BuildRequest& req_;
  BuildEventSink* sink_;
  const std::atomic<bool>* cancel_;

  std::string tmp_;
  dockerfile::ParsedDockerfile df_;
  dockerfile::BuildPlan plan_;
  std::map<int, StageResult> results_ ABSL_GUARDED_BY(mu_);
  // by "ref|platform"
  std::map<std::string, StageResult> base_images_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, image::Reference> blob_sources_ ABSL_GUARDED_BY(mu_);
  // ADD <url> downloads of this build, by URL.
  std::map<std::string, FetchedUrl> fetched_ ABSL_GUARDED_BY(mu_);
  std::optional<int64_t> source_date_epoch_;
  int total_ = 0;
  // Guards what parallel stages share.
  absl::Mutex mu_;
  std::map<const dockerfile::Node*, int> step_numbers_;
  int index_ ABSL_GUARDED_BY(mu_) = 0;
  std::atomic<int> mounts_{0};
  std::atomic<bool> stop_{false};
  StepFailure failure_ ABSL_GUARDED_BY(mu_);
};

}  // namespace build_internal
}  // namespace longshore::worker

#endif  // LONGSHORE_WORKER_BUILD_RUN_H_
