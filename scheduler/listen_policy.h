// Whether the scheduler may serve an address without transport security.
// Without TLS anyone who reaches the port can submit builds, read every
// build's Dockerfile, logs and outputs, and register as a worker (and be
// handed other builds and their secrets); that is safe on loopback only.
#ifndef LONGSHORE_SCHEDULER_LISTEN_POLICY_H_
#define LONGSHORE_SCHEDULER_LISTEN_POLICY_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace longshore::scheduler {

// True for HOST:PORT whose host is a loopback address: 127.0.0.0/8, [::1]
// or "localhost".
bool IsLoopbackListen(absl::string_view address);

// OK when `address` is loopback, TLS is configured, or `insecure` was given;
// otherwise FAILED_PRECONDITION naming the address and both ways out.
absl::Status CheckPlaintextListen(absl::string_view address, bool tls,
                                  bool insecure);

}  // namespace longshore::scheduler

#endif  // LONGSHORE_SCHEDULER_LISTEN_POLICY_H_
