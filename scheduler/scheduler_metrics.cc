#include "scheduler/scheduler_metrics.h"

#include <algorithm>
#include <string>

namespace longshore::scheduler {
namespace {

// Builds run from seconds to hours; queue waits from milliseconds to an hour.
const prometheus::Histogram::BucketBoundaries& BuildBuckets() {
  static const auto* b = new prometheus::Histogram::BucketBoundaries{
      1, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200};
  return *b;
}
const prometheus::Histogram::BucketBoundaries& WaitBuckets() {
  static const auto* b = new prometheus::Histogram::BucketBoundaries{
      0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600};
  return *b;
}

std::string ResultLabel(longshore::v1::BuildState state) {
  switch (state) {
    case longshore::v1::SUCCEEDED:
      return "succeeded";
    case longshore::v1::FAILED:
      return "failed";
    case longshore::v1::CANCELLED:
      return "cancelled";
    default:
      return "unknown";
  }
}

}  // namespace

SchedulerMetrics::SchedulerMetrics(prometheus::Registry& registry)
    : queue_depth_(prometheus::BuildGauge()
                       .Name("longshore_scheduler_queue_depth")
                       .Help("Builds waiting in the queue for a worker.")
                       .Register(registry)
                       .Add({})),
      builds_running_(prometheus::BuildGauge()
                          .Name("longshore_scheduler_builds_running")
                          .Help("Builds leased to a worker.")
                          .Register(registry)
                          .Add({})),
      workers_(prometheus::BuildGauge()
                   .Name("longshore_scheduler_workers")
                   .Help("Connected workers by state.")
                   .Register(registry)),
      workers_idle_(workers_.Add({{"state", "idle"}})),
      workers_busy_(workers_.Add({{"state", "busy"}})),
      workers_draining_(workers_.Add({{"state", "draining"}})),
      builds_submitted_(prometheus::BuildCounter()
                            .Name("longshore_scheduler_builds_submitted_total")
                            .Help("Builds accepted by Submit.")
                            .Register(registry)
                            .Add({})),
      submits_rejected_(
          prometheus::BuildCounter()
              .Name("longshore_scheduler_submits_rejected_total")
              .Help("Submits refused before anything was queued, by reason.")
              .Register(registry)),
      rejected_queue_full_(submits_rejected_.Add({{"reason", "queue_full"}})),
      rejected_submitter_full_(
          submits_rejected_.Add({{"reason", "submitter_queue_full"}})),
      rejected_quota_(submits_rejected_.Add({{"reason", "submitter_quota"}})),
      builds_finished_(
          prometheus::BuildCounter()
              .Name("longshore_scheduler_builds_finished_total")
              .Help("Builds that reached a final state, by result.")
              .Register(registry)),
      build_duration_(
          prometheus::BuildHistogram()
              .Name("longshore_scheduler_build_duration_seconds")
              .Help("Time from lease to result of a build's final attempt.")
              .Register(registry)
              .Add({}, BuildBuckets())),
      queue_wait_(prometheus::BuildHistogram()
                      .Name("longshore_scheduler_queue_wait_seconds")
                      .Help("Time a build waited in the queue before a lease.")
                      .Register(registry)
                      .Add({}, WaitBuckets())),
      lease_expirations_(
          prometheus::BuildCounter()
              .Name("longshore_scheduler_lease_expirations_total")
              .Help("Build leases lost because a worker missed its heartbeats.")
              .Register(registry)
              .Add({})),
      requeues_(prometheus::BuildCounter()
                    .Name("longshore_scheduler_requeues_total")
                    .Help("Builds queued again, by reason: interrupted (the "
                          "attempt ended without a result) or released (a "
                          "draining worker gave it back).")
                    .Register(registry)),
      reconciled_(prometheus::BuildCounter()
                      .Name("longshore_scheduler_reconciliations_total")
                      .Help("Mismatches between a worker's heartbeat and its "
                            "leases, fixed: lease_not_running (queued "
                            "again), unleased_build_stopped.")
                      .Register(registry)),
      merged_(prometheus::BuildCounter()
                  .Name("longshore_scheduler_builds_merged_total")
                  .Help("Submissions that shared the execution of an "
                        "identical one (same submitter and inputs) in flight.")
                  .Register(registry)
                  .Add({})),
      placements_(prometheus::BuildCounter()
                      .Name("longshore_scheduler_placements_total")
                      .Help("Leases by why the worker was chosen: dockerfile "
                            "or base (warm for the build), label (the least "
                            "loaded with the required labels), least_loaded.")
                      .Register(registry)),
      reattached_(prometheus::BuildCounter()
                      .Name("longshore_scheduler_builds_reattached_total")
                      .Help("Running builds whose worker reconnected still "
                            "running them (not run again).")
                      .Register(registry)
                      .Add({})),
      slots_(prometheus::BuildGauge()
                 .Name("longshore_scheduler_worker_slots")
                 .Help("Build slots of connected workers: busy (leased) and "
                       "free (on workers that accept builds).")
                 .Register(registry)),
      slots_busy_(slots_.Add({{"state", "busy"}})),
      slots_free_(slots_.Add({{"state", "free"}})),
      journal_commit_(
          prometheus::BuildHistogram()
              .Name("longshore_scheduler_journal_commit_seconds")
              .Help("Time to commit one journal transaction (all the writes "
                    "of one submit, result or dispatch round).")
              .Register(registry)
              .Add({},
                   prometheus::Histogram::BucketBoundaries{
                       0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                       0.025, 0.05, 0.1, 0.25, 1})),
      context_bytes_received_(
          prometheus::BuildCounter()
              .Name("longshore_scheduler_context_bytes_received_total")
              .Help("Bytes of build context uploaded by clients.")
              .Register(registry)
              .Add({})),
      insecure_(prometheus::BuildGauge()
                    .Name("longshore_scheduler_insecure")
                    .Help("1 when the scheduler serves plaintext gRPC on a "
                          "non-loopback address (--insecure).")
                    .Register(registry)
                    .Add({})),
      log_bytes_dropped_(
          prometheus::BuildCounter()
              .Name("longshore_scheduler_log_bytes_dropped_total")
              .Help("Step output dropped because its build passed "
                    "--max-log-bytes.")
              .Register(registry)
              .Add({})) {
  for (auto state : {longshore::v1::SUCCEEDED, longshore::v1::FAILED,
                     longshore::v1::CANCELLED}) {
    builds_finished_.Add({{"result", ResultLabel(state)}});
  }
  // Every series exists from the start, at 0: rates and alerts see a value
  // rather than nothing until the first event.
  for (const char* reason : {"interrupted", "released"}) {
    requeues_.Add({{"reason", reason}});
  }
  for (const char* reason : {"dockerfile", "base", "label", "least_loaded"}) {
    placements_.Add({{"reason", reason}});
  }
}

void SchedulerMetrics::SetWorkers(const WorkerCounts& counts) {
  workers_idle_.Set(counts.idle);
  workers_busy_.Set(counts.busy);
  workers_draining_.Set(counts.draining);
  slots_busy_.Set(counts.slots_busy);
  slots_free_.Set(counts.slots_free);
}

void SchedulerMetrics::JournalCommit(absl::Duration took) {
  journal_commit_.Observe(absl::ToDoubleSeconds(took));
}

void SchedulerMetrics::BuildFinished(longshore::v1::BuildState result,
                                     absl::Duration ran) {
  builds_finished_.Add({{"result", ResultLabel(result)}}).Increment();
  if (ran > absl::ZeroDuration()) {
    build_duration_.Observe(absl::ToDoubleSeconds(ran));
  }
}

void SchedulerMetrics::QueueWait(absl::Duration waited) {
  queue_wait_.Observe(
      absl::ToDoubleSeconds(std::max(waited, absl::ZeroDuration())));
}

}  // namespace longshore::scheduler
