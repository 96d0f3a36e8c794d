// Executes one build on this worker: parse and plan the Dockerfile, run each
// needed stage step by step (cache lookup, RUN in the sandbox, COPY/ADD/WORKDIR
// on an overlay of the stage's layers), commit layers, assemble the image and
// write the requested outputs.
#ifndef LONGSHORE_WORKER_BUILD_EXECUTOR_H_
#define LONGSHORE_WORKER_BUILD_EXECUTOR_H_

#include <atomic>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "image/content_store.h"
#include "image/layer_cache.h"
#include "image/registry_client.h"
#include "proto/longshore.pb.h"

namespace longshore::worker {

// Receives the build's events in order; called from the executing thread.
class BuildEventSink {
 public:
  virtual ~BuildEventSink() = default;
  virtual void Emit(const v1::BuildEvent& event) = 0;
};

// What the executor reports as it works, for the worker's metrics. Called
// from several builds' threads at once.
class ExecutorObserver {
 public:
  virtual ~ExecutorObserver() = default;
  // A layer cache lookup: tier "local" or "remote", result "hit", "miss" or
  // "error".
  virtual void CacheLookup(absl::string_view tier, absl::string_view result) {}
  // A RUN step about to start, by its network mode (none, default, host).
  virtual void RunStep(absl::string_view network) {}
  // From spawning a step's sandbox to its command starting.
  virtual void SandboxSetup(double seconds) {}
  // A step's changes committed to a layer of `bytes` (compressed).
  virtual void LayerCommitted(double seconds, int64_t bytes) {}
  // The content store after a build (and its collection): bytes used, and
  // the budget (0: none).
  virtual void StoreUsage(int64_t used_bytes, int64_t budget_bytes) {}
};

struct ExecutorOptions {
  std::string work_dir;  // the worker's state (blobs, snapshots, cache, tmp)
  std::string sandbox_binary;  // longshore-sandbox
  std::string seccomp_bpf;     // compiled filter; empty runs steps without one
  std::string worker_id;
  int step_timeout_seconds = 3600;
  // What a RUN without --network gets, and which modes a step may ask for.
  std::string default_network = "default";
  bool allow_host_network = false;
  // The security.insecure entitlement (RUN --security=insecure).
  bool allow_insecure = false;
  // What this worker builds for (its --platform); empty: NativePlatform().
  std::string platform;
  // Per-step limits handed to the sandbox; 0 leaves one unset.
  int64_t step_memory_bytes = 0;
  int64_t step_pids = 0;
  int64_t step_disk_bytes = 0;
  int64_t step_nofile = 0;
  // A delegated cgroup v2 directory: each step gets a cgroup under it, which
  // enforces the memory and pids limits its controllers cover.
  std::string cgroup_parent;
  // After each build, unreferenced blobs and snapshots are collected (least
  // recently used first) until the store fits; 0 keeps everything.
  int64_t store_budget_bytes = 0;
  // Told what happens, for metrics; may be null.
  ExecutorObserver* observer = nullptr;
};

struct BuildRequest {
  std::string build_id;
  int attempt = 1;
  v1::BuildSpec spec;
  std::string context_dir;  // the extracted build context
};

struct BuildOutcome {
  v1::BuildState state = v1::FAILED;
  std::string image_digest;  // manifest digest
  std::string config_digest;
  std::vector<std::string> references;
  std::string error;
  v1::StepRef failed_step;
  int error_line = 0;
  // Client-side outputs written as tar files: index into spec.outputs, path.
  std::vector<std::pair<int, std::string>> output_files;
};

class BuildExecutor {
 public:
  // `cache` is the layer cache (local, or local then a shared registry
  // repository); `registry` pulls base images and pushes results. All must
  // outlive the executor.
  BuildExecutor(ExecutorOptions opts, image::ContentStore* store,
                image::TieredLayerCache* cache, image::RegistryClient* registry)
      : opts_(std::move(opts)),
        store_(store),
        cache_(cache),
        registry_(registry) {}

  // Never throws; on failure the outcome says which step failed, where and why,
  // and no partial output or mount is left behind. Output files are left for
  // the caller to upload and remove.
  BuildOutcome Execute(const BuildRequest& req, BuildEventSink* sink,
                       const std::atomic<bool>* cancel);

  const ExecutorOptions& options() const { return opts_; }

 private:
  ExecutorOptions opts_;
  image::ContentStore* store_;
  image::TieredLayerCache* cache_;
  image::RegistryClient* registry_;
};

}  // namespace longshore::worker

#endif  // LONGSHORE_WORKER_BUILD_EXECUTOR_H_
