// Who is calling, under mutual TLS: the names in the client's certificate,
// and the check that gives a service to certificates of one role only
// (workers, operators), by a glob over those names.
#ifndef LONGSHORE_SCHEDULER_PEER_IDENTITY_H_
#define LONGSHORE_SCHEDULER_PEER_IDENTITY_H_

#include <string>
#include <vector>

#include "grpcpp/server_context.h"

namespace longshore::scheduler {

// The common name and subject alternative names of the peer's certificate;
// empty without mutual TLS.
std::vector<std::string> PeerNames(const grpc::ServerContext& context);

// OK when `pattern` is empty, or when one of the peer's names matches it
// (fnmatch(3) glob, e.g. "worker-*"); otherwise PERMISSION_DENIED saying
// which role the call needs and which names the certificate had.
grpc::Status CheckPeer(const grpc::ServerContext& context,
                       const std::string& pattern, const char* role);

}  // namespace longshore::scheduler

#endif  // LONGSHORE_SCHEDULER_PEER_IDENTITY_H_
