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

  while (free > 0) {
    // The worker each kind of lane would get: most free slots, first listed
    // on ties. Computed once per decision for the platform and labels lanes
    // ask for.
    absl::flat_hash_map<const BuildQueue::Lane*, WorkerCapacity*> best_for;
    auto best_worker = [&](const BuildQueue::Lane& lane) {
      auto [it, inserted] = best_for.try_emplace(&lane, nullptr);
      if (!inserted) return it->second;
      for (WorkerCapacity& w : workers) {
        if (!w.accepting || w.free_slots <= 0) continue;
        if (!PlatformMatches(lane.platform, w.platform)) continue;
        if (!HasLabels(w, lane.labels)) continue;
        if (it->second == nullptr || w.free_slots > it->second->free_slots) {
          it->second = &w;
        }
      }
      return it->second;
    };
    // The lane whose submitter has the fewest running builds, then was
    // served least recently, then holds the oldest build; lanes no free
    // worker can take are passed over (their builds wait, later lanes go on).
    Cursor* chosen = nullptr;
    WorkerCapacity* target = nullptr;
    std::tuple<int, int64_t, int64_t> chosen_key;
    for (Cursor& c : cursors) {
      if (c.next == c.lane->builds.end()) continue;
      WorkerCapacity* w = best_worker(*c.lane);
      if (w == nullptr) continue;
      const Share& share = shares[c.lane->submitter];
      auto key = std::make_tuple(share.running, share.last_served,
                                 c.next->second.order);
      if (chosen == nullptr || key < chosen_key) {
        chosen = &c;
        chosen_key = key;
        target = w;
      }
    }
    if (chosen == nullptr) break;
    // The lane is chosen; now the worker for its head build, warm first.
    const QueuedBuild& build = chosen->next->second;
    std::string reason = "least_loaded";
    {
      auto warmth = [&build](const WorkerCapacity& w) {
        if (w.warm == nullptr || build.affinity.empty()) return 0;
        if (w.warm->contains(build.affinity[0])) return 2;
        for (size_t i = 1; i < build.affinity.size(); ++i) {
          if (w.warm->contains(build.affinity[i])) return 1;
        }
        return 0;
      };
      auto load = [](const WorkerCapacity& w) {
        return w.slots > 0
                   ? static_cast<double>(w.slots - w.free_slots) / w.slots
                   : 1.0;
      };
      int best_warmth = -1;
      for (WorkerCapacity& w : workers) {
        if (!w.accepting || w.free_slots <= 0) continue;
        if (!PlatformMatches(chosen->lane->platform, w.platform)) continue;
        if (!HasLabels(w, chosen->lane->labels)) continue;
        const int warm = warmth(w);
        if (warm > best_warmth ||
            (warm == best_warmth && (load(w) < load(*target) ||
                                     (load(w) == load(*target) &&
                                      w.free_slots > target->free_slots)))) {
          best_warmth = warm;
          target = &w;
        }
      }
      if (best_warmth == 2) {
        reason = "dockerfile";
      } else if (best_warmth == 1) {
        reason = "base";
      } else if (!chosen->lane->labels.empty()) {
        reason = "label";  // Among the workers its labels allow.
      }
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
