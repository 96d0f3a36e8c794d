// Chooses which queued builds go to which workers. Today: first come, first
// served across the whole queue, each build to the accepting worker with the
// most free slots. Kept apart from the queue and the registry so a fairer
// policy (per submitter or tenant) can replace it without touching either.
#ifndef LONGSHORE_SCHEDULER_PLACEMENT_H_
#define LONGSHORE_SCHEDULER_PLACEMENT_H_

#include <string>
#include <vector>

#include "scheduler/build_queue.h"

namespace longshore::scheduler {

struct WorkerCapacity {
  std::string worker_id;
  int free_slots = 0;
  // False for draining or disconnected workers: they receive nothing new.
  bool accepting = false;
};

struct PlacementDecision {
  std::string build_id;
  std::string worker_id;
};

class Placement {
 public:
  // Decisions in queue order; never more per worker than its free slots. Ties
  // between workers with equally many free slots go to the one listed first.
  std::vector<PlacementDecision> Place(
      const std::vector<QueuedBuild>& queue,
      std::vector<WorkerCapacity> workers) const;
};

}  // namespace longshore::scheduler

#endif  // LONGSHORE_SCHEDULER_PLACEMENT_H_
