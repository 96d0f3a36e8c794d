#include "worker/worker_metrics.h"

#include "absl/strings/str_cat.h"

namespace longshore::worker {
namespace {

const prometheus::Histogram::BucketBoundaries& DurationBuckets() {
  static const auto* b = new prometheus::Histogram::BucketBoundaries{
      0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600};
  return *b;
}

}  // namespace

WorkerMetrics::WorkerMetrics()
    : registry_(std::make_shared<prometheus::Registry>()) {
  builds_ = &prometheus::BuildCounter()
                 .Name("longshore_worker_builds_total")
                 .Help("Builds this worker finished, by result.")
                 .Register(*registry_);
  build_seconds_ = &prometheus::BuildHistogram()
                        .Name("longshore_worker_build_duration_seconds")
                        .Help("Wall time of builds on this worker.")
                        .Register(*registry_);
  steps_ = &prometheus::BuildCounter()
                .Name("longshore_worker_steps_total")
                .Help(
                    "Filesystem steps (RUN, COPY, ADD, WORKDIR) by kind and "
                    "whether the cache served them.")
                .Register(*registry_);
  step_seconds_ = &prometheus::BuildHistogram()
                       .Name("longshore_worker_step_duration_seconds")
                       .Help("Wall time of executed (uncached) steps.")
                       .Register(*registry_);
  slots_ = &prometheus::BuildGauge()
                .Name("longshore_worker_slots")
                .Help("Builds this worker may run at once.")
                .Register(*registry_)
                .Add({});
  slots_busy_ = &prometheus::BuildGauge()
                     .Name("longshore_worker_slots_busy")
                     .Help("Builds running on this worker.")
                     .Register(*registry_)
                     .Add({});
  connected_ = &prometheus::BuildGauge()
                    .Name("longshore_worker_scheduler_connected")
                    .Help(
                        "1 while the worker holds its stream to the "
                        "scheduler.")
                    .Register(*registry_)
                    .Add({});
}

absl::Status WorkerMetrics::Serve(const std::string& address) {
  if (address.empty()) return absl::OkStatus();
  try {
    exposer_ = std::make_unique<prometheus::Exposer>(address);
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("--metrics-listen ", address, ": ", e.what()));
  }
  exposer_->RegisterCollectable(registry_);
  return absl::OkStatus();
}

void WorkerMetrics::BuildFinished(const std::string& result, double seconds) {
  builds_->Add({{"result", result}}).Increment();
  build_seconds_->Add({}, DurationBuckets()).Observe(seconds);
}

void WorkerMetrics::StepFinished(const std::string& kind, bool cached,
                                 double seconds) {
  steps_->Add({{"kind", kind}, {"cached", cached ? "true" : "false"}})
      .Increment();
  if (!cached) {
    step_seconds_->Add({{"kind", kind}}, DurationBuckets()).Observe(seconds);
  }
}

void WorkerMetrics::SetSlots(int total, int busy) {
  slots_->Set(total);
  slots_busy_->Set(busy);
}

void WorkerMetrics::Connected(bool up) { connected_->Set(up ? 1 : 0); }

}  // namespace longshore::worker
