// The web page's JSON API: who the caller is, builds (queue with positions
// and waits, running, finished), one build, and workers. Every answer is
// authorized by the scheduler's Authorizer against the web rows of its
// policy table (scheduler/authorization.h), exactly as the gRPC API is: a
// submitter sees its own builds, operators see all builds and the workers.
// Transport-free so it is tested without a server (web_api_test.cc).
#ifndef LONGSHORE_SCHEDULER_WEB_WEB_API_H_
#define LONGSHORE_SCHEDULER_WEB_WEB_API_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "proto/longshore.pb.h"
#include "scheduler/authorization.h"
#include "scheduler/build_coordinator.h"

namespace longshore::scheduler::web {

// An answer: an HTTP status and a JSON body.
struct JsonReply {
  int status = 200;
  std::string body;
};

// The HTTP status for a failed check or lookup: 401, 403, 404, 400, else 500.
int HttpStatusOf(const absl::Status& status);
// {"error": MESSAGE} with HttpStatusOf; internal errors say only that (the
// caller logs the detail).
JsonReply ErrorReply(const absl::Status& status);

// One build as the page shows it (no Dockerfile bytes unless asked for; never
// secrets). `position`: its place in the queue, 0 when not queued.
std::string BuildJson(const longshore::v1::BuildInfo& build, int position,
                      absl::Time now, bool with_dockerfile);

class WebApi {
 public:
  WebApi(BuildCoordinator* coordinator, const Authorizer* authz)
      : coordinator_(coordinator), authz_(authz) {}

  // Authenticates `credentials` and checks `rpc` (about `build_id` for the
  // per-build rows).
  absl::StatusOr<Identity> Authorize(const Credentials& credentials, Rpc rpc,
                                     const std::string& build_id = "") const;

  // GET /api/whoami: {"name", "source", "roles": [...], "describe", "open"}.
  JsonReply Whoami(const Credentials& credentials) const;
  // GET /api/builds: {"queued": [...], "running": [...], "finished": [...]},
  // the caller's own builds (all, for operators); queued oldest first with
  // their positions, at most `finished_limit` finished ones, newest first.
  JsonReply ListBuilds(const Credentials& credentials, int finished_limit,
                       absl::Time now) const;
  // GET /api/builds/ID: the build, with its Dockerfile.
  JsonReply GetBuild(const Credentials& credentials,
                     const std::string& build_id, absl::Time now) const;
  // GET /api/workers: {"workers": [...]} with state, slots, platform, labels.
  JsonReply ListWorkers(const Credentials& credentials, absl::Time now) const;

 private:
  BuildCoordinator* const coordinator_;
  const Authorizer* const authz_;
};

}  // namespace longshore::scheduler::web

#endif  // LONGSHORE_SCHEDULER_WEB_WEB_API_H_
