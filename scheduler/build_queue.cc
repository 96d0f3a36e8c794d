#include "scheduler/build_queue.h"

namespace longshore::scheduler {

void BuildQueue::Push(const QueuedBuild& build) {
  Remove(build.build_id);
  by_order_[build.order] = build;
  order_of_[build.build_id] = build.order;
}

bool BuildQueue::Remove(const std::string& build_id) {
  auto it = order_of_.find(build_id);
  if (it == order_of_.end()) return false;
  by_order_.erase(it->second);
  order_of_.erase(it);
  return true;
}

bool BuildQueue::Contains(const std::string& build_id) const {
  return order_of_.contains(build_id);
}

int BuildQueue::Position(const std::string& build_id) const {
  auto it = order_of_.find(build_id);
  if (it == order_of_.end()) return 0;
  int position = 1;
  for (const auto& [order, entry] : by_order_) {
    if (order == it->second) return position;
    ++position;
  }
  return 0;
}

std::vector<QueuedBuild> BuildQueue::Entries() const {
  std::vector<QueuedBuild> out;
  out.reserve(by_order_.size());
  for (const auto& [order, entry] : by_order_) out.push_back(entry);
  return out;
}

}  // namespace longshore::scheduler
