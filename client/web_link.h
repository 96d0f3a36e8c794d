// The link to a build's page on the scheduler's web view, for CI logs: the
// scheduler advertises its web address (GetSchedulerInfo) and the client
// prints WEB_URL/builds/ID.
#ifndef LONGSHORE_CLIENT_WEB_LINK_H_
#define LONGSHORE_CLIENT_WEB_LINK_H_

#include <memory>
#include <string>

#include "absl/strings/string_view.h"
#include "grpcpp/channel.h"

namespace longshore::client {

// WEB_URL/builds/ID from `web_url` (a trailing slash is dropped); empty when
// `web_url` is empty or not http:// or https://.
std::string BuildPageUrl(absl::string_view web_url, absl::string_view build_id);

// Asks the scheduler where it serves its web page and returns the build's
// link; empty when it serves none, is too old to say, or does not answer
// within a few seconds (a missing link never fails a build).
std::string FetchBuildPageUrl(const std::shared_ptr<grpc::Channel>& channel,
                              const std::string& build_id);

}  // namespace longshore::client

#endif  // LONGSHORE_CLIENT_WEB_LINK_H_
