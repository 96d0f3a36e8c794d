// The client's connection to a scheduler: plaintext, or TLS when
// LONGSHORE_TLS_CA / LONGSHORE_TLS_CERT / LONGSHORE_TLS_KEY name PEM files
// (CA to verify the scheduler; certificate and key for mutual TLS), with a
// bearer token from LONGSHORE_TOKEN or the file in LONGSHORE_TOKEN_FILE
// (`--token-file`) when one is set.
#ifndef LONGSHORE_CLIENT_SCHEDULER_CHANNEL_H_
#define LONGSHORE_CLIENT_SCHEDULER_CHANNEL_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/grpc_tls.h"
#include "grpcpp/channel.h"
#include "grpcpp/support/status.h"

namespace longshore::client {

// The files named by the LONGSHORE_TLS_* environment variables.
TlsFiles TlsFilesFromEnvironment();

// The bearer token LONGSHORE_TOKEN holds, else the one in the file
// LONGSHORE_TOKEN_FILE names; empty when neither is set.
absl::StatusOr<std::string> TokenFromEnvironment();

// A channel to `address` with `tls` (plaintext when it names no file) and
// message limits large enough for context and output chunks; the token, if
// any, goes with every call, and never in plaintext beyond loopback.
absl::StatusOr<std::shared_ptr<grpc::Channel>> DialScheduler(
    const std::string& address, const TlsFiles& tls);

// The message for a failed call: the server's, plus, when the scheduler could
// not be reached at all, what to check (its address; TLS settings).
std::string DescribeCallError(const grpc::Status& status);

}  // namespace longshore::client

#endif  // LONGSHORE_CLIENT_SCHEDULER_CHANNEL_H_
