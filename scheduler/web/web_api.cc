#include "scheduler/web/web_api.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/log.h"
#include "scheduler/web/json_text.h"

namespace longshore::scheduler::web {
namespace {

using longshore::v1::BuildInfo;
using longshore::v1::BuildState;

// Builds of each kind a listing shows at most.
constexpr int kMaxActiveListed = 1000;
// The Dockerfile shown on a build's page is cut at this size.
constexpr size_t kMaxDockerfileShown = 256 << 10;

int64_t MillisFromNanos(int64_t nanos) { return nanos / 1000000; }

std::string KeyValuesJson(
    const google::protobuf::RepeatedPtrField<longshore::v1::KeyValue>& kvs) {
  std::vector<std::string> parts;
  for (const auto& kv : kvs) {
    parts.push_back(absl::StrCat("{\"key\":", JsonQuote(kv.key()),
                                 ",\"value\":", JsonQuote(kv.value()), "}"));
  }
  return absl::StrCat("[", absl::StrJoin(parts, ","), "]");
}

std::string StringsJson(
    const google::protobuf::RepeatedPtrField<std::string>& strings) {
  std::vector<std::string> parts;
  for (const std::string& s : strings) parts.push_back(JsonQuote(s));
  return absl::StrCat("[", absl::StrJoin(parts, ","), "]");
}

const char* OutputTypeName(longshore::v1::OutputSpec::Type type) {
  switch (type) {
    case longshore::v1::OutputSpec::OCI:
      return "oci";
    case longshore::v1::OutputSpec::DOCKER:
      return "docker";
    case longshore::v1::OutputSpec::REGISTRY:
      return "registry";
    default:
      return "image";
  }
}

std::string OutputsJson(const BuildInfo& build) {
  std::vector<std::string> parts;
  for (int i = 0; i < build.spec().outputs_size(); ++i) {
    const auto& o = build.spec().outputs(i);
    const bool ready =
        std::find(build.ready_outputs().begin(), build.ready_outputs().end(),
                  i) != build.ready_outputs().end();
    parts.push_back(absl::StrCat(
        "{\"index\":", i, ",\"type\":", JsonQuote(OutputTypeName(o.type())),
        ",\"dest\":", JsonQuote(o.dest()),
        ",\"attrs\":", KeyValuesJson(o.attrs()),
        ",\"ready\":", ready ? "true" : "false", "}"));
  }
  return absl::StrCat("[", absl::StrJoin(parts, ","), "]");
}

std::string RolesJson(const Identity& who) {
  std::vector<std::string> roles;
  if (who.submitter) roles.push_back("\"submitter\"");
  if (who.operator_role) roles.push_back("\"operator\"");
  if (who.worker) roles.push_back("\"worker\"");
  return absl::StrCat("[", absl::StrJoin(roles, ","), "]");
}

const char* SourceName(Identity::Source source) {
  switch (source) {
    case Identity::Source::kAnonymous:
      return "anonymous";
    case Identity::Source::kCertificate:
      return "certificate";
    case Identity::Source::kToken:
      return "token";
  }
  return "?";
}

std::string WorkerState(const longshore::v1::WorkerInfo& w) {
  if (!w.connected()) return "disconnected";
  if (w.draining()) return "draining";
  return w.free_slots() < w.slots() ? "busy" : "idle";
}

}  // namespace

int HttpStatusOf(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return 200;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kInvalidArgument:
      return 400;
    case absl::StatusCode::kUnavailable:
      return 503;
    default:
      return 500;
  }
}

JsonReply ErrorReply(const absl::Status& status) {
  JsonReply reply;
  reply.status = HttpStatusOf(status);
  absl::string_view message = status.message();
  if (reply.status == 500) {
    LS_LOG(WARNING) << "web: " << status;
    message = "internal error (the scheduler's log has the detail)";
  }
  reply.body = absl::StrCat("{\"error\":", JsonQuote(message), "}");
  return reply;
}

