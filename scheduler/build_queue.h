// The queued builds, in the order they are to be considered for placement:
// ascending submission order, so a build queued again after losing its worker
// goes ahead of builds submitted after it. Not thread-safe; the coordinator
// serializes access.
#ifndef LONGSHORE_SCHEDULER_BUILD_QUEUE_H_
#define LONGSHORE_SCHEDULER_BUILD_QUEUE_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"

namespace longshore::scheduler {

struct QueuedBuild {
  std::string build_id;
  std::string submitter;
  int64_t order = 0;      // Submission order; unique per build.
  int64_t queued_ns = 0;  // When it (last) entered the queue.
  std::string platform;   // BuildSpec.platform; empty: any worker
};

class BuildQueue {
 public:
  // Adds or replaces the entry for `build.build_id`.
  void Push(const QueuedBuild& build);
  // False when the build was not queued.
  bool Remove(const std::string& build_id);
  bool Contains(const std::string& build_id) const;
  // 1-based place in the queue, 0 when absent.
  int Position(const std::string& build_id) const;
  // Entries in placement order.
  std::vector<QueuedBuild> Entries() const;
  size_t size() const { return by_order_.size(); }
  bool empty() const { return by_order_.empty(); }

 private:
  std::map<int64_t, QueuedBuild> by_order_;
  absl::flat_hash_map<std::string, int64_t> order_of_;
};

}  // namespace longshore::scheduler

#endif  // LONGSHORE_SCHEDULER_BUILD_QUEUE_H_
