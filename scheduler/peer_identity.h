// Who is calling, under mutual TLS: the names in the client's certificate
// (scheduler/authorization.h gives them roles).
#ifndef LONGSHORE_SCHEDULER_PEER_IDENTITY_H_
#define LONGSHORE_SCHEDULER_PEER_IDENTITY_H_

#include <string>
#include <vector>

#include "grpcpp/server_context.h"

namespace longshore::scheduler {

// The common name and subject alternative names of the peer's certificate;
// empty without mutual TLS.
std::vector<std::string> PeerNames(const grpc::ServerContext& context);

}  // namespace longshore::scheduler

#endif  // LONGSHORE_SCHEDULER_PEER_IDENTITY_H_