std::string BuildJson(const BuildInfo& build, int position, absl::Time now,
                      bool with_dockerfile) {
  const auto& spec = build.spec();
  const int64_t created_ms = MillisFromNanos(build.created_unix_nanos());
  const int64_t finished_ms = MillisFromNanos(build.finished_unix_nanos());
  const int64_t end_ms =
      finished_ms > 0 ? finished_ms : absl::ToUnixMillis(now);
  std::string json = absl::StrCat(
      "{\"id\":", JsonQuote(build.build_id()),
      ",\"state\":", JsonQuote(longshore::v1::BuildState_Name(build.state())),
      ",\"submitter\":", JsonQuote(spec.submitter()),
      ",\"worker\":", JsonQuote(build.worker_id()),
      ",\"attempts\":", build.attempts(), ",\"created_ms\":", created_ms,
      ",\"finished_ms\":", finished_ms,
      ",\"elapsed_ms\":", std::max<int64_t>(0, end_ms - created_ms),
      ",\"position\":", position,
      ",\"image_digest\":", JsonQuote(build.image_digest()),
      ",\"error\":", JsonQuote(build.error()), ",\"dockerfile_path\":",
      JsonQuote(spec.dockerfile_path().empty() ? "Dockerfile"
                                               : spec.dockerfile_path()),
      ",\"tags\":", StringsJson(spec.tags()),
      ",\"target\":", JsonQuote(spec.target()),
      ",\"platform\":", JsonQuote(spec.platform()),
      ",\"worker_labels\":", KeyValuesJson(spec.worker_labels()),
      ",\"build_args\":", KeyValuesJson(spec.build_args()),
      ",\"no_cache\":", spec.no_cache() ? "true" : "false",
      ",\"context_digest\":", JsonQuote(spec.context_digest()),
      ",\"context_size\":", spec.context_size(),
      ",\"outputs\":", OutputsJson(build));
  if (with_dockerfile) {
    absl::string_view dockerfile = spec.dockerfile();
    const bool cut = dockerfile.size() > kMaxDockerfileShown;
    if (cut) dockerfile = dockerfile.substr(0, kMaxDockerfileShown);
    absl::StrAppend(&json, ",\"dockerfile\":", JsonQuote(dockerfile),
                    ",\"dockerfile_cut\":", cut ? "true" : "false");
  }
  json.push_back('}');
  return json;
}

absl::StatusOr<Identity> WebApi::Authorize(const Credentials& credentials,
                                           Rpc rpc,
                                           const std::string& build_id) const {
  absl::StatusOr<Identity> who = authz_->Authenticate(credentials);
  if (!who.ok()) return who.status();
  if (absl::Status st = authz_->Check(*who, rpc, build_id); !st.ok()) {
    return st;
  }
  return who;
}

JsonReply WebApi::Whoami(const Credentials& credentials) const {
  absl::StatusOr<Identity> who = Authorize(credentials, Rpc::kWebWhoami);
  if (!who.ok()) return ErrorReply(who.status());
  JsonReply reply;
  reply.body =
      absl::StrCat("{\"name\":", JsonQuote(who->name),
                   ",\"source\":", JsonQuote(SourceName(who->source)),
                   ",\"roles\":", RolesJson(*who),
                   ",\"describe\":", JsonQuote(who->Describe()),
                   ",\"open\":", authz_->open() ? "true" : "false", "}");
  return reply;
}

