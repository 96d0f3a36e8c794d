#include "client/scheduler_channel.h"

#include <stdlib.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/bearer_token.h"
#include "common/status_macros.h"

namespace longshore::client {

TlsFiles TlsFilesFromEnvironment() {
  TlsFiles files;
  files.ca_name = "LONGSHORE_TLS_CA";
  files.cert_name = "LONGSHORE_TLS_CERT";
  files.key_name = "LONGSHORE_TLS_KEY";
  if (const char* v = getenv("LONGSHORE_TLS_CA")) files.ca = v;
  if (const char* v = getenv("LONGSHORE_TLS_CERT")) files.cert = v;
  if (const char* v = getenv("LONGSHORE_TLS_KEY")) files.key = v;
  return files;
}

absl::StatusOr<std::string> TokenFromEnvironment() {
  if (const char* v = getenv("LONGSHORE_TOKEN"); v != nullptr && *v != 0) {
    return std::string(absl::StripAsciiWhitespace(v));
  }
  if (const char* path = getenv("LONGSHORE_TOKEN_FILE");
      path != nullptr && *path != 0) {
    return ReadTokenFile(path, "--token-file");
  }
  return std::string();
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> DialScheduler(
    const std::string& address, const TlsFiles& tls) {
  ASSIGN_OR_RETURN(std::shared_ptr<grpc::ChannelCredentials> credentials,
                   ClientCredentials(tls));
  ASSIGN_OR_RETURN(std::string token, TokenFromEnvironment());
  if (!token.empty()) RETURN_IF_ERROR(CheckTokenTransport(address, tls.any()));
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  args.SetMaxSendMessageSize(64 << 20);
  return CreateChannelWithToken(address, credentials, args, token);
}

std::string DescribeCallError(const grpc::Status& status) {
  std::string message = status.error_message();
  if (status.error_code() == grpc::StatusCode::UNAUTHENTICATED) {
    return absl::StrCat(message,
                        " (set LONGSHORE_TOKEN or pass --token-file FILE, or "
                        "LONGSHORE_TLS_CERT and LONGSHORE_TLS_KEY)");
  }
  if (status.error_code() != grpc::StatusCode::UNAVAILABLE) return message;
  const TlsFiles tls = TlsFilesFromEnvironment();
  std::string hint;
  if (!tls.any()) {
    hint =
        "if it serves TLS, set LONGSHORE_TLS_CA, and LONGSHORE_TLS_CERT with "
        "LONGSHORE_TLS_KEY when it wants a client certificate";
  } else if (tls.cert.empty()) {
    hint =
        "with TLS: it must present a certificate from the CA in "
        "LONGSHORE_TLS_CA; if it wants a client certificate, set "
        "LONGSHORE_TLS_CERT and LONGSHORE_TLS_KEY";
  } else {
    hint =
        "with mutual TLS: it must present a certificate from the CA in "
        "LONGSHORE_TLS_CA and trust the CA that signed LONGSHORE_TLS_CERT";
  }
  return absl::StrCat(message, " (is the scheduler running at that address? ",
                      hint, ")");
}

}  // namespace longshore::client
