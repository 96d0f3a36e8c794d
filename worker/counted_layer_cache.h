// A layer cache that reports each lookup's tier and result to an
// ExecutorObserver, in front of the cache that does the work.
#ifndef LONGSHORE_WORKER_COUNTED_LAYER_CACHE_H_
#define LONGSHORE_WORKER_COUNTED_LAYER_CACHE_H_

#include <optional>
#include <string>

#include "image/layer_cache.h"
#include "worker/build_executor.h"

namespace longshore::worker {

class CountedLayerCache : public image::LayerCache {
 public:
  // `inner` and `observer` (may be null) must outlive this object; `tier` is
  // "local" or "remote".
  CountedLayerCache(image::LayerCache* inner, std::string tier,
                    ExecutorObserver* observer)
      : inner_(inner), tier_(std::move(tier)), observer_(observer) {}

  absl::StatusOr<std::optional<image::CacheEntry>> Lookup(
      const std::string& key, image::ContentStore& store) override {
    auto found = inner_->Lookup(key, store);
    if (observer_ != nullptr) {
      observer_->CacheLookup(
          tier_, !found.ok() ? "error" : (found->has_value() ? "hit" : "miss"));
    }
    return found;
  }
  absl::Status Store(const std::string& key, const image::CacheEntry& entry,
                     image::ContentStore& store) override {
    return inner_->Store(key, entry, store);
  }
  absl::Status Flush() override { return inner_->Flush(); }

 private:
  image::LayerCache* const inner_;
  const std::string tier_;
  ExecutorObserver* const observer_;
};

}  // namespace longshore::worker

#endif  // LONGSHORE_WORKER_COUNTED_LAYER_CACHE_H_
