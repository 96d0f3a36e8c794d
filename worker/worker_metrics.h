// The worker's Prometheus metrics (longshore_worker_*, and
// longshore_build_info), with /healthz and /readyz, served on --metrics-listen.
// docs/operating.md has the reference table; keep it in step with this file.
#ifndef LONGSHORE_WORKER_WORKER_METRICS_H_
#define LONGSHORE_WORKER_WORKER_METRICS_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/metrics_server.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "worker/build_executor.h"

namespace longshore::worker {

class WorkerMetrics : public ExecutorObserver {
 public:
  WorkerMetrics();
  ~WorkerMetrics() override;

  // Serves /metrics, /healthz and /readyz on `address` ("127.0.0.1:9101");
  // empty serves nothing. Ready means SetSandboxChecked(true) was called and
  // the worker holds its stream to the scheduler.
  absl::Status Serve(const std::string& address);
  int port() const { return server_ ? server_->port() : 0; }
  // Why the worker is not ready, or OK.
  absl::Status Ready() const;

  void BuildFinished(const std::string& result, double seconds);
  void StepFinished(const std::string& kind, bool cached, double seconds);
  void SetSlots(int total, int busy);
  void Connected(bool up);
  // Called with the readiness whenever it may have changed.
  void OnReadyChange(std::function<void(bool)> listener);
  // The sandbox self-test at start passed (or, false, failed).
  void SetSandboxChecked(bool passed);
  void ContextFetched(int64_t bytes);
  void LayerPulled(int64_t bytes);
  void LayerPushed(int64_t bytes);

  // ExecutorObserver.
  void CacheLookup(absl::string_view tier, absl::string_view result) override;
  void RunStep(absl::string_view network) override;
  void SandboxSetup(double seconds) override;
  void LayerCommitted(double seconds, int64_t bytes) override;
  void StoreUsage(int64_t used_bytes, int64_t budget_bytes) override;

  prometheus::Registry& registry() { return *registry_; }

 private:
  void ReadyChanged();

  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<MetricsServer> server_;
  std::atomic<bool> connected_now_{false};
  std::atomic<bool> sandbox_ok_{false};
  std::atomic<bool> sandbox_checked_{false};
  std::function<void(bool)> ready_listener_;
  prometheus::Family<prometheus::Counter>* builds_;
  prometheus::Family<prometheus::Histogram>* build_seconds_;
  prometheus::Family<prometheus::Counter>* steps_;
  prometheus::Family<prometheus::Histogram>* step_seconds_;
  prometheus::Family<prometheus::Gauge>* slots_;
  prometheus::Gauge* connected_;
  prometheus::Counter* connects_;
  prometheus::Gauge* ready_;
  prometheus::Family<prometheus::Counter>* cache_lookups_;
  prometheus::Counter* bytes_pulled_;
  prometheus::Counter* bytes_pushed_;
  prometheus::Counter* context_bytes_;
  prometheus::Histogram* sandbox_setup_;
  prometheus::Histogram* commit_seconds_;
  prometheus::Counter* commit_bytes_;
  prometheus::Gauge* store_used_;
  prometheus::Gauge* store_budget_;
  prometheus::Family<prometheus::Counter>* run_steps_;
};

}  // namespace longshore::worker

#endif  // LONGSHORE_WORKER_WORKER_METRICS_H_
