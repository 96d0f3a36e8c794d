#include "scheduler/placement.h"

#include <algorithm>
#include <tuple>
#include <utility>

#include "common/platform.h"

namespace longshore::scheduler {
namespace {

bool HasLabels(const WorkerCapacity& w, const std::vector<std::string>& need) {
  for (const std::string& label : need) {
    if (std::find(w.labels.begin(), w.labels.end(), label) == w.labels.end()) {
      return false;
    }
  }
  return true;
}

}  // namespace

std::vector<PlacementDecision> Placement::Place(
    const std::vector<QueuedBuild>& queue, std::vector<WorkerCapacity> workers,
    absl::flat_hash_map<std::string, Share> shares) const {
  BuildQueue q;
  for (const QueuedBuild& b : queue) q.Push(b);
  return Place(q, std::move(workers), std::move(shares));
}

std::vector<PlacementDecision> Placement::Place(
    const BuildQueue& queue, std::vector<WorkerCapacity> workers,
    absl::flat_hash_map<std::string, Share> shares) const {
  std::vector<PlacementDecision> decisions;
  int free = 0;
  for (const WorkerCapacity& w : workers) {
    if (w.accepting && w.free_slots > 0) free += w.free_slots;
  }
  if (free == 0 || queue.empty()) return decisions;

  // Where each lane stands: the next of its builds to consider.
  struct Cursor {
    const BuildQueue::Lane* lane;
    std::map<int64_t, QueuedBuild>::const_iterator next;
  };
  std::vector<Cursor> cursors;
  cursors.reserve(queue.lanes().size());
  for (const auto& [key, lane] : queue.lanes()) {
    cursors.push_back({&lane, lane.builds.begin()});
  }
  int64_t last_round = 0;
  for (const auto& [submitter, share] : shares) {
    last_round = std::max(last_round, share.last_served);
  }

  // Whether a worker can take builds of a lane at all.
  auto can_take = [](const WorkerCapacity& w, const BuildQueue::Lane& lane) {
    return w.accepting && w.free_slots > 0 &&
           PlatformMatches(lane.platform, w.platform) &&
           HasLabels(w, lane.labels);
  };
  auto warmth = [](const WorkerCapacity& w, const QueuedBuild& build) {
    if (w.warm == nullptr || build.affinity.empty()) return 0;
    if (w.warm->contains(build.affinity[0])) return 2;
    for (size_t i = 1; i < build.affinity.size(); ++i) {
      if (w.warm->contains(build.affinity[i])) return 1;
    }
    return 0;
  };
  auto load = [](const WorkerCapacity& w) {
    return w.slots > 0 ? static_cast<double>(w.slots - w.free_slots) / w.slots
                       : 1.0;
  };

  while (free > 0) {
    // Whether some free worker can take each lane, asked once per decision.
    absl::flat_hash_map<const BuildQueue::Lane*, bool> takeable;
    auto any_worker = [&](const BuildQueue::Lane& lane) {
      auto [it, inserted] = takeable.try_emplace(&lane, false);
      if (inserted) {
        for (const WorkerCapacity& w : workers) {
          if (can_take(w, lane)) {
            it->second = true;
            break;
          }
        }
      }
      return it->second;
    };
    // The lane whose submitter has the fewest running builds, then was
    // served least recently, then holds the oldest build; lanes no free
    // worker can take are passed over (their builds wait, later lanes go on).
    Cursor* chosen = nullptr;
    std::tuple<int, int64_t, int64_t> chosen_key;
    for (Cursor& c : cursors) {
      if (c.next == c.lane->builds.end() || !any_worker(*c.lane)) continue;
      const Share& share = shares[c.lane->submitter];
      auto key = std::make_tuple(share.running, share.last_served,
                                 c.next->second.order);
      if (chosen == nullptr || key < chosen_key) {
        chosen = &c;
        chosen_key = key;
      }
    }
    if (chosen == nullptr) break;
    // The worker for its head build: warm first, then least loaded by
    // busy/total slots, then most free slots, then first listed.
    const QueuedBuild& build = chosen->next->second;
    WorkerCapacity* target = nullptr;
    int best_warmth = -1;
    for (WorkerCapacity& w : workers) {
      if (!can_take(w, *chosen->lane)) continue;
      const int warm = warmth(w, build);
      if (warm > best_warmth ||
          (warm == best_warmth &&
           std::make_tuple(load(w), -w.free_slots) <
               std::make_tuple(load(*target), -target->free_slots))) {
        best_warmth = warm;
        target = &w;
      }
    }
    std::string reason = "least_loaded";
    if (best_warmth == 2) {
      reason = "dockerfile";
    } else if (best_warmth == 1) {
      reason = "base";
    } else if (!chosen->lane->labels.empty()) {
      reason = "label";  // Among the workers its labels allow.
    }
    decisions.push_back({build.build_id, target->worker_id, reason});
    --target->free_slots;
    --free;
    Share& served = shares[chosen->lane->submitter];
    ++served.running;
    served.last_served = ++last_round;
    ++chosen->next;
  }
  return decisions;
}

}  // namespace longshore::scheduler
