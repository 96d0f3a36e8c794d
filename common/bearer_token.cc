#include "common/bearer_token.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/file_util.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/support/client_interceptor.h"

namespace longshore {
namespace {

namespace gx = grpc::experimental;

class BearerInterceptor : public gx::Interceptor {
 public:
  explicit BearerInterceptor(const std::string* header) : header_(header) {}
  void Intercept(gx::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            gx::InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      methods->GetSendInitialMetadata()->emplace("authorization", *header_);
    }
    methods->Proceed();
  }

 private:
  const std::string* header_;
};

class BearerInterceptorFactory : public gx::ClientInterceptorFactoryInterface {
 public:
  explicit BearerInterceptorFactory(const std::string& token)
      : header_(absl::StrCat("Bearer ", token)) {}
  gx::Interceptor* CreateClientInterceptor(gx::ClientRpcInfo*) override {
    return new BearerInterceptor(&header_);
  }

 private:
  const std::string header_;
};

}  // namespace

absl::StatusOr<std::string> ReadTokenFile(const std::string& path,
                                          absl::string_view flag) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) {
    return absl::Status(text.status().code(),
                        absl::StrCat(flag, ": ", text.status().message()));
  }
  std::string token(absl::StripAsciiWhitespace(*text));
  if (token.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": ", path, " holds no token"));
  }
  if (token.find_first_of(" \t\r\n") != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": ", path,
                     " holds more than one word; it must hold the token "
                     "only"));
  }
  return token;
}

bool IsLoopbackTarget(absl::string_view target) {
  absl::ConsumePrefix(&target, "dns:///");
  absl::ConsumePrefix(&target, "ipv4:");
  absl::ConsumePrefix(&target, "ipv6:");
  if (absl::StartsWith(target, "unix:")) return true;
  std::string host;
  if (absl::StartsWith(target, "[")) {
    size_t end = target.find(']');
    if (end == absl::string_view::npos) return false;
    host = std::string(target.substr(1, end - 1));
  } else {
    size_t colon = target.rfind(':');
    host = std::string(
        colon == absl::string_view::npos ? target : target.substr(0, colon));
  }
  host = absl::AsciiStrToLower(host);
  if (host == "localhost") return true;
  in_addr v4;
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;
  }
  in6_addr v6;
  return inet_pton(AF_INET6, host.c_str(), &v6) == 1 &&
         IN6_IS_ADDR_LOOPBACK(&v6);
}

absl::Status CheckTokenTransport(absl::string_view target, bool tls) {
  if (tls || IsLoopbackTarget(target)) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "refusing to send a bearer token in plaintext to ", target,
      ", where anyone on the path could read it: use TLS (set "
      "LONGSHORE_TLS_CA to the scheduler's CA), or a loopback address"));
}

std::shared_ptr<grpc::Channel> CreateChannelWithToken(
    const std::string& target,
    const std::shared_ptr<grpc::ChannelCredentials>& credentials,
    const grpc::ChannelArguments& args, const std::string& token) {
  if (token.empty()) {
    return grpc::CreateCustomChannel(target, credentials, args);
  }
  std::vector<std::unique_ptr<gx::ClientInterceptorFactoryInterface>> factories;
  factories.push_back(std::make_unique<BearerInterceptorFactory>(token));
  return gx::CreateCustomChannelWithInterceptors(target, credentials, args,
                                                 std::move(factories));
}

}  // namespace longshore
