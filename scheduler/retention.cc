#include "scheduler/retention.h"

#include <set>
#include <string>
#include <vector>

#include "common/status_macros.h"

namespace longshore::scheduler {

absl::StatusOr<SweepResult> Retention::Sweep(absl::Time now) {
  SweepResult result;
  if (options_.keep <= absl::ZeroDuration()) return result;
  const absl::Time cutoff = now - options_.keep;
  const int batch = options_.batch > 0 ? options_.batch : 256;
  while (true) {
    ASSIGN_OR_RETURN(
        std::vector<std::string> ids,
        journal_->FinishedBefore(absl::ToUnixNanos(cutoff), batch));
    if (ids.empty()) break;
    for (const std::string& id : ids) {
      RETURN_IF_ERROR(blobs_->RemoveOutputs(id));
    }
    RETURN_IF_ERROR(journal_->DeleteBuilds(ids));
    events_->Forget(ids);
    result.builds += static_cast<int>(ids.size());
    if (static_cast<int>(ids.size()) < batch) break;
  }
  // Listed before the journal is read: a context uploaded in between is
  // younger than the cutoff, and one submitted in between is in use.
  ASSIGN_OR_RETURN(std::vector<BlobStore::StoredContext> stored,
                   blobs_->ListContexts());
  ASSIGN_OR_RETURN(std::set<std::string> in_use,
                   journal_->ContextDigestsInUse());
  for (const BlobStore::StoredContext& c : stored) {
    if (in_use.count(c.digest) > 0 || c.last_used >= cutoff) continue;
    ASSIGN_OR_RETURN(bool removed,
                     blobs_->RemoveContextUnusedSince(c.digest, cutoff));
    if (!removed) continue;
    ++result.contexts;
    result.context_bytes += c.size;
  }
  return result;
}

}  // namespace longshore::scheduler
