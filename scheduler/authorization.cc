#include "scheduler/authorization.h"

#include <fnmatch.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "scheduler/grpc_status.h"
#include "scheduler/peer_identity.h"

namespace longshore::scheduler {

const RpcRule kRpcRules[26] = {
    {Rpc::kStatContext, "/longshore.v1.BuildService/StatContext",
     Rule::kSubmitter},
    {Rpc::kSubmit, "/longshore.v1.BuildService/Submit", Rule::kSubmitter},
    {Rpc::kWatch, "/longshore.v1.BuildService/Watch", Rule::kOwnBuild},
    {Rpc::kCancel, "/longshore.v1.BuildService/Cancel", Rule::kOwnBuild},
    {Rpc::kGetBuild, "/longshore.v1.BuildService/GetBuild", Rule::kOwnBuild},
    {Rpc::kListBuilds, "/longshore.v1.BuildService/ListBuilds", Rule::kListOwn},
    {Rpc::kFetchOutput, "/longshore.v1.BuildService/FetchOutput",
     Rule::kOwnBuild},
    {Rpc::kConnect, "/longshore.v1.WorkerService/Connect", Rule::kWorker},
    {Rpc::kFetchContext, "/longshore.v1.WorkerService/FetchContext",
     Rule::kLeasedBuild},
    {Rpc::kUploadOutput, "/longshore.v1.WorkerService/UploadOutput",
     Rule::kLeasedBuild},
    {Rpc::kListWorkers, "/longshore.v1.AdminService/ListWorkers",
     Rule::kOperator},
    {Rpc::kDrain, "/longshore.v1.AdminService/Drain", Rule::kOperator},
    {Rpc::kUndrain, "/longshore.v1.AdminService/Undrain", Rule::kOperator},
    // Scheduler information and the read-only web page.
    {Rpc::kGetSchedulerInfo,
     "/longshore.v1.SchedulerInfoService/GetSchedulerInfo",
     Rule::kAuthenticated},
    {Rpc::kWebWhoami, "GET /api/whoami", Rule::kAuthenticated},
    {Rpc::kWebListBuilds, "GET /api/builds", Rule::kListOwn},
    {Rpc::kWebGetBuild, "GET /api/builds/ID", Rule::kOwnBuild},
    {Rpc::kWebBuildEvents, "GET /api/builds/ID/events", Rule::kOwnBuild},
    {Rpc::kWebBuildLog, "GET /api/builds/ID/log", Rule::kOwnBuild},
    {Rpc::kWebListWorkers, "GET /api/workers", Rule::kOperator},
    {Rpc::kWebFetchOutput, "GET /api/builds/ID/outputs/N", Rule::kOwnBuild},
    // Health checking: served by gRPC's own health service, which answers
    // before any service code runs, so these rows are policy, not checks.
    {Rpc::kHealthCheck, "/grpc.health.v1.Health/Check", Rule::kAnyone},
    {Rpc::kHealthWatch, "/grpc.health.v1.Health/Watch", Rule::kAnyone},
    // Content-addressed context sync: a submitter reaches only its own
    // content store; a worker reads only its leases' context files.
    {Rpc::kFindMissingContent, "/longshore.v1.BuildService/FindMissingContent",
     Rule::kSubmitter},
    {Rpc::kUploadContent, "/longshore.v1.BuildService/UploadContent",
     Rule::kSubmitter},
    {Rpc::kFetchContextFiles, "/longshore.v1.WorkerService/FetchContextFiles",
     Rule::kLeasedBuild},
};

const char* DescribeRule(Rule rule) {
  switch (rule) {
    case Rule::kSubmitter:
      return "builds are submitted by submitters and operators";
    case Rule::kOwnBuild:
      return "a submitter sees and acts on only its own builds; operators on "
             "all";
    case Rule::kListOwn:
      return "a submitter lists only its own builds; operators list all";
    case Rule::kWorker:
      return "only the worker role registers as a worker";
    case Rule::kLeasedBuild:
      return "a worker reads contexts and uploads outputs only for builds "
             "leased to it";
    case Rule::kOperator:
      return "this call is for operators";
    case Rule::kAuthenticated:
      return "any authenticated caller";
    case Rule::kAnyone:
      return "anyone who reaches the port may ask whether the scheduler "
             "serves";
  }
  return "?";
}

std::string Identity::Describe() const {
  std::string roles;
  for (auto [has, role] :
       {std::pair{submitter, "submitter"}, std::pair{operator_role, "operator"},
        std::pair{worker, "worker"}}) {
    if (has) absl::StrAppend(&roles, roles.empty() ? "" : ", ", role);
  }
  if (roles.empty()) roles = "no role";
  switch (source) {
    case Source::kAnonymous:
      return "anonymous caller";
    case Source::kCertificate:
      return absl::StrCat("certificate \"", name, "\" (", roles, ")");
    case Source::kToken:
      return absl::StrCat("token \"", name, "\" (", roles, ")");
  }
  return name;
}

namespace {

// "ipv4:127.0.0.1:port", "ipv6:[::1]:port", "unix:..." (always local).
bool IsLoopbackPeer(absl::string_view peer) {
  if (absl::StartsWith(peer, "unix:")) return true;
  if (absl::ConsumePrefix(&peer, "ipv4:")) {
    return absl::StartsWith(peer, "127.");
  }
  if (absl::ConsumePrefix(&peer, "ipv6:")) {
    return absl::StartsWith(peer, "[::1]") ||
           absl::StartsWith(peer, "[::ffff:127.");
  }
  return false;
}

bool AnyNameMatches(const std::vector<std::string>& names,
                    const std::string& glob) {
  if (glob.empty()) return false;
  for (const std::string& name : names) {
    if (fnmatch(glob.c_str(), name.c_str(), 0) == 0) return true;
  }
  return false;
}

const RpcRule& RuleOf(Rpc rpc) { return kRpcRules[static_cast<int>(rpc)]; }

absl::string_view ShortMethod(Rpc rpc) {
  absl::string_view method = RuleOf(rpc).method;
  // A web row ("GET /api/...") is named whole.
  if (!absl::StartsWith(method, "/")) return method;
  return method.substr(method.rfind('/') + 1);
}

}  // namespace

Credentials CredentialsFrom(const grpc::ServerContext& context) {
  Credentials c;
  c.certificate_names = PeerNames(context);
  const auto& metadata = context.client_metadata();
  auto it = metadata.find("authorization");
  if (it != metadata.end()) {
    c.authorization_present = true;
    absl::string_view value(it->second.data(), it->second.size());
    if (absl::ConsumePrefix(&value, "Bearer ") ||
        absl::ConsumePrefix(&value, "bearer ")) {
      c.bearer = std::string(absl::StripAsciiWhitespace(value));
    }
  }
  c.loopback_peer = IsLoopbackPeer(context.peer());
  return c;
}

Authorizer::Authorizer(AuthorizerOptions options, BuildLookup lookup)
    : options_(std::move(options)),
      lookup_(std::move(lookup)),
      open_(!options_.mutual_tls && options_.tokens == nullptr) {}

absl::StatusOr<Identity> Authorizer::Authenticate(
    const Credentials& credentials) const {
  Identity who;
  if (open_) {
    who.submitter = who.operator_role = who.worker = true;
    return who;
  }
  if (credentials.authorization_present) {
    if (options_.tokens == nullptr) {
      return absl::UnauthenticatedError(
          "a bearer token was presented, but this scheduler has no "
          "--tokens-file; use a client certificate");
    }
    if (!options_.tls && !credentials.loopback_peer) {
      return absl::UnauthenticatedError(
          "bearer token refused: it came over plaintext from a non-loopback "
          "address, where anyone on the path can read it; serve TLS "
          "(--tls-cert) or connect over loopback");
    }
    if (credentials.bearer.empty()) {
      return absl::UnauthenticatedError(
          "the authorization metadata is not \"Bearer TOKEN\"");
    }
    const TokenEntry* entry = options_.tokens->Find(credentials.bearer);
    if (entry == nullptr) {
      return absl::UnauthenticatedError(
          "the bearer token is not in the scheduler's --tokens-file "
          "(mistyped, or revoked)");
    }
    who.source = Identity::Source::kToken;
    who.name = entry->name;
    who.submitter = entry->role == Role::kSubmitter;
    who.operator_role = entry->role == Role::kOperator;
    who.worker = entry->role == Role::kWorker;
    return who;
  }
  if (!credentials.certificate_names.empty()) {
    const auto& names = credentials.certificate_names;
    who.source = Identity::Source::kCertificate;
    who.name = names.front();
    who.worker = AnyNameMatches(names, options_.worker_names);
    who.operator_role = AnyNameMatches(names, options_.operator_names);
    // A worker's certificate builds; it does not submit.
    who.submitter = !who.worker;
    return who;
  }
  std::string ways;
  if (options_.mutual_tls) ways = "a client certificate from its CA";
  if (options_.tokens != nullptr) {
    absl::StrAppend(&ways, ways.empty() ? "" : " or ",
                    "a bearer token (LONGSHORE_TOKEN or --token-file)");
  }
  return absl::UnauthenticatedError(
      absl::StrCat("this scheduler authenticates every call: present ", ways));
}

absl::Status Authorizer::Check(const Identity& who, Rpc rpc,
                               const std::string& build_id,
                               const std::string& context_digest) const {
  const Rule rule = RuleOf(rpc).rule;
  auto deny = [&](absl::string_view detail) {
    return absl::PermissionDeniedError(absl::StrCat(
        who.Describe(), " may not call ", ShortMethod(rpc),
        detail.empty() ? "" : " ", detail, ": ", DescribeRule(rule)));
  };
  switch (rule) {
    case Rule::kSubmitter:
      if (who.submitter || who.operator_role) return absl::OkStatus();
      return deny("");
    case Rule::kListOwn:
      if (who.submitter || who.operator_role) return absl::OkStatus();
      return deny("");
    case Rule::kWorker:
      if (who.worker) return absl::OkStatus();
      return deny("");
    case Rule::kOperator:
      if (who.operator_role) return absl::OkStatus();
      return deny("");
    case Rule::kAuthenticated:
    case Rule::kAnyone:
      return absl::OkStatus();
    case Rule::kOwnBuild: {
      absl::StatusOr<BuildAccess> build = lookup_(build_id);
      if (!build.ok()) return build.status();
      if (who.operator_role) return absl::OkStatus();
      if (who.submitter && build->submitter == who.name) {
        return absl::OkStatus();
      }
      return deny(absl::StrCat("for build ", build_id,
                               ", which another submitter owns"));
    }
    case Rule::kLeasedBuild: {
      if (!who.worker) return deny("");
      absl::StatusOr<BuildAccess> build = lookup_(build_id);
      if (!build.ok()) return build.status();
      if (!build->running) {
        return deny(
            absl::StrCat("for build ", build_id, ", which is not running"));
      }
      if (!open_ && build->worker_identity != who.name) {
        return deny(absl::StrCat("for build ", build_id,
                                 ", which is leased to another worker"));
      }
      if (!context_digest.empty() && context_digest != build->context_digest) {
        return deny(absl::StrCat("for context ", context_digest,
                                 ", which is not the context of build ",
                                 build_id));
      }
      return absl::OkStatus();
    }
  }
  return absl::InternalError("unknown rule");
}

grpc::Status Authorizer::Authorize(const grpc::ServerContext& context, Rpc rpc,
                                   const std::string& build_id, Identity* who,
                                   const std::string& context_digest) const {
  absl::StatusOr<Identity> identity = Authenticate(CredentialsFrom(context));
  if (!identity.ok()) return ToGrpcStatus(identity.status());
  absl::Status st = Check(*identity, rpc, build_id, context_digest);
  if (!st.ok()) return ToGrpcStatus(st);
  if (who != nullptr) *who = std::move(*identity);
  return grpc::Status::OK;
}

std::string Authorizer::ListFilter(const Identity& who) const {
  if (who.operator_role) return "";
  return who.name;
}

}  // namespace longshore::scheduler
