#include "scheduler/placement.h"

#include <algorithm>
#include <deque>
#include <map>
#include <tuple>

#include "common/platform.h"

namespace longshore::scheduler {

std::vector<PlacementDecision> Placement::Place(
    const std::vector<QueuedBuild>& queue, std::vector<WorkerCapacity> workers,
    absl::flat_hash_map<std::string, Share> shares) const {
  // Each submitter's queued builds, oldest first (the queue is in order).
  std::map<std::string, std::deque<const QueuedBuild*>> by_submitter;
  for (const QueuedBuild& build : queue) {
    by_submitter[build.submitter].push_back(&build);
  }
  int64_t last_round = 0;
  for (const auto& [submitter, share] : shares) {
    last_round = std::max(last_round, share.last_served);
  }
  std::vector<PlacementDecision> decisions;
  while (!by_submitter.empty()) {
    bool any_slot = false;
    for (const WorkerCapacity& w : workers) {
      any_slot = any_slot || (w.accepting && w.free_slots > 0);
    }
    if (!any_slot) break;  // No slot anywhere: the rest waits too.
    // The submitter with the fewest running builds, then the one served
    // least recently, then the oldest build.
    auto next = by_submitter.begin();
    for (auto it = std::next(next); it != by_submitter.end(); ++it) {
      const Share& a = shares[it->first];
      const Share& b = shares[next->first];
      if (std::make_tuple(a.running, a.last_served, it->second.front()->order) <
          std::make_tuple(b.running, b.last_served,
                          next->second.front()->order)) {
        next = it;
      }
    }
    const QueuedBuild* build = next->second.front();
    WorkerCapacity* best = nullptr;
    for (WorkerCapacity& w : workers) {
      if (!w.accepting || w.free_slots <= 0) continue;
      if (!PlatformMatches(build->platform, w.platform)) continue;
      if (best == nullptr || w.free_slots > best->free_slots) best = &w;
    }
    if (best == nullptr) {
      // No free worker of its platform: it waits; the submitter's later
      // builds are considered this round all the same.
      next->second.pop_front();
      if (next->second.empty()) by_submitter.erase(next);
      continue;
    }
    decisions.push_back({build->build_id, best->worker_id});
    --best->free_slots;
    Share& served = shares[next->first];
    ++served.running;
    served.last_served = ++last_round;
    next->second.pop_front();
    if (next->second.empty()) by_submitter.erase(next);
  }
  return decisions;
}

}  // namespace longshore::scheduler
