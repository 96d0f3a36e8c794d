// The scheduler's Prometheus metrics, registered on one registry. Names follow
// Prometheus conventions: `longshore_scheduler_` prefix, base units, `_total`
// counters.
#ifndef LONGSHORE_SCHEDULER_SCHEDULER_METRICS_H_
#define LONGSHORE_SCHEDULER_SCHEDULER_METRICS_H_

#include <memory>

#include "absl/time/time.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "proto/longshore.pb.h"
#include "scheduler/worker_registry.h"

namespace longshore::scheduler {

class SchedulerMetrics {
 public:
  explicit SchedulerMetrics(prometheus::Registry& registry);

  void SetQueueDepth(size_t depth) { queue_depth_.Set(depth); }
  void SetInsecure(bool insecure) { insecure_.Set(insecure ? 1 : 0); }
  void LogBytesDropped(int64_t bytes) {
    log_bytes_dropped_.Increment(static_cast<double>(bytes));
  }
  void SetBuildsRunning(size_t running) { builds_running_.Set(running); }
  void SetWorkers(const WorkerCounts& counts);
  void BuildSubmitted() { builds_submitted_.Increment(); }
  // A Submit refused because the queue (all of it, or the submitter's share)
  // is at its limit.
  void SubmitRejectedQueueFull(bool per_submitter) {
    (per_submitter ? rejected_submitter_full_ : rejected_queue_full_)
        .Increment();
  }
  void SubmitRejectedQuota() { rejected_quota_.Increment(); }
  // Counts the result and, for builds that ran, observes their run time.
  void BuildFinished(longshore::v1::BuildState result, absl::Duration ran);
  void QueueWait(absl::Duration waited);
  void LeaseExpired() { lease_expirations_.Increment(); }
  // One journal transaction's COMMIT (a coordinator call's writes).
  void JournalCommit(absl::Duration took);
  // A build queued again: "interrupted" (its attempt ended without a result;
  // counts an attempt) or "released" (a draining worker gave it back).
  void Requeued(const std::string& reason) {
    requeues_.Add({{"reason", reason}}).Increment();
  }
  // A mismatch a heartbeat revealed and the scheduler fixed:
  // "lease_not_running" or "unleased_build_stopped".
  void Reconciled(const std::string& what) {
    reconciled_.Add({{"mismatch", what}}).Increment();
  }
  // A lease, by why its worker was chosen: "dockerfile", "base" (warm for
  // the build), "label" or "least_loaded".
  void Placed(const std::string& reason) {
    placements_.Add({{"reason", reason}}).Increment();
  }
  // A submission that joined an identical one in flight.
  void Merged() { merged_.Increment(); }
  // A running build whose worker reconnected holding it.
  void Reattached() { reattached_.Increment(); }
  void ContextBytesReceived(int64_t bytes) {
    context_bytes_received_.Increment(static_cast<double>(bytes));
  }

 private:
  prometheus::Gauge& queue_depth_;
  prometheus::Gauge& builds_running_;
  prometheus::Family<prometheus::Gauge>& workers_;
  prometheus::Gauge& workers_idle_;
  prometheus::Gauge& workers_busy_;
  prometheus::Gauge& workers_draining_;
  prometheus::Counter& builds_submitted_;
  prometheus::Family<prometheus::Counter>& submits_rejected_;
  prometheus::Counter& rejected_queue_full_;
  prometheus::Counter& rejected_submitter_full_;
  prometheus::Counter& rejected_quota_;
  prometheus::Family<prometheus::Counter>& builds_finished_;
  prometheus::Histogram& build_duration_;
  prometheus::Histogram& queue_wait_;
  prometheus::Counter& lease_expirations_;
  prometheus::Family<prometheus::Counter>& requeues_;
  prometheus::Family<prometheus::Counter>& reconciled_;
  prometheus::Counter& merged_;
  prometheus::Family<prometheus::Counter>& placements_;
  prometheus::Counter& reattached_;
  prometheus::Family<prometheus::Gauge>& slots_;
  prometheus::Gauge& slots_busy_;
  prometheus::Gauge& slots_free_;
  prometheus::Histogram& journal_commit_;
  prometheus::Counter& context_bytes_received_;
  prometheus::Gauge& insecure_;
  prometheus::Counter& log_bytes_dropped_;
};

}  // namespace longshore::scheduler

#endif  // LONGSHORE_SCHEDULER_SCHEDULER_METRICS_H_
