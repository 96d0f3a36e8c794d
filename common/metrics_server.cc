#include "common/metrics_server.h"

#include <sys/socket.h>

#include <chrono>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/version.h"
#include "httplib.h"
#include "prometheus/gauge.h"
#include "prometheus/text_serializer.h"

namespace longshore {

void RegisterBuildInfo(prometheus::Registry& registry,
                       const std::string& component) {
  prometheus::BuildGauge()
      .Name("longshore_build_info")
      .Help(
          "1, labelled with the component, its version and the commit it "
          "was built from.")
      .Register(registry)
      .Add({{"component", component},
            {"version", Version()},
            {"commit", Commit()}})
      .Set(1);
}

absl::Status SplitHostPort(const std::string& address, std::string* host,
                           int* port) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", address, "' is not HOST:PORT"));
  }
  std::string h = address.substr(0, colon);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') {
    h = h.substr(1, h.size() - 2);
  }
  if (h.empty()) h = "0.0.0.0";
  int p = 0;
  if (!absl::SimpleAtoi(address.substr(colon + 1), &p) || p < 0 || p > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", address, "' has no port number (0-65535)"));
  }
  *host = h;
  *port = p;
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(
    const std::string& address, std::shared_ptr<prometheus::Registry> registry,
    ReadyCheck ready) {
  std::string host;
  int port = 0;
  if (absl::Status s = SplitHostPort(address, &host, &port); !s.ok()) {
    return s;
  }
  std::unique_ptr<MetricsServer> m(new MetricsServer());
  m->server_ = std::make_unique<httplib::Server>();
  httplib::Server& srv = *m->server_;
  srv.Get("/metrics",
          [registry](const httplib::Request&, httplib::Response& res) {
            prometheus::TextSerializer text;
            res.set_content(text.Serialize(registry->Collect()),
                            "text/plain; version=0.0.4; charset=utf-8");
          });
  srv.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok\n", "text/plain");
  });
  srv.Get("/readyz", [ready](const httplib::Request&, httplib::Response& res) {
    absl::Status s = ready ? ready() : absl::OkStatus();
    if (s.ok()) {
      res.set_content("ready\n", "text/plain");
    } else {
      res.status = 503;
      res.set_content(absl::StrCat("not ready: ", s.message(), "\n"),
                      "text/plain");
    }
  });
  // SO_REUSEADDR only: httplib's default adds SO_REUSEPORT, which would let
  // a second process bind the same port.
  srv.set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  if (port == 0) {
    port = srv.bind_to_any_port(host);
    if (port < 0) port = 0;
  } else if (!srv.bind_to_port(host, port)) {
    port = 0;
  }
  if (port == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", address, " for metrics"));
  }
  m->port_ = port;
  m->thread_ = std::thread([&srv] { srv.listen_after_bind(); });
  // stop() only ends a loop that runs: wait for it, so that destroying the
  // server right away cannot leave the loop behind.
  for (int i = 0; i < 5000 && !srv.is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return m;
}

MetricsServer::~MetricsServer() {
  if (server_ != nullptr) server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace longshore
