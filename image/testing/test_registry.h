// Test fixture: Debian's docker-registry (distribution 2.8) on 127.0.0.1, with
// filesystem storage in a temp dir and optional htpasswd Basic auth.
#ifndef LONGSHORE_IMAGE_TESTING_TEST_REGISTRY_H_
#define LONGSHORE_IMAGE_TESTING_TEST_REGISTRY_H_

#include <sys/types.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace longshore::image::testing {

inline constexpr char kRegistryBinary[] = "/usr/bin/docker-registry";

class TestRegistry {
 public:
  struct Options {
    // When set, Basic auth with this one user (bcrypt htpasswd).
    std::string user;
    std::string password;
    // 0: a free port.
    int port = 0;
  };

  // Writes the config under `dir` (created) and picks the port, without
  // starting the server; Start() does that.
  static absl::StatusOr<std::unique_ptr<TestRegistry>> Create(
      const std::string& dir, const Options& opts);
  // Create + Start.
  static absl::StatusOr<std::unique_ptr<TestRegistry>> StartNew(
      const std::string& dir, const Options& opts);
  ~TestRegistry();

  // Starts the registry and waits (up to 15 s) until /v2/ answers.
  absl::Status Start();
  void Stop();

  int port() const { return port_; }
  // "127.0.0.1:<port>", the registry part of references.
  std::string host() const;
  // Everything the registry logged so far (access log included).
  std::string Log() const;
  const std::string& dir() const { return dir_; }

 private:
  TestRegistry() = default;
  std::string dir_;
  int port_ = 0;
  pid_t pid_ = -1;
};

// A free TCP port on 127.0.0.1 (bound to port 0, then released).
absl::StatusOr<int> FreePort();

// Runs `cmd` with /bin/sh; returns the exit status (as from waitpid) and
// stdout+stderr.
struct ShellResult {
  int status = -1;
  std::string out;
};
ShellResult Shell(const std::string& cmd);

}  // namespace longshore::image::testing

#endif  // LONGSHORE_IMAGE_TESTING_TEST_REGISTRY_H_
