#include "scheduler/listen_policy.h"

#include <arpa/inet.h>

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace longshore::scheduler {

bool IsLoopbackListen(absl::string_view address) {
  absl::string_view host = address;
  if (absl::StartsWith(host, "[")) {
    size_t close = host.find(']');
    if (close == absl::string_view::npos) return false;
    host = host.substr(1, close - 1);
  } else if (size_t colon = host.rfind(':'); colon != absl::string_view::npos) {
    host = host.substr(0, colon);
  }
  if (host == "localhost") return true;
  const std::string h(host);
  in_addr v4;
  if (inet_pton(AF_INET, h.c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;
  }
  in6_addr v6;
  if (inet_pton(AF_INET6, h.c_str(), &v6) == 1) {
    return IN6_IS_ADDR_LOOPBACK(&v6);
  }
  return false;
}

absl::Status CheckPlaintextListen(absl::string_view address, bool tls,
                                  bool insecure) {
  if (tls || insecure || IsLoopbackListen(address)) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "--listen ", address,
      " is not a loopback address and the scheduler has no TLS: anyone who "
      "reaches it could submit builds, read every build's Dockerfile, logs "
      "and outputs, and register as a worker to be handed other builds and "
      "their secrets. Give --tls-cert and --tls-key (with --tls-client-ca "
      "for client certificates), or --insecure to serve plaintext anyway"));
}

}  // namespace longshore::scheduler
