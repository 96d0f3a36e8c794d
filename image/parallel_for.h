// Runs independent fallible tasks on a few threads (blob transfers of one
// image).
#ifndef LONGSHORE_IMAGE_PARALLEL_FOR_H_
#define LONGSHORE_IMAGE_PARALLEL_FOR_H_

#include <algorithm>
#include <atomic>
#include <functional>
#include <thread>
#include <vector>

#include "absl/status/status.h"

namespace longshore::image {

// Calls fn(i) for every i in [0, n) on up to `parallelism` threads. Returns the
// error of the lowest failing index (so the message does not depend on thread
// timing); after a failure, tasks not yet started are skipped.
inline absl::Status ParallelFor(int n, int parallelism,
                                const std::function<absl::Status(int)>& fn) {
  std::vector<absl::Status> results(n);
  std::atomic<int> next{0};
  std::atomic<bool> failed{false};
  auto worker = [&] {
    while (true) {
      int i = next.fetch_add(1);
      if (i >= n || failed.load()) return;
      results[i] = fn(i);
      if (!results[i].ok()) failed.store(true);
    }
  };
  int threads = std::max(1, std::min(parallelism, n));
  if (threads == 1) {
    worker();
  } else {
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) pool.emplace_back(worker);
    for (std::thread& t : pool) t.join();
  }
  for (const absl::Status& s : results) {
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace longshore::image

#endif  // LONGSHORE_IMAGE_PARALLEL_FOR_H_
