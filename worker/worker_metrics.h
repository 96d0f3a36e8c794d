// The worker's Prometheus metrics (longshore_worker_*), served on
// --metrics-listen.
#ifndef LONGSHORE_WORKER_WORKER_METRICS_H_
#define LONGSHORE_WORKER_WORKER_METRICS_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "prometheus/counter.h"
#include "prometheus/exposer.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace longshore::worker {

class WorkerMetrics {
 public:
  WorkerMetrics();

  // Serves /metrics on `address` ("127.0.0.1:9101"); empty serves nothing.
  absl::Status Serve(const std::string& address);

  void BuildFinished(const std::string& result, double seconds);
  void StepFinished(const std::string& kind, bool cached, double seconds);
  void SetSlots(int total, int busy);
  void Connected(bool up);

  prometheus::Registry& registry() { return *registry_; }

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  prometheus::Family<prometheus::Counter>* builds_;
  prometheus::Family<prometheus::Histogram>* build_seconds_;
  prometheus::Family<prometheus::Counter>* steps_;
  prometheus::Family<prometheus::Histogram>* step_seconds_;
  prometheus::Gauge* slots_;
  prometheus::Gauge* slots_busy_;
  prometheus::Gauge* connected_;
};

}  // namespace longshore::worker

#endif  // LONGSHORE_WORKER_WORKER_METRICS_H_
