// Bearer tokens on the client side of a gRPC channel: where a token comes
// from (LONGSHORE_TOKEN, or a file), the rule that it never travels in
// plaintext beyond loopback, and a channel that sends it with every call as
// "authorization: Bearer TOKEN".
#ifndef LONGSHORE_COMMON_BEARER_TOKEN_H_
#define LONGSHORE_COMMON_BEARER_TOKEN_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "grpcpp/channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"

namespace longshore {

// The token in `path` (surrounding whitespace dropped); errors name `flag`
// and the file, and say when it is empty.
absl::StatusOr<std::string> ReadTokenFile(const std::string& path,
                                          absl::string_view flag);

// True for HOST:PORT (or a gRPC target such as ipv4:HOST:PORT) whose host is
// 127.0.0.0/8, ::1 or localhost.
bool IsLoopbackTarget(absl::string_view target);

// OK unless a token would go in plaintext to a non-loopback address;
// then FAILED_PRECONDITION saying how to use TLS.
absl::Status CheckTokenTransport(absl::string_view target, bool tls);

// A channel to `target` that adds the token (when not empty) to every call.
std::shared_ptr<grpc::Channel> CreateChannelWithToken(
    const std::string& target,
    const std::shared_ptr<grpc::ChannelCredentials>& credentials,
    const grpc::ChannelArguments& args, const std::string& token);

}  // namespace longshore

#endif  // LONGSHORE_COMMON_BEARER_TOKEN_H_
