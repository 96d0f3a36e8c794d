// Build contexts on the worker: fetched from the scheduler by digest once, kept
// as verified tars under <work>/contexts/, and extracted per build.
#ifndef LONGSHORE_WORKER_CONTEXT_FETCHER_H_
#define LONGSHORE_WORKER_CONTEXT_FETCHER_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "proto/longshore.grpc.pb.h"

namespace longshore::worker {

class ContextFetcher {
 public:
  ContextFetcher(std::string work_dir, v1::WorkerService::StubInterface* stub)
      : work_dir_(std::move(work_dir)), stub_(stub) {}

  // Path of the verified context tar for `digest`, downloading it if needed.
  absl::StatusOr<std::string> Fetch(const std::string& digest,
                                    const std::string& build_id);

  // Told the size of each context downloaded (not those already here).
  void set_on_fetched(std::function<void(int64_t)> on_fetched) {
    on_fetched_ = std::move(on_fetched);
  }

  void set_stub(v1::WorkerService::StubInterface* stub) {
    absl::MutexLock l(&mu_);
    stub_ = stub;
  }

 private:
  std::string work_dir_;
  std::function<void(int64_t)> on_fetched_;
  absl::Mutex mu_;
  v1::WorkerService::StubInterface* stub_ ABSL_GUARDED_BY(mu_);
};

// Extracts a context tar into the empty directory `dir`. Paths are confined to
// `dir` (no absolute paths, no `..`, no writes through symlinks).
absl::Status ExtractContext(const std::string& tar_path,
                            const std::string& dir);

}  // namespace longshore::worker

#endif  // LONGSHORE_WORKER_CONTEXT_FETCHER_H_
