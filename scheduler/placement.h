// Chooses which queued builds go to which workers: fair between submitters,
// first come first served within one, each build to a worker of its platform
// that has every worker label the build requires.
// Each free slot goes to the oldest queued build of the submitter with the
// fewest builds running (those placed in the same round included); between
// equals, to the one served least recently, then to the older build. A team
// that queues five hundred builds does not hold every other team's first build
// back. Among the accepting workers with a free slot that can take it, the
// build goes to one warm for it (that built the same Dockerfile, else that
// pulled its base image), then to the least loaded by busy/total slots, then
// to the one with most free slots: a warm but busy worker is never waited
// for. Kept
// apart from the queue and the registry. Each decision costs O(lanes +
// workers), whatever the number of queued builds: only the head of each lane
// (a submitter's builds for one platform) is a candidate.
#ifndef LONGSHORE_SCHEDULER_PLACEMENT_H_
#define LONGSHORE_SCHEDULER_PLACEMENT_H_

#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/hash/hash.h"
#include "absl/strings/string_view.h"
#include "scheduler/build_queue.h"

namespace longshore::scheduler {

struct WorkerCapacity {
  std::string worker_id;
  int free_slots = 0;
  // False for draining or disconnected workers: they receive nothing new.
  bool accepting = false;
  // What it builds for ("linux/amd64"); empty: unknown (an older worker),
  // which only takes builds that name no platform.
  std::string platform;
  // Its labels as "k=v" strings (any order).
  std::vector<std::string> labels;
  int slots = 0;  // All its slots (free_slots of them free).
  // Affinity keys of what it built recently, hashed (null: none known).
  const absl::flat_hash_set<uint64_t>* warm = nullptr;
};

// An affinity key as placement compares it: 8 bytes instead of ~80, so a
// queue of 100k builds stays small. Stable within one process only.
inline uint64_t AffinityHash(absl::string_view key) {
  return absl::Hash<absl::string_view>{}(key);
}

struct PlacementDecision {
  std::string build_id;
  std::string worker_id;
  // Why this worker: "dockerfile" (it built the same Dockerfile), "base" (it
  // pulled the same base image), "label" (the least loaded of those with the
  // labels the build requires) or "least_loaded".
  std::string reason;
};

class Placement {
 public:
  // What placement knows of a submitter's share.
  struct Share {
    int running = 0;          // RUNNING builds
    int64_t last_served = 0;  // larger: served more recently (0: never)
  };
  // Decisions in placement order; never more per worker than its free
  // slots. `shares` by submitter (absent: nothing running, never served).
  // Ties between workers with equally many free slots go to the one listed
  // first.
  std::vector<PlacementDecision> Place(
      const BuildQueue& queue, std::vector<WorkerCapacity> workers,
      absl::flat_hash_map<std::string, Share> shares = {}) const;
  // The same over a list of queued builds (tests).
  std::vector<PlacementDecision> Place(
      const std::vector<QueuedBuild>& queue,
      std::vector<WorkerCapacity> workers,
      absl::flat_hash_map<std::string, Share> shares = {}) const;
};

}  // namespace longshore::scheduler

#endif  // LONGSHORE_SCHEDULER_PLACEMENT_H_
