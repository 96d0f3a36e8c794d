// One step's path, top to bottom: its cache key, a cache lookup, the
// step itself (RUN, COPY/ADD or WORKDIR, each in its own file), the commit of
// what it wrote, the cache record and the events.
#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"
#include "worker/build_run.h"

namespace longshore::worker {
namespace build_internal {

absl::Status BuildRun::BuildStep(const dockerfile::Stage& st,
                                 const dockerfile::Node& node,
                                 const dockerfile::ExpandedStep& step,
                                 StageResult* r) {
  image::HistoryEntry hist;
  hist.created_by = step.created_by;
  hist.comment = "buildkit.dockerfile.v0";
  if (step.kind == dockerfile::ExpandedStep::kConfigOnly) {
    // Config-only steps are dated by the step before them, so a rebuild
    // served from the cache gives the same config, and the same digest.
    hist.created = LastCreated(*r);
    r->cache_key = KeyOf({r->cache_key, step.cache_text});
    hist.empty_layer = true;
    r->history.push_back(hist);
    return absl::OkStatus();
  }
  v1::StepRef ref = MakeStep(st, node);
  EmitStarted(ref);
  Clock::time_point start = Clock::now();

  auto key_or = StepKey(step, *r);
  if (!key_or.ok()) return Fail(key_or.status(), ref, node.start_line);
  const std::string key = *key_or;

  if (!req_.spec.no_cache()) {
    auto hit = cache_->Lookup(key, *store_);
    if (!hit.ok()) {
      Warn(absl::StrCat("cache lookup for step ", ref.index(),
                        " failed, building it: ", hit.status().message()));
    } else if (hit->has_value()) {
      absl::Status s = UseCached(**hit, r, hist);
      if (s.ok()) {
        r->cache_key = key;
        v1::BuildEvent ev;
        ev.set_time_unix_nanos(NowNanos());
        *ev.mutable_step_cached()->mutable_step() = ref;
        if ((*hit)->layer) {
          ev.mutable_step_cached()->set_layer_digest((*hit)->layer->digest);
        }
        sink_->Emit(ev);
        return absl::OkStatus();
      }
      Warn(absl::StrCat("cache entry for step ", ref.index(),
                        " unusable, building it: ", s.message()));
    }
  }

  std::string step_dir = absl::StrCat(tmp_, "/step-", ref.index());
  RETURN_IF_ERROR(MakeDirs(step_dir + "/upper", 0755));
  RETURN_IF_ERROR(MakeDirs(step_dir + "/work", 0700));
  absl::Status s;
  switch (step.kind) {
    case dockerfile::ExpandedStep::kRun:
      s = ExecRun(step, *r, ref, step_dir);
      break;
    case dockerfile::ExpandedStep::kCopy:
      s = ExecCopy(step.copy, *r, step_dir);
      break;
    case dockerfile::ExpandedStep::kWorkdir:
      s = ExecWorkdir(step.workdir, *r, step_dir);
      break;
    default:
      break;
  }
  if (!s.ok()) return Fail(s, ref, node.start_line);
  if (Cancelled()) return absl::CancelledError("build cancelled");

  auto committed = Commit(step_dir + "/upper");
  if (!committed.ok()) return Fail(committed.status(), ref, node.start_line);
  hist.created = Created();
  image::CacheEntry record;
  record.config_change = nlohmann::json({{"created", hist.created}}).dump();
  std::string layer_digest;
  if (committed->has_value()) {
    const Layer& layer = **committed;
    record.layer = layer.blob;
    record.diff_id = layer.diff_id;
    layer_digest = layer.blob.digest;
    r->layers.push_back(layer);
    hist.empty_layer = false;
  } else {
    hist.empty_layer = true;
  }
  r->history.push_back(hist);
  r->cache_key = key;
  absl::Status cs = cache_->Store(key, record, *store_);
  if (!cs.ok()) Warn(absl::StrCat("cache write: ", cs.message()));
  EmitFinished(ref, start, layer_digest);
  return absl::OkStatus();
}

}  // namespace build_internal
}  // namespace longshore::worker
