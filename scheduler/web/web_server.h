// The scheduler's read-only web page: an HTTP(S) server (Debian's
// cpp-httplib) that serves the embedded page (web_assets.h), its JSON API
// (web_api.h) and each build's events as server-sent events
// (event_stream.h). It authenticates like the gRPC API: a bearer token in the
// Authorization header, or, when it serves TLS with a client CA, the client's
// certificate; and it authorizes every API call with the same policy table.
//
//   WebServer web(options, scheduler->coordinator(), scheduler->event_log(),
//                 scheduler->blob_store(), scheduler->authorizer());
//   int port = web.Start().value();
//   ...
//   web.Stop();
#ifndef LONGSHORE_SCHEDULER_WEB_WEB_SERVER_H_
#define LONGSHORE_SCHEDULER_WEB_WEB_SERVER_H_

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "common/grpc_tls.h"
#include "scheduler/authorization.h"
#include "scheduler/blob_store.h"
#include "scheduler/build_coordinator.h"
#include "scheduler/event_log.h"
#include "scheduler/web/web_api.h"

namespace httplib {
class Server;
}  // namespace httplib

namespace longshore::scheduler::web {

struct WebOptions {
  // host:port ("127.0.0.1:0" picks a port; "[::1]:8080").
  std::string listen;
  // The scheduler's TLS files: with cert and key the page is served over
  // HTTPS; with ca too, client certificates are verified and name the caller
  // (required unless `client_certificate_optional`, which tokens make so).
  TlsFiles tls;
  // Finished builds listed on the front page.
  int finished_listed = 100;
  // Threads serving requests; each open build page holds one for its event
  // stream.
  int threads = 32;
};

class WebServer {
 public:
  WebServer(WebOptions options, BuildCoordinator* coordinator, EventLog* events,
            BlobStore* blobs, const Authorizer* authz);
  ~WebServer();
  WebServer(const WebServer&) = delete;
  WebServer& operator=(const WebServer&) = delete;

  // Binds the address and serves on a thread of its own; returns the port.
  absl::StatusOr<int> Start();
  // Ends event streams and stops serving. Idempotent.
  void Stop();

 private:
  void Route();

  const WebOptions options_;
  BuildCoordinator* const coordinator_;
  EventLog* const events_;
  BlobStore* const blobs_;
  const Authorizer* const authz_;
  WebApi api_;
  std::unique_ptr<httplib::Server> server_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

// Splits "host:port" / "[v6]:port"; INVALID_ARGUMENT naming the flag's value.
absl::Status SplitListenAddress(const std::string& address, std::string* host,
                                int* port);

}  // namespace longshore::scheduler::web

#endif  // LONGSHORE_SCHEDULER_WEB_WEB_SERVER_H_
