// The one-machine default of `longshore build`: a scheduler and a worker run by
// the `longshore` binary itself, in a child process re-executed from it.
//
// Why a child and not threads of this process: the worker must enter its user
// and mount namespaces before any thread exists (gRPC starts threads), and the
// client must stay outside them so the outputs it writes belong to the invoking
// user. When invoked as real root, the child drops to the unprivileged user
// $LONGSHORE_USER (default `longshore`, which ops/bootstrap.sh creates), since
// workers refuse to run as real root.
#ifndef LONGSHORE_CLIENT_EMBEDDED_FARM_H_
#define LONGSHORE_CLIENT_EMBEDDED_FARM_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace longshore::client {

class EmbeddedFarm {
 public:
  // Starts the farm and waits until it accepts builds. Must be called before
  // this process starts any thread.
  static absl::StatusOr<std::unique_ptr<EmbeddedFarm>> Start();
  ~EmbeddedFarm();

  // "127.0.0.1:PORT" of the farm's scheduler.
  const std::string& address() const { return address_; }
  const std::string& state_dir() const { return state_dir_; }

 private:
  EmbeddedFarm(pid_t pid, std::string address, std::string state_dir)
      : pid_(pid),
        address_(std::move(address)),
        state_dir_(std::move(state_dir)) {}
  pid_t pid_;
  std::string address_;
  std::string state_dir_;
};

// The child's entry point: `longshore __embedded-farm STATE_DIR READY_FD`.
// Serves until SIGTERM (or until the parent dies).
int RunEmbeddedFarm(const std::vector<std::string>& args);

// Where the farm keeps its state: $LONGSHORE_HOME, else
// $XDG_CACHE_HOME/longshore, else ~/.cache/longshore; for real root,
// /var/lib/longshore/local.
std::string EmbeddedStateDir();

}  // namespace longshore::client

#endif  // LONGSHORE_CLIENT_EMBEDDED_FARM_H_
