// Who may call what, in one place.
//
// Every RPC of BuildService, WorkerService and AdminService (and every page
// of the web view) first asks Authorizer: it authenticates the caller (a
// client certificate's names under mutual TLS, or a bearer token from
// --tokens-file), looks the RPC up in kRpcRules, and, for rules about one
// build, compares the caller with that build's submitter or lease. Refusals
// are PERMISSION_DENIED naming the caller and the rule; a caller who could
// not be authenticated gets UNAUTHENTICATED saying what to present.
//
// Without client certificates and tokens the scheduler is "open": every
// caller is anonymous and holds every role, which listen_policy allows on
// loopback (or with --insecure) only.
#ifndef LONGSHORE_SCHEDULER_AUTHORIZATION_H_
#define LONGSHORE_SCHEDULER_AUTHORIZATION_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "grpcpp/server_context.h"
#include "scheduler/tokens.h"

namespace longshore::scheduler {

enum class Rpc {
  kStatContext,
  kSubmit,
  kWatch,
  kCancel,
  kGetBuild,
  kListBuilds,
  kFetchOutput,
  kConnect,
  kFetchContext,
  kUploadOutput,
  kListWorkers,
  kDrain,
  kUndrain,
  // Scheduler information and the read-only web page (scheduler/web/); a web
  // row's method is its HTTP method and path.
  kGetSchedulerInfo,
  kWebWhoami,
  kWebListBuilds,
  kWebGetBuild,
  kWebBuildEvents,
  kWebBuildLog,
  kWebListWorkers,
  kWebFetchOutput,
  // Health checking (grpc.health.v1, gRPC's own service).
  kHealthCheck,
  kHealthWatch,
  // Content-addressed context sync.
  kFindMissingContent,
  kUploadContent,
  kFetchContextFiles,
};

enum class Rule {
  kSubmitter,      // Submitters and operators.
  kOwnBuild,       // The build's submitter, or an operator.
  kListOwn,        // Submitters list their own builds; operators list all.
  kWorker,         // The worker role.
  kLeasedBuild,    // A worker, for a build leased to it (and its context).
  kOperator,       // Operators.
  kAuthenticated,  // Any authenticated caller.
  // Any caller that reaches the port, authenticated or not: the answer is
  // only whether the scheduler serves (probes and load balancers).
  kAnyone,
};

struct RpcRule {
  Rpc rpc;
  // Full gRPC method name, e.g. "/longshore.v1.X/Y", or for the web page
  // "GET /api/...".
  const char* method;
  Rule rule;
};

// The policy table: one row per RPC, in the order of Rpc.
extern const RpcRule kRpcRules[26];

// The rule's meaning in words, for refusals and docs.
const char* DescribeRule(Rule rule);

struct Identity {
  enum class Source { kAnonymous, kCertificate, kToken };
  Source source = Source::kAnonymous;
  // What builds are recorded under; empty when anonymous.
  std::string name;
  bool submitter = false;
  bool operator_role = false;
  bool worker = false;

  // e.g. `token "team-a-ci" (submitter)`, `certificate "ops-1" (operator)`.
  std::string Describe() const;
};

// What a request brings to be authenticated by.
struct Credentials {
  std::vector<std::string> certificate_names;  // Verified by mutual TLS.
  bool authorization_present = false;          // An authorization header...
  std::string bearer;  // ...and its "Bearer" token ("" when malformed).
  bool loopback_peer = false;
};

// From a gRPC call: its certificate names, its authorization metadata and
// whether the peer address is loopback.
Credentials CredentialsFrom(const grpc::ServerContext& context);

// What the policy needs to know of one build.
struct BuildAccess {
  std::string submitter;
  bool running = false;
  std::string context_digest;
  // The identity that registered the worker holding its lease.
  std::string worker_identity;
};

struct AuthorizerOptions {
  bool tls = false;         // The listener serves TLS.
  bool mutual_tls = false;  // ...and verifies client certificates.
  // Globs (fnmatch) over certificate names granting the worker and operator
  // roles; empty grants the role to no certificate.
  std::string worker_names;
  std::string operator_names;
  const TokenTable* tokens = nullptr;  // Null: no bearer tokens.
};

class Authorizer {
 public:
  using BuildLookup =
      std::function<absl::StatusOr<BuildAccess>(const std::string& build_id)>;

  Authorizer(AuthorizerOptions options, BuildLookup lookup);

  // Neither client certificates nor tokens: everyone is anonymous and may
  // do everything.
  bool open() const { return open_; }

  // UNAUTHENTICATED when a credential is wrong or missing where one is
  // needed, saying what to present.
  absl::StatusOr<Identity> Authenticate(const Credentials& credentials) const;

  // Whether `who` may make `rpc` (about `build_id` for the per-build rules;
  // for kLeasedBuild, `context_digest` when the call reads a context).
  // PERMISSION_DENIED naming the identity and the rule.
  absl::Status Check(const Identity& who, Rpc rpc,
                     const std::string& build_id = "",
                     const std::string& context_digest = "") const;

  // Authenticate + Check for a gRPC call; fills `who` when not null.
  grpc::Status Authorize(const grpc::ServerContext& context, Rpc rpc,
                         const std::string& build_id = "",
                         Identity* who = nullptr,
                         const std::string& context_digest = "") const;

  // Whose builds `who` may list: empty for all, else its own name.
  std::string ListFilter(const Identity& who) const;

 private:
  const AuthorizerOptions options_;
  const BuildLookup lookup_;
  const bool open_;
};

}  // namespace longshore::scheduler

#endif  // LONGSHORE_SCHEDULER_AUTHORIZATION_H_
