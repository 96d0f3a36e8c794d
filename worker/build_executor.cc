#include "worker/build_executor.h"

#include <algorithm>
#include <memory>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "worker/build_run.h"
#include "worker/counted_layer_cache.h"

namespace longshore::worker {

using build_internal::BuildRun;
using build_internal::NowNanos;

BuildOutcome BuildExecutor::Execute(const BuildRequest& req,
                                    BuildEventSink* sink,
                                    const std::atomic<bool>* cancel) {
  // --cache-from / --cache-to: this build's registry caches, tiered over the
  // worker's own (local, then the farm's --cache-repo).
  std::vector<std::unique_ptr<image::LayerCache>> owned;
  image::LayerCache* cache = cache_;
  std::vector<image::TieredLayerCache*> tiers{cache_};
  std::set<std::string> refs(req.spec.cache_from().begin(),
                             req.spec.cache_from().end());
  refs.insert(req.spec.cache_to().begin(), req.spec.cache_to().end());
  for (const std::string& text : refs) {
    auto ref = image::ParseReference(text);
    if (!ref.ok()) {
      LS_LOG(WARNING) << "build " << req.build_id << ": cache " << text << ": "
                      << ref.status();
      continue;
    }
    image::TieredLayerCache::Options topts;
    topts.read_remote = std::count(req.spec.cache_from().begin(),
                                   req.spec.cache_from().end(), text) > 0;
    topts.write_remote = std::count(req.spec.cache_to().begin(),
                                    req.spec.cache_to().end(), text) > 0;
    owned.push_back(
        std::make_unique<image::RegistryLayerCache>(registry_, *ref));
    owned.push_back(std::make_unique<CountedLayerCache>(
        owned.back().get(), "remote", opts_.observer));
    auto tier = std::make_unique<image::TieredLayerCache>(
        cache, owned.back().get(), topts);
    tiers.push_back(tier.get());
    cache = tier.get();
    owned.push_back(std::move(tier));
  }
  BuildOutcome outcome;
  {
    BuildRun run(opts_, store_, cache, registry_, req, sink, cancel);
    outcome = run.Run();
  }
  // Cache writes run beside the build; they finish here, before the build
  // reports success, so no cache entry points at a blob that is not there.
  // Their errors cost only future hits: they come back as warnings below.
  cache->Flush().IgnoreError();
  // Cache problems are warnings for the submitter, never failures.
  for (image::TieredLayerCache* tier : tiers) {
    for (const std::string& w : tier->TakeWarnings()) {
      v1::BuildEvent ev;
      ev.set_time_unix_nanos(NowNanos());
      ev.mutable_log()->set_stream(v1::BuildEvent::Log::STDERR);
      ev.mutable_log()->set_data(absl::StrCat("WARNING: ", w, "\n"));
      sink->Emit(ev);
    }
  }
  // The build's leases are gone; what other builds use stays leased.
  if (opts_.store_budget_bytes > 0) {
    auto gc = store_->GarbageCollect(opts_.store_budget_bytes);
    if (!gc.ok()) {
      LS_LOG(WARNING) << "garbage collection: " << gc.status();
    } else if (gc->blobs_removed + gc->snapshots_removed > 0) {
      LS_LOG(INFO) << "garbage collection freed " << gc->bytes_freed
                   << " bytes (" << gc->blobs_removed << " blobs, "
                   << gc->snapshots_removed << " snapshots); "
                   << gc->bytes_remaining << " bytes remain";
    }
  }
  if (opts_.observer != nullptr) {
    opts_.observer->StoreUsage(store_->TotalBytes(), opts_.store_budget_bytes);
  }
  return outcome;
}

}  // namespace longshore::worker
