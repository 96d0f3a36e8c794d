#include "scheduler/build_queue.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace longshore::scheduler {
namespace {

std::string LaneKey(const QueuedBuild& b) {
  // Submitter names, platforms and labels never hold a NUL byte.
  const std::string nul(1, '\0');
  return absl::StrCat(b.submitter, nul, b.platform, nul,
                      absl::StrJoin(b.labels, nul));
}

}  // namespace

void BuildQueue::Push(const QueuedBuild& build) {
  Remove(build.build_id);
  std::string key = LaneKey(build);
  Lane& lane = lanes_[key];
  if (lane.builds.empty()) {
    lane.submitter = build.submitter;
    lane.platform = build.platform;
    lane.labels = build.labels;
  }
  lane.builds[build.order] = build;
  order_of_[build.build_id] = Where{std::move(key), build.order};
  orders_.insert(build.order);
  ++per_submitter_[build.submitter];
}

bool BuildQueue::Remove(const std::string& build_id) {
  auto it = order_of_.find(build_id);
  if (it == order_of_.end()) return false;
  auto lane = lanes_.find(it->second.lane);
  if (lane != lanes_.end()) {
    auto count = per_submitter_.find(lane->second.submitter);
    if (count != per_submitter_.end() && --count->second == 0) {
      per_submitter_.erase(count);
    }
    lane->second.builds.erase(it->second.order);
    if (lane->second.builds.empty()) lanes_.erase(lane);
  }
  orders_.erase(it->second.order);
  order_of_.erase(it);
  return true;
}

bool BuildQueue::Contains(const std::string& build_id) const {
  return order_of_.contains(build_id);
}

int BuildQueue::Position(const std::string& build_id) const {
  auto it = order_of_.find(build_id);
  if (it == order_of_.end()) return 0;
  return static_cast<int>(orders_.order_of_key(it->second.order)) + 1;
}

size_t BuildQueue::CountOf(const std::string& submitter) const {
  auto it = per_submitter_.find(submitter);
  return it == per_submitter_.end() ? 0 : it->second;
}

std::vector<QueuedBuild> BuildQueue::Entries() const {
  std::vector<QueuedBuild> out;
  out.reserve(size());
  for (const auto& [key, lane] : lanes_) {
    for (const auto& [order, build] : lane.builds) out.push_back(build);
  }
  std::sort(out.begin(), out.end(),
            [](const QueuedBuild& a, const QueuedBuild& b) {
              return a.order < b.order;
            });
  return out;
}

}  // namespace longshore::scheduler
