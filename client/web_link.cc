#include "client/web_link.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpcpp/client_context.h"
#include "proto/longshore.grpc.pb.h"

namespace longshore::client {

std::string BuildPageUrl(absl::string_view web_url,
                         absl::string_view build_id) {
  if (build_id.empty()) return "";
  if (!absl::StartsWith(web_url, "http://") &&
      !absl::StartsWith(web_url, "https://")) {
    return "";
  }
  while (absl::ConsumeSuffix(&web_url, "/")) {
  }
  return absl::StrCat(web_url, "/builds/", build_id);
}

std::string FetchBuildPageUrl(const std::shared_ptr<grpc::Channel>& channel,
                              const std::string& build_id) {
  auto stub = longshore::v1::SchedulerInfoService::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  longshore::v1::GetSchedulerInfoRequest request;
  longshore::v1::SchedulerInfo info;
  if (!stub->GetSchedulerInfo(&context, request, &info).ok()) return "";
  return BuildPageUrl(info.web_url(), build_id);
}

}  // namespace longshore::client
