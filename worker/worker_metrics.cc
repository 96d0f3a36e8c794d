#include "worker/worker_metrics.h"

#include "absl/strings/str_cat.h"

namespace longshore::worker {
namespace {

const prometheus::Histogram::BucketBoundaries& DurationBuckets() {
  static const auto* b = new prometheus::Histogram::BucketBoundaries{
      0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600};
  return *b;
}

// Sandbox setup and layer commits: milliseconds to a minute.
const prometheus::Histogram::BucketBoundaries& ShortBuckets() {
  static const auto* b = new prometheus::Histogram::BucketBoundaries{
      0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
  return *b;
}

prometheus::Counter* Counter(prometheus::Registry& r, const char* name,
                             const char* help) {
  return &prometheus::BuildCounter().Name(name).Help(help).Register(r).Add({});
}

prometheus::Gauge* Gauge(prometheus::Registry& r, const char* name,
                         const char* help) {
  return &prometheus::BuildGauge().Name(name).Help(help).Register(r).Add({});
}

}  // namespace

WorkerMetrics::WorkerMetrics()
    : registry_(std::make_shared<prometheus::Registry>()) {
  prometheus::Registry& r = *registry_;
  longshore::RegisterBuildInfo(r, "worker");
  builds_ = &prometheus::BuildCounter()
                 .Name("longshore_worker_builds_total")
                 .Help("Builds this worker finished, by result.")
                 .Register(r);
  build_seconds_ = &prometheus::BuildHistogram()
                        .Name("longshore_worker_build_duration_seconds")
                        .Help("Wall time of builds on this worker.")
                        .Register(r);
  steps_ = &prometheus::BuildCounter()
                .Name("longshore_worker_steps_total")
                .Help(
                    "Filesystem steps (RUN, COPY, ADD, WORKDIR) by kind and "
                    "whether the cache served them.")
                .Register(r);
  step_seconds_ = &prometheus::BuildHistogram()
                       .Name("longshore_worker_step_duration_seconds")
                       .Help("Wall time of executed (uncached) steps.")
                       .Register(r);
  slots_ = &prometheus::BuildGauge()
                .Name("longshore_worker_slots")
                .Help(
                    "Build slots of this worker by state: busy (running a "
                    "build) or free.")
                .Register(r);
  slots_->Add({{"state", "busy"}});
  slots_->Add({{"state", "free"}});
  connected_ = Gauge(r, "longshore_worker_scheduler_connected",
                     "1 while the worker holds its stream to the scheduler.");
  connects_ = Counter(r, "longshore_worker_scheduler_connects_total",
                      "Streams to the scheduler established (the first, and "
                      "each reconnection).");
  ready_ = Gauge(r, "longshore_worker_ready",
                 "1 while /readyz answers 200: the sandbox self-test passed "
                 "and the stream to the scheduler is up.");
  cache_lookups_ = &prometheus::BuildCounter()
                        .Name("longshore_worker_cache_lookups_total")
                        .Help(
                            "Layer cache lookups by tier (local, remote) "
                            "and result (hit, miss, error).")
                        .Register(r);
  for (const char* tier : {"local", "remote"}) {
    for (const char* result : {"hit", "miss", "error"}) {
      cache_lookups_->Add({{"tier", tier}, {"result", result}});
    }
  }
  bytes_pulled_ = Counter(r, "longshore_worker_layer_bytes_pulled_total",
                          "Bytes of blobs downloaded from registries (base "
                          "image layers and remote cache hits).");
  bytes_pushed_ = Counter(r, "longshore_worker_layer_bytes_pushed_total",
                          "Bytes of layer blobs uploaded to registries "
                          "(pushed images and the shared cache).");
  context_bytes_ = Counter(r, "longshore_worker_context_bytes_fetched_total",
                           "Bytes of build contexts fetched from the "
                           "scheduler.");
  sandbox_setup_ = &prometheus::BuildHistogram()
                        .Name("longshore_worker_sandbox_setup_seconds")
                        .Help(
                            "From spawning a RUN step's sandbox to its "
                            "command starting (namespaces, root, mounts, "
                            "network).")
                        .Register(r)
                        .Add({}, ShortBuckets());
  commit_seconds_ = &prometheus::BuildHistogram()
                         .Name("longshore_worker_commit_seconds")
                         .Help(
                             "Time to commit a step's changes to a "
                             "compressed layer and a snapshot.")
                         .Register(r)
                         .Add({}, ShortBuckets());
  commit_bytes_ = Counter(r, "longshore_worker_commit_bytes_total",
                          "Bytes of the layers commits produced "
                          "(compressed).");
  store_used_ = Gauge(r, "longshore_worker_store_used_bytes",
                      "Bytes of blobs and snapshots in the content store, "
                      "after the last build's collection.");
  store_budget_ = Gauge(r, "longshore_worker_store_budget_bytes",
                        "The content store's budget (--store-budget); 0: "
                        "none.");
  run_steps_ = &prometheus::BuildCounter()
                    .Name("longshore_worker_run_steps_total")
                    .Help(
                        "RUN steps started, by network mode (none, "
                        "default, host).")
                    .Register(r);
  for (const char* mode : {"none", "default", "host"}) {
    run_steps_->Add({{"network", mode}});
  }
}

WorkerMetrics::~WorkerMetrics() = default;

absl::Status WorkerMetrics::Serve(const std::string& address) {
  if (address.empty()) return absl::OkStatus();
  auto server =
      MetricsServer::Start(address, registry_, [this] { return Ready(); });
  if (!server.ok()) {
    return absl::UnavailableError(absl::StrCat(
        "--metrics-listen ", address, ": ", server.status().message()));
  }
  server_ = std::move(*server);
  return absl::OkStatus();
}

absl::Status WorkerMetrics::Ready() const {
  if (!sandbox_checked_) {
    return absl::UnavailableError("the sandbox self-test has not run yet");
  }
  if (!sandbox_ok_) {
    return absl::FailedPreconditionError(
        "the sandbox self-test failed (see the worker's log)");
  }
  if (!connected_now_) {
    return absl::UnavailableError("no stream to the scheduler");
  }
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
  slots_->Add({{"state", "busy"}}).Set(busy);
  slots_->Add({{"state", "free"}}).Set(total > busy ? total - busy : 0);
}

void WorkerMetrics::Connected(bool up) {
  if (up && !connected_now_) connects_->Increment();
  connected_now_ = up;
  connected_->Set(up ? 1 : 0);
  ReadyChanged();
}

void WorkerMetrics::OnReadyChange(std::function<void(bool)> listener) {
  ready_listener_ = std::move(listener);
  ReadyChanged();
}

void WorkerMetrics::ReadyChanged() {
  const bool ready = Ready().ok();
  ready_->Set(ready ? 1 : 0);
  if (ready_listener_) ready_listener_(ready);
}

void WorkerMetrics::SetSandboxChecked(bool passed) {
  sandbox_ok_ = passed;
  sandbox_checked_ = true;
  ReadyChanged();
}

void WorkerMetrics::ContextFetched(int64_t bytes) {
  context_bytes_->Increment(static_cast<double>(bytes));
}
void WorkerMetrics::LayerPulled(int64_t bytes) {
  bytes_pulled_->Increment(static_cast<double>(bytes));
}
void WorkerMetrics::LayerPushed(int64_t bytes) {
  bytes_pushed_->Increment(static_cast<double>(bytes));
}

void WorkerMetrics::CacheLookup(absl::string_view tier,
                                absl::string_view result) {
  cache_lookups_
      ->Add({{std::string("tier"), std::string(tier)},
             {std::string("result"), std::string(result)}})
      .Increment();
}

void WorkerMetrics::RunStep(absl::string_view network) {
  run_steps_->Add({{"network", std::string(network)}}).Increment();
}

void WorkerMetrics::SandboxSetup(double seconds) {
  sandbox_setup_->Observe(seconds);
}

void WorkerMetrics::LayerCommitted(double seconds, int64_t bytes) {
  commit_seconds_->Observe(seconds);
  commit_bytes_->Increment(static_cast<double>(bytes));
}

void WorkerMetrics::StoreUsage(int64_t used_bytes, int64_t budget_bytes) {
  store_used_->Set(static_cast<double>(used_bytes));
  store_budget_->Set(static_cast<double>(budget_bytes));
}

}  // namespace longshore::worker
