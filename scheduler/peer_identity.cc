#include "scheduler/peer_identity.h"

#include <fnmatch.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "grpcpp/security/auth_context.h"

namespace longshore::scheduler {

std::vector<std::string> PeerNames(const grpc::ServerContext& context) {
  std::vector<std::string> names;
  std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  if (auth == nullptr) return names;
  for (const char* property :
       {"x509_common_name", "x509_subject_alternative_name"}) {
    for (const grpc::string_ref& value : auth->FindPropertyValues(property)) {
      names.emplace_back(value.data(), value.size());
    }
  }
  return names;
}

grpc::Status CheckPeer(const grpc::ServerContext& context,
                       const std::string& pattern, const char* role) {
  if (pattern.empty()) return grpc::Status::OK;
  const std::vector<std::string> names = PeerNames(context);
  for (const std::string& name : names) {
    if (fnmatch(pattern.c_str(), name.c_str(), 0) == 0) {
      return grpc::Status::OK;
    }
  }
  return grpc::Status(
      grpc::StatusCode::PERMISSION_DENIED,
      absl::StrCat("this call is for ", role,
                   "s: it needs a client "
                   "certificate with a name matching \"",
                   pattern, "\"",
                   names.empty()
                       ? " (none was presented)"
                       : absl::StrCat(" (presented: ",
                                      absl::StrJoin(names, ", "), ")")));
}

}  // namespace longshore::scheduler
