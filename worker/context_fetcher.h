// Build contexts on the worker: fetched from the scheduler by digest once, kept
// as verified tars under <work>/contexts/, and extracted per build.
#ifndef LONGSHORE_WORKER_CONTEXT_FETCHER_H_
#define LONGSHORE_WORKER_CONTEXT_FETCHER_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/content_store.h"
#include "proto/longshore.grpc.pb.h"

namespace longshore::worker {

class ContextFetcher {
 public:
  ContextFetcher(std::string work_dir, v1::WorkerService::StubInterface* stub)
      : work_dir_(std::move(work_dir)), stub_(stub) {}
  ~ContextFetcher();

  // Path of the verified context tar for `digest`, downloading it if needed.
  absl::StatusOr<std::string> Fetch(const std::string& digest,
                                    const std::string& build_id);

  // Told the size of each context downloaded (not those already here).
  void set_on_fetched(std::function<void(int64_t)> on_fetched) {
    on_fetched_ = std::move(on_fetched);
  }

  // Fills the empty directory `dir` with the build's context: a tar is
  // fetched and extracted; a manifest (spec.context_manifest) is fetched,
  // checked, and its chunks and files this worker's content store
  // (<work>/files) lacks are fetched (FetchContextFiles) and verified, then
  // the tree is written from the store.
  // `fetched_bytes`: how many bytes of chunks and files were fetched.
  absl::Status Materialize(const longshore::v1::BuildSpec& spec,
                           const std::string& build_id, const std::string& dir,
                           int64_t* fetched_bytes);

  void set_stub(v1::WorkerService::StubInterface* stub) {
    absl::MutexLock l(&mu_);
    stub_ = stub;
  }

 private:
  // The worker's content store, opened on first use.
  absl::StatusOr<ContentStore*> Store();
  // Removes what no build used for a day, at most once an hour.
  void SweepStore(const ContentStore& store);
  // Fetches `digests` (none held yet) into the store.
  absl::Status FetchContents(const std::string& build_id,
                             const std::vector<std::string>& digests,
                             int64_t* bytes);

  std::string work_dir_;
  std::function<void(int64_t)> on_fetched_;
  absl::Mutex store_mu_;
  std::unique_ptr<ContentStore> store_ ABSL_GUARDED_BY(store_mu_);
  absl::Time next_sweep_ ABSL_GUARDED_BY(store_mu_) = absl::InfinitePast();
  absl::Mutex mu_;
  v1::WorkerService::StubInterface* stub_ ABSL_GUARDED_BY(mu_);
};

// Extracts a context tar into the empty directory `dir`. Paths are confined to
// `dir` (no absolute paths, no `..`, no writes through symlinks).
absl::Status ExtractContext(const std::string& tar_path,
                            const std::string& dir);

}  // namespace longshore::worker

#endif  // LONGSHORE_WORKER_CONTEXT_FETCHER_H_
