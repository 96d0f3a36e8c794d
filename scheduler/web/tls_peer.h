// Who is calling the web page under mutual TLS: the common name and subject
// alternative names of the client's verified certificate, as gRPC reports
// them for the gRPC API (scheduler/peer_identity.h), so one certificate is
// the same identity on both.
#ifndef LONGSHORE_SCHEDULER_WEB_TLS_PEER_H_
#define LONGSHORE_SCHEDULER_WEB_TLS_PEER_H_

#include <openssl/ssl.h>

#include <string>
#include <vector>

namespace longshore::scheduler::web {

// Empty when there is no connection, no certificate, or it did not verify.
std::vector<std::string> CertificateNames(const SSL* ssl);

}  // namespace longshore::scheduler::web

#endif  // LONGSHORE_SCHEDULER_WEB_TLS_PEER_H_
