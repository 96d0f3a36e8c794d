// One HTTP listener for a process's operators: /metrics (Prometheus text
// format), /healthz (200 while the process answers) and /readyz (200 when it
// can do its work, else 503 with the reason). Probes and scrapers share the
// port (--metrics-listen).
#ifndef LONGSHORE_COMMON_METRICS_SERVER_H_
#define LONGSHORE_COMMON_METRICS_SERVER_H_

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "prometheus/registry.h"

namespace httplib {
class Server;
}

namespace longshore {

class MetricsServer {
 public:
  // OK when ready; otherwise why not (the body of a 503 from /readyz).
  using ReadyCheck = std::function<absl::Status()>;

  // Listens on `address` (HOST:PORT, [V6]:PORT, or :PORT for every address;
  // port 0 picks one). `ready` may be empty (always ready).
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(
      const std::string& address,
      std::shared_ptr<prometheus::Registry> registry, ReadyCheck ready);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  int port() const { return port_; }

 private:
  MetricsServer() = default;

  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

// longshore_build_info{component, version, commit} 1 on `registry`.
void RegisterBuildInfo(prometheus::Registry& registry,
                       const std::string& component);

// Splits HOST:PORT ("[::1]:9100", ":9100" meaning all addresses); errors name
// the address.
absl::Status SplitHostPort(const std::string& address, std::string* host,
                           int* port);

}  // namespace longshore

#endif  // LONGSHORE_COMMON_METRICS_SERVER_H_
