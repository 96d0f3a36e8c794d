// Test fixture: a tiny HTTP/1.1 server on 127.0.0.1 whose answers a test
// scripts, for behaviour a real registry will not show on demand (Bearer
// token flows, 429/503 with Retry-After, blobs that do not match their
// digest). One request per connection.
#ifndef LONGSHORE_IMAGE_TESTING_FAKE_HTTP_SERVER_H_
#define LONGSHORE_IMAGE_TESTING_FAKE_HTTP_SERVER_H_

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/unique_fd.h"

namespace longshore::image::testing {

struct FakeRequest {
  std::string method;
  std::string target;                          // path and query
  std::map<std::string, std::string> headers;  // names lower case
  std::string body;

  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

struct FakeResponse {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

class FakeHttpServer {
 public:
  using Handler = std::function<FakeResponse(const FakeRequest&)>;

  static absl::StatusOr<std::unique_ptr<FakeHttpServer>> Start(Handler h);
  ~FakeHttpServer();

  int port() const { return port_; }
  std::string host() const;  // "127.0.0.1:<port>"
  // Every request seen so far, in order.
  std::vector<FakeRequest> requests() const;

 private:
  FakeHttpServer() = default;
  void Serve();
  void HandleConnection(int fd);

  Handler handler_;
  UniqueFd listen_fd_;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  mutable absl::Mutex mu_;
  std::vector<FakeRequest> requests_ ABSL_GUARDED_BY(mu_);
};

}  // namespace longshore::image::testing

#endif  // LONGSHORE_IMAGE_TESTING_FAKE_HTTP_SERVER_H_
