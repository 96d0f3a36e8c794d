// The worker's local tier of the layer cache: a step's cache key maps to the
// layer it produced (or to "no layer" for steps that changed nothing on disk).
// Records are small JSON files under <work>/cache/steps/, written atomically; a
// record is only trusted when its blob is still in the content store.
#ifndef LONGSHORE_WORKER_STEP_CACHE_H_
#define LONGSHORE_WORKER_STEP_CACHE_H_

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace longshore::worker {

struct CachedStep {
  bool has_layer = false;
  std::string digest;  // blob digest
  std::string diff_id;
  int64_t size = 0;
  std::string media_type;
};

class StepCache {
 public:
  explicit StepCache(std::string dir) : dir_(std::move(dir)) {}
  absl::Status Init();

  // nullopt on a miss; a record that cannot be read is a miss.
  std::optional<CachedStep> Lookup(const std::string& key) const;
  absl::Status Store(const std::string& key, const CachedStep& step);

 private:
  std::string PathFor(const std::string& key) const;
  std::string dir_;
};

}  // namespace longshore::worker

#endif  // LONGSHORE_WORKER_STEP_CACHE_H_
