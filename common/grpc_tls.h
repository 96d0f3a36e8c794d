// TLS for Longshore's gRPC connections, from PEM files. One farm CA signs the
// scheduler's certificate and, for mutual TLS, the workers' and clients'.
#ifndef LONGSHORE_COMMON_GRPC_TLS_H_
#define LONGSHORE_COMMON_GRPC_TLS_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"

namespace longshore {

// Paths of PEM files; empty means not given.
struct TlsFiles {
  std::string ca;    // client: CA the server's certificate must chain to;
                     // server: CA client certificates must chain to
  std::string cert;  // this side's certificate (chain)
  std::string key;   // its private key
  // The flags (or environment variables) they came from, for errors.
  std::string ca_name = "--tls-ca";
  std::string cert_name = "--tls-cert";
  std::string key_name = "--tls-key";
  // Server with `ca`: a client may connect without a certificate (and then
  // authenticates otherwise, e.g. with a bearer token); one it presents is
  // still verified.
  bool client_certificate_optional = false;
  bool any() const { return !ca.empty() || !cert.empty() || !key.empty(); }
};

// A client's credentials: plaintext when no file is given; otherwise TLS,
// verifying the server against `ca` (the system's roots when empty) and
// presenting `cert`/`key` when given (both or neither).
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ClientCredentials(
    const TlsFiles& files);

// A server's credentials: plaintext when no file is given; otherwise TLS with
// `cert`/`key` (both required), and with `ca` set, mutual TLS: every client
// must present a certificate that chains to it.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentials(
    const TlsFiles& files);

}  // namespace longshore

#endif  // LONGSHORE_COMMON_GRPC_TLS_H_
