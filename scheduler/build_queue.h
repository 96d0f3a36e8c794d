// The queued builds, indexed for placement at any queue length: one FIFO lane
// per (submitter, platform, required worker labels), in ascending submission
// order, so a build queued again after losing its worker goes ahead of builds
// submitted after it; and an order-statistics index over all of them for queue
// positions. Push, Remove and Position are O(log n); placement looks only at
// the head of each lane. Not thread-safe; the coordinator serializes access.
#ifndef LONGSHORE_SCHEDULER_BUILD_QUEUE_H_
#define LONGSHORE_SCHEDULER_BUILD_QUEUE_H_

#include <cstdint>
#include <ext/pb_ds/assoc_container.hpp>
#include <ext/pb_ds/tree_policy.hpp>
#include <functional>
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
  // BuildSpec.worker_labels as "k=v" strings, sorted: a worker must have
  // them all.
  std::vector<std::string> labels;
  // dockerfile::AffinityKeys of the build, hashed (AffinityHash): which
  // workers are warm for it. The Dockerfile's key first.
  std::vector<uint64_t> affinity;
};

class BuildQueue {
 public:
  // Builds of one submitter for one platform and set of worker labels,
  // oldest first.
  struct Lane {
    std::string submitter;
    std::string platform;
    std::vector<std::string> labels;
    std::map<int64_t, QueuedBuild> builds;  // by order
  };

  // Adds or replaces the entry for `build.build_id`.
  void Push(const QueuedBuild& build);
  // False when the build was not queued.
  bool Remove(const std::string& build_id);
  bool Contains(const std::string& build_id) const;
  // 1-based place in submission order among all queued builds, 0 when absent.
  int Position(const std::string& build_id) const;
  // Queued builds of one submitter.
  size_t CountOf(const std::string& submitter) const;
  size_t size() const { return order_of_.size(); }
  bool empty() const { return order_of_.empty(); }

  // The non-empty lanes, in no particular order.
  const absl::flat_hash_map<std::string, Lane>& lanes() const { return lanes_; }
  // Every entry in submission order: O(n), for tests and listings.
  std::vector<QueuedBuild> Entries() const;

 private:
  struct Where {
    std::string lane;
    int64_t order;
  };
  using OrderIndex =
      __gnu_pbds::tree<int64_t, __gnu_pbds::null_type, std::less<int64_t>,
                       __gnu_pbds::rb_tree_tag,
                       __gnu_pbds::tree_order_statistics_node_update>;

  absl::flat_hash_map<std::string, Lane> lanes_;  // by LaneKey
  absl::flat_hash_map<std::string, Where> order_of_;
  absl::flat_hash_map<std::string, size_t> per_submitter_;
  OrderIndex orders_;
};

}  // namespace longshore::scheduler

#endif  // LONGSHORE_SCHEDULER_BUILD_QUEUE_H_
