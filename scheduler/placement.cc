#include "scheduler/placement.h"

namespace longshore::scheduler {

std::vector<PlacementDecision> Placement::Place(
    const std::vector<QueuedBuild>& queue,
    std::vector<WorkerCapacity> workers) const {
  std::vector<PlacementDecision> decisions;
  for (const QueuedBuild& build : queue) {
    WorkerCapacity* best = nullptr;
    for (WorkerCapacity& w : workers) {
      if (!w.accepting || w.free_slots <= 0) continue;
      if (best == nullptr || w.free_slots > best->free_slots) best = &w;
    }
    if (best == nullptr) break;  // No slot anywhere: the rest waits too.
    decisions.push_back({build.build_id, best->worker_id});
    --best->free_slots;
  }
  return decisions;
}

}  // namespace longshore::scheduler
