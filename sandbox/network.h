// Networking for a step: the routes that keep `--network default` away from
// addresses it must not reach, and the slirp4netns process that gives the
// step's network namespace outbound access.
#ifndef LONGSHORE_SANDBOX_NETWORK_H_
#define LONGSHORE_SANDBOX_NETWORK_H_

#include <sys/types.h>

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace longshore::sandbox {

// slirp4netns's fixed addressing (its defaults): the step's tap0 is
// 10.0.2.100/24, 10.0.2.2 is slirp's alias for the host's loopback and
// 10.0.2.3 its DNS forwarder.
inline constexpr char kSlirpTapName[] = "tap0";
inline constexpr char kSlirpHostAlias[] = "10.0.2.2";
inline constexpr char kSlirpDns[] = "10.0.2.3";

// Adds "prohibit" routes (connect(2) fails with EACCES, ping with "Packet
// filtered") in the current network namespace for 169.254.0.0/16 (link-local:
// the cloud metadata endpoints of AWS, GCP and Azure), 168.63.129.16 (Azure's
// host endpoint), 100.100.100.200 (Alibaba's metadata) and slirp's host
// loopback alias 10.0.2.2. Needs CAP_NET_ADMIN over the namespace; the step's
// nested user namespace does not own it, so the step cannot remove them.
absl::Status ProhibitBlockedDestinations();

// Creates slirp's tap0 in the current network namespace, persistent (it
// outlives this process's descriptor), for slirp4netns to attach to. Closing
// the last descriptor of a non-persistent tap unregisters the device there
// and then, which waits for RCU grace periods (17-20 ms here) in whichever
// process closes it: the sandbox would wait that long for slirp4netns to
// exit. A persistent one goes with the namespace, whose cleanup the kernel
// runs in the background. Needs CAP_NET_ADMIN over the namespace.
absl::Status CreatePersistentTap();

// A running slirp4netns attached to a step's network namespace. The
// destructor (or Stop) kills and reaps it; its exit pipe (EOF when the
// sandbox dies) and a parent-death signal stop it otherwise.
class SlirpProcess {
 public:
  // Starts `binary` (a path, or a name looked up in PATH) for the network
  // namespace of `pid`, joining `userns_path` first when it is not empty, and
  // waits up to `timeout_ms` until it has configured tap0 (its --ready-fd).
  // The host's loopback stays unreachable (--disable-host-loopback).
  static absl::StatusOr<SlirpProcess> Start(const std::string& binary,
                                            pid_t pid,
                                            const std::string& userns_path,
                                            int timeout_ms);

  SlirpProcess(SlirpProcess&& other) noexcept;
  SlirpProcess& operator=(SlirpProcess&&) = delete;
  ~SlirpProcess();

  void Stop();

 private:
  SlirpProcess(pid_t pid, int exit_fd) : pid_(pid), exit_fd_(exit_fd) {}
  pid_t pid_ = -1;
  int exit_fd_ = -1;
};

}  // namespace longshore::sandbox

#endif  // LONGSHORE_SANDBOX_NETWORK_H_