JsonReply WebApi::ListBuilds(const Credentials& credentials, int finished_limit,
                             absl::Time now) const {
  absl::StatusOr<Identity> who = Authorize(credentials, Rpc::kWebListBuilds);
  if (!who.ok()) return ErrorReply(who.status());
  const std::string filter = authz_->ListFilter(*who);
  // A submitter without a name (none is open and anonymous at once) would
  // list everyone's builds: refuse rather than widen.
  if (filter.empty() && !who->operator_role) {
    return ErrorReply(absl::PermissionDeniedError(
        absl::StrCat(who->Describe(), " has no name to list builds under")));
  }
  auto queued = coordinator_->ListBuilds({longshore::v1::QUEUED},
                                         kMaxActiveListed, filter);
  if (!queued.ok()) return ErrorReply(queued.status());
  auto running = coordinator_->ListBuilds({longshore::v1::RUNNING},
                                          kMaxActiveListed, filter);
  if (!running.ok()) return ErrorReply(running.status());
  auto finished = coordinator_->ListBuilds(
      {longshore::v1::SUCCEEDED, longshore::v1::FAILED,
       longshore::v1::CANCELLED},
      std::clamp(finished_limit, 1, kMaxActiveListed), filter);
  if (!finished.ok()) return ErrorReply(finished.status());

  std::vector<std::string> queued_ids;
  for (const BuildInfo& b : *queued) queued_ids.push_back(b.build_id());
  std::vector<int> positions = coordinator_->QueuePositions(queued_ids);
  std::vector<std::pair<int, std::string>> queue;
  for (size_t i = 0; i < queued->size(); ++i) {
    // A build merged into an identical running one is listed QUEUED with no
    // place in the queue; it is shown after the real queue.
    int pos = positions[i] > 0 ? positions[i] : 1 << 30;
    queue.emplace_back(pos, BuildJson((*queued)[i], positions[i], now, false));
  }
  std::stable_sort(
      queue.begin(), queue.end(),
      [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::string> parts;
  for (auto& q : queue) parts.push_back(std::move(q.second));
  std::string json =
      absl::StrCat("{\"queued\":[", absl::StrJoin(parts, ","), "]");
  parts.clear();
  for (const BuildInfo& b : *running)
    parts.push_back(BuildJson(b, 0, now, false));
  absl::StrAppend(&json, ",\"running\":[", absl::StrJoin(parts, ","), "]");
  parts.clear();
  for (const BuildInfo& b : *finished) {
    parts.push_back(BuildJson(b, 0, now, false));
  }
  absl::StrAppend(&json, ",\"finished\":[", absl::StrJoin(parts, ","), "]}");
  JsonReply reply;
  reply.body = std::move(json);
  return reply;
}

JsonReply WebApi::GetBuild(const Credentials& credentials,
                           const std::string& build_id, absl::Time now) const {
  absl::StatusOr<Identity> who =
      Authorize(credentials, Rpc::kWebGetBuild, build_id);
  if (!who.ok()) return ErrorReply(who.status());
  absl::StatusOr<BuildInfo> build = coordinator_->GetBuild(build_id);
  if (!build.ok()) return ErrorReply(build.status());
  int position = coordinator_->QueuePositions({build_id})[0];
  JsonReply reply;
  reply.body = BuildJson(*build, position, now, /*with_dockerfile=*/true);
  return reply;
}

JsonReply WebApi::ListWorkers(const Credentials& credentials,
                              absl::Time now) const {
  absl::StatusOr<Identity> who = Authorize(credentials, Rpc::kWebListWorkers);
  if (!who.ok()) return ErrorReply(who.status());
  std::vector<std::string> parts;
  for (const longshore::v1::WorkerInfo& w : coordinator_->ListWorkers()) {
    const int64_t heartbeat_ms = MillisFromNanos(w.last_heartbeat_unix_nanos());
    parts.push_back(absl::StrCat(
        "{\"id\":", JsonQuote(w.worker_id()),
        ",\"state\":", JsonQuote(WorkerState(w)), ",\"slots\":", w.slots(),
        ",\"free_slots\":", w.free_slots(), ",\"platform\":",
        JsonQuote(w.platform()), ",\"labels\":", KeyValuesJson(w.labels()),
        ",\"running\":", StringsJson(w.running_build_ids()),
        ",\"last_heartbeat_ms\":", heartbeat_ms, ",\"heartbeat_age_ms\":",
        heartbeat_ms > 0
            ? std::max<int64_t>(0, absl::ToUnixMillis(now) - heartbeat_ms)
            : -1,
        "}"));
  }
  JsonReply reply;
  reply.body = absl::StrCat("{\"workers\":[", absl::StrJoin(parts, ","), "]}");
  return reply;
}

}  // namespace longshore::scheduler::web
