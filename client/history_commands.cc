#include "client/history_commands.h"

#include <grpcpp/grpcpp.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "client/history_format.h"
#include "client/progress.h"
#include "client/scheduler_channel.h"
#include "nlohmann/json.hpp"
#include "proto/longshore.grpc.pb.h"

namespace longshore::client {

const char kBuildsUsage[] =
    R"(Usage: longshore builds [OPTIONS]

Recent builds, newest first (a submitter sees only its own).

Options:
      --state STATE       queued, running, succeeded, failed or cancelled
                          (repeatable; e.g. --state running --state queued)
      --submitter NAME    Only builds of this submitter (e.g. --submitter ci)
      --since WHEN        Created within a duration back from now or after an
                          RFC 3339 time (e.g. --since 2h, --since
                          2026-12-05T07:00:00Z)
      --limit N           At most N builds (default 100)
      --format FORMAT     table or json (default table; e.g. --format json)
)";

const char kInspectUsage[] =
    R"(Usage: longshore inspect [OPTIONS] BUILD

A build's spec, submitter, worker, times, steps (with durations and cache
hits) and outputs.

Options:
      --format FORMAT     text or json (default text; e.g. --format json)
)";

const char kLogsUsage[] =
    R"(Usage: longshore logs [OPTIONS] BUILD

Everything the build's steps wrote: their stdout on stdout, their stderr on
stderr, byte for byte, in order.

Options:
  -f, --follow            Keep following a running build to its end
                          (e.g. longshore logs --follow ID)
      --step N            Only step N (#N in the progress; e.g. --step 3)
)";

namespace {

using nlohmann::ordered_json;

int Usage(const char* usage, const std::string& problem) {
  fprintf(stderr, "ERROR: %s\n\n%s", problem.c_str(), usage);
  return 2;
}

int CallFailed(const std::string& what, const grpc::Status& s) {
  fprintf(stderr, "ERROR: %s: %s\n", what.c_str(),
          DescribeCallError(s).c_str());
  return s.error_code() == grpc::StatusCode::NOT_FOUND ? 1 : 1;
}

// The arguments after the command: --scheduler taken out, every "--flag=v"
// split into two words.
struct Args {
  std::string scheduler;
  std::vector<std::string> words;
};

Args SplitArgs(const std::vector<std::string>& raw) {
  Args a;
  if (const char* env = getenv("LONGSHORE_SCHEDULER")) a.scheduler = env;
  for (size_t i = 0; i < raw.size(); ++i) {
    std::string w = raw[i];
    size_t eq = w.find('=');
    if (w.rfind("--", 0) == 0 && eq != std::string::npos) {
      std::string name = w.substr(0, eq);
      std::string value = w.substr(eq + 1);
      if (name == "--scheduler") {
        a.scheduler = value;
      } else {
        a.words.push_back(name);
        a.words.push_back(value);
      }
      continue;
    }
    if (w == "--scheduler" && i + 1 < raw.size()) {
      a.scheduler = raw[++i];
      continue;
    }
    a.words.push_back(w);
  }
  return a;
}

// Every event of a build so far (or to its end, with `follow`), handed to
// `on_event` in order; reconnects after a dropped stream where it left off.
grpc::Status ReadEvents(
    v1::BuildService::Stub* stub, const std::string& build_id, bool follow,
    const std::function<void(const v1::BuildEvent&)>& on_event) {
  uint64_t after = 0;
  int failures = 0;
  for (;;) {
    grpc::ClientContext cc;
    v1::WatchRequest req;
    req.set_build_id(build_id);
    req.set_after_sequence(after);
    req.set_no_follow(!follow);
    auto reader = stub->Watch(&cc, req);
    v1::BuildEvent ev;
    bool finished = false;
    while (reader->Read(&ev)) {
      failures = 0;
      if (ev.sequence() <= after) continue;
      after = ev.sequence();
      on_event(ev);
      if (ev.has_build_finished()) finished = true;
    }
    grpc::Status s = reader->Finish();
    if (finished || (s.ok() && !follow)) return grpc::Status::OK;
    if (s.ok()) continue;  // the stream ended before the build: go on
    if (s.error_code() != grpc::StatusCode::UNAVAILABLE &&
        s.error_code() != grpc::StatusCode::CANCELLED) {
      return s;
    }
    if (++failures > 30) return s;
    std::this_thread::sleep_for(
        std::chrono::milliseconds(std::min(2000, 100 * failures)));
  }
}

void WriteAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t w = write(fd, data.data() + off, data.size() - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    off += static_cast<size_t>(w);
  }
}

int RunLogs(v1::BuildService::Stub* stub, const Args& a) {
  bool follow = false;
  int step = 0;
  std::string id;
  for (size_t i = 0; i < a.words.size(); ++i) {
    const std::string& w = a.words[i];
    if (w == "-f" || w == "--follow") {
      follow = true;
    } else if (w == "--step") {
      if (i + 1 >= a.words.size() || !absl::SimpleAtoi(a.words[i + 1], &step) ||
          step <= 0) {
        return Usage(kLogsUsage, "--step: want a step number (1, 2, ...)");
      }
      ++i;
    } else if (w.rfind("-", 0) == 0) {
      return Usage(kLogsUsage, absl::StrCat("unknown flag: ", w));
    } else if (id.empty()) {
      id = w;
    } else {
      return Usage(kLogsUsage, "logs takes one BUILD");
    }
  }
  if (id.empty()) return Usage(kLogsUsage, "logs needs a BUILD id");
  grpc::Status s = ReadEvents(stub, id, follow, [&](const v1::BuildEvent& ev) {
    if (ev.has_log()) {
      if (step > 0 && ev.log().step().index() != step) return;
      WriteAll(ev.log().stream() == v1::BuildEvent::Log::STDERR ? 2 : 1,
               ev.log().data());
    } else if (ev.has_warning()) {
      WriteAll(2, absl::StrCat("WARNING: ", ev.warning().message(), "\n"));
    }
  });
  if (!s.ok()) return CallFailed(absl::StrCat("logs ", id), s);
  return 0;
}

// One step as inspect shows it, gathered from the events.
struct StepView {
  v1::StepRef ref;
  int64_t started_ns = 0;
  int64_t duration_ms = -1;
  bool cached = false;
  std::string layer;
  std::string error;
};

std::string OutputText(const v1::OutputSpec& o) {
  std::string type;
  switch (o.type()) {
    case v1::OutputSpec::OCI:
      type = "oci";
      break;
    case v1::OutputSpec::DOCKER:
      type = "docker";
      break;
    case v1::OutputSpec::REGISTRY:
      type = "registry";
      break;
    case v1::OutputSpec::LOCAL:
      type = "local";
      break;
    case v1::OutputSpec::TAR:
      type = "tar";
      break;
    default:
      type = "unknown";
  }
  std::string text = absl::StrCat("type=", type);
  if (!o.dest().empty()) absl::StrAppend(&text, ",dest=", o.dest());
  for (const auto& kv : o.attrs()) {
    absl::StrAppend(&text, ",", kv.key(), "=", kv.value());
  }
  return text;
}

std::string Pairs(const google::protobuf::RepeatedPtrField<v1::KeyValue>& kvs) {
  std::vector<std::string> out;
  for (const auto& kv : kvs) out.push_back(kv.key() + "=" + kv.value());
  return absl::StrJoin(out, " ");
}

int RunInspect(v1::BuildService::Stub* stub, const Args& a) {
  bool json = false;
  std::string id;
  for (size_t i = 0; i < a.words.size(); ++i) {
    const std::string& w = a.words[i];
    if (w == "--format") {
      if (i + 1 >= a.words.size())
        return Usage(kInspectUsage, "--format: text or json");
      const std::string& v = a.words[++i];
      if (v != "json" && v != "text") {
        return Usage(kInspectUsage,
                     absl::StrCat("--format ", v, ": text or json"));
      }
      json = v == "json";
    } else if (w.rfind("-", 0) == 0) {
      return Usage(kInspectUsage, absl::StrCat("unknown flag: ", w));
    } else if (id.empty()) {
      id = w;
    } else {
      return Usage(kInspectUsage, "inspect takes one BUILD");
    }
  }
  if (id.empty()) return Usage(kInspectUsage, "inspect needs a BUILD id");
  v1::BuildInfo info;
  {
    grpc::ClientContext cc;
    v1::GetBuildRequest req;
    req.set_build_id(id);
    grpc::Status s = stub->GetBuild(&cc, req, &info);
    if (!s.ok()) return CallFailed(absl::StrCat("inspect ", id), s);
  }
  std::map<int, StepView> steps;
  v1::BuildEvent::BuildFinished finished;
  std::vector<std::string> warnings;
  std::string error_text;
  int64_t assigned_ns = 0;
  grpc::Status s = ReadEvents(stub, id, false, [&](const v1::BuildEvent& ev) {
    auto at = [&](const v1::StepRef& ref) -> StepView& {
      StepView& v = steps[ref.index()];
      v.ref = ref;
      return v;
    };
    switch (ev.kind_case()) {
      case v1::BuildEvent::kAssigned:
        assigned_ns = ev.time_unix_nanos();
        break;
      case v1::BuildEvent::kStepStarted:
        at(ev.step_started().step()).started_ns = ev.time_unix_nanos();
        break;
      case v1::BuildEvent::kStepCached: {
        StepView& v = at(ev.step_cached().step());
        v.cached = true;
        v.layer = ev.step_cached().layer_digest();
        break;
      }
      case v1::BuildEvent::kStepFinished: {
        StepView& v = at(ev.step_finished().step());
        v.duration_ms = ev.step_finished().duration_ms();
        v.layer = ev.step_finished().layer_digest();
        break;
      }
      case v1::BuildEvent::kError:
        error_text = ev.error().message();
        if (ev.error().step().index() > 0) {
          at(ev.error().step()).error = ev.error().message();
        }
        break;
      case v1::BuildEvent::kWarning:
        warnings.push_back(ev.warning().message());
        break;
      case v1::BuildEvent::kBuildFinished:
        finished = ev.build_finished();
        break;
      default:
        break;
    }
  });
  if (!s.ok()) return CallFailed(absl::StrCat("inspect ", id), s);
  const v1::BuildSpec& spec = info.spec();
  const absl::Time now = absl::Now();
  int run = 0, cached = 0;
  for (const auto& [n, v] : steps) {
    if (v.cached) {
      ++cached;
    } else if (v.duration_ms >= 0) {
      ++run;
    }
  }
  std::vector<std::string> ready;
  for (int i : info.ready_outputs()) ready.push_back(std::to_string(i));
  if (json) {
    ordered_json j;
    j["id"] = info.build_id();
    j["state"] = BuildStateName(info.state());
    j["submitter"] = spec.submitter();
    j["worker"] = info.worker_id();
    j["attempts"] = info.attempts();
    j["created"] = FormatTime(info.created_unix_nanos());
    j["started"] = FormatTime(info.started_unix_nanos());
    j["finished"] = FormatTime(info.finished_unix_nanos());
    j["duration"] = BuildDuration(info, now);
    ordered_json js;
    js["dockerfile"] = spec.dockerfile_path();
    js["context_digest"] = spec.context_digest();
    js["context_size"] = spec.context_size();
    js["tags"] =
        std::vector<std::string>(spec.tags().begin(), spec.tags().end());
    js["target"] = spec.target();
    js["platform"] = spec.platform();
    js["no_cache"] = spec.no_cache();
    js["pull"] = spec.pull();
    js["network"] = spec.network();
    js["entitlements"] = std::vector<std::string>(spec.entitlements().begin(),
                                                  spec.entitlements().end());
    ordered_json args = ordered_json::object();
    for (const auto& kv : spec.build_args()) args[kv.key()] = kv.value();
    js["build_args"] = args;
    ordered_json labels = ordered_json::object();
    for (const auto& kv : spec.labels()) labels[kv.key()] = kv.value();
    js["labels"] = labels;
    std::vector<std::string> secret_ids;
    for (const auto& sec : spec.secrets()) secret_ids.push_back(sec.id());
    js["secrets"] = secret_ids;
    j["spec"] = js;
    j["image_digest"] = info.image_digest();
    j["config_digest"] = finished.config_digest();
    j["names"] = std::vector<std::string>(finished.references().begin(),
                                          finished.references().end());
    ordered_json jsteps = ordered_json::array();
    for (const auto& [n, v] : steps) {
      ordered_json st;
      st["index"] = n;
      st["stage"] = v.ref.stage();
      st["instruction"] = v.ref.instruction();
      st["line"] = v.ref.line();
      st["cached"] = v.cached;
      if (v.duration_ms >= 0) {
        st["duration_ms"] = v.duration_ms;
      } else {
        st["duration_ms"] = nullptr;
      }
      st["layer_digest"] = v.layer;
      if (!v.error.empty()) st["error"] = v.error;
      jsteps.push_back(st);
    }
    j["steps"] = jsteps;
    ordered_json outs = ordered_json::array();
    for (int i = 0; i < spec.outputs_size(); ++i) {
      ordered_json o;
      o["index"] = i;
      o["output"] = OutputText(spec.outputs(i));
      bool is_ready = false;
      for (int r : info.ready_outputs()) is_ready = is_ready || r == i;
      o["ready"] = is_ready;
      outs.push_back(o);
    }
    j["outputs"] = outs;
    j["error"] = info.error();
    j["warnings"] = warnings;
    printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  auto line = [](const char* key, const std::string& value) {
    if (!value.empty()) printf("%-12s %s\n", key, value.c_str());
  };
  line("Build:", info.build_id());
  line("State:", BuildStateName(info.state()));
  line("Submitter:", spec.submitter().empty() ? "-" : spec.submitter());
  line("Worker:", info.worker_id().empty()
                      ? "-"
                      : absl::StrCat(info.worker_id(), " (attempt ",
                                     info.attempts(), ")"));
  line("Created:", FormatTime(info.created_unix_nanos()));
  std::string started = FormatTime(info.started_unix_nanos());
  if (info.started_unix_nanos() > 0 && info.created_unix_nanos() > 0) {
    absl::StrAppend(&started, " (waited ",
                    HumanDuration(absl::Nanoseconds(info.started_unix_nanos() -
                                                    info.created_unix_nanos())),
                    ")");
  }
  line("Started:", started);
  std::string ended = FormatTime(info.finished_unix_nanos());
  if (info.finished_unix_nanos() > 0) {
    absl::StrAppend(&ended, " (took ", BuildDuration(info, now), ")");
  } else if (info.started_unix_nanos() > 0) {
    ended = absl::StrCat("- (running for ", BuildDuration(info, now), ")");
  }
  line("Finished:", ended);
  (void)assigned_ns;
  line("Dockerfile:", spec.dockerfile_path());
  line("Context:", absl::StrCat(spec.context_digest(), " (",
                                spec.context_size(), " bytes)"));
  line("Tags:", absl::StrJoin(spec.tags(), " "));
  line("Target:", spec.target());
  line("Platform:", spec.platform());
  line("Build args:", Pairs(spec.build_args()));
  line("Labels:", Pairs(spec.labels()));
  line("Worker lbls:", Pairs(spec.worker_labels()));
  line("Network:", spec.network());
  line("Allow:", absl::StrJoin(spec.entitlements(), ","));
  if (spec.pull()) line("Pull:", "always");
  if (spec.no_cache()) line("No cache:", "true");
  std::vector<std::string> secret_ids;
  for (const auto& sec : spec.secrets()) secret_ids.push_back(sec.id());
  line("Secrets:", absl::StrJoin(secret_ids, " "));
  line("Image:", info.image_digest());
  line("Config:", finished.config_digest());
  line("Names:", absl::StrJoin(finished.references(), " "));
  if (!steps.empty()) {
    printf("Steps:       %d run, %d cached\n", run, cached);
    for (const auto& [n, v] : steps) {
      std::string when;
      if (v.cached) {
        when = "CACHED";
      } else if (v.duration_ms >= 0) {
        when = HumanDuration(absl::Milliseconds(v.duration_ms));
      } else if (!v.error.empty()) {
        when = "ERROR";
      } else if (v.started_ns > 0) {
        when = "running";
      }
      printf("  #%-3d %-8s [%s] %s\n", n, when.c_str(), v.ref.stage().c_str(),
             v.ref.instruction().c_str());
    }
  }
  if (spec.outputs_size() > 0) {
    printf("Outputs:\n");
    for (int i = 0; i < spec.outputs_size(); ++i) {
      bool is_ready = false;
      for (int r : info.ready_outputs()) is_ready = is_ready || r == i;
      const bool pushed = spec.outputs(i).type() == v1::OutputSpec::REGISTRY;
      printf("  %d %s%s\n", i, OutputText(spec.outputs(i)).c_str(),
             is_ready                                  ? "  (ready to fetch)"
             : pushed && info.state() == v1::SUCCEEDED ? "  (pushed)"
                                                       : "");
    }
  }
  for (const auto& w : warnings) line("Warning:", w);
  line("Error:", info.error().empty() ? error_text : info.error());
  return 0;
}

int RunBuilds(v1::BuildService::Stub* stub, const Args& a) {
  v1::ListBuildsRequest req;
  req.set_limit(100);
  bool json = false;
  const absl::Time now = absl::Now();
  for (size_t i = 0; i < a.words.size(); ++i) {
    const std::string& w = a.words[i];
    auto value = [&]() -> const std::string* {
      return i + 1 < a.words.size() ? &a.words[++i] : nullptr;
    };
    if (w == "--state") {
      const std::string* v = value();
      if (v == nullptr) return Usage(kBuildsUsage, "--state needs a STATE");
      absl::StatusOr<v1::BuildState> st = ParseStateName(*v);
      if (!st.ok())
        return Usage(kBuildsUsage, std::string(st.status().message()));
      req.add_states(*st);
    } else if (w == "--submitter") {
      const std::string* v = value();
      if (v == nullptr || v->empty()) {
        return Usage(kBuildsUsage, "--submitter needs a NAME");
      }
      req.set_submitter(*v);
    } else if (w == "--since") {
      const std::string* v = value();
      if (v == nullptr) return Usage(kBuildsUsage, "--since needs a WHEN");
      absl::StatusOr<absl::Time> t = ParseSince(*v, now);
      if (!t.ok())
        return Usage(kBuildsUsage, std::string(t.status().message()));
      req.set_since_unix_nanos(absl::ToUnixNanos(*t));
    } else if (w == "--limit" || w == "-n") {
      const std::string* v = value();
      int n = 0;
      if (v == nullptr || !absl::SimpleAtoi(*v, &n) || n <= 0) {
        return Usage(kBuildsUsage, "--limit: want a positive number");
      }
      req.set_limit(n);
    } else if (w == "--format") {
      const std::string* v = value();
      if (v == nullptr || (*v != "json" && *v != "table")) {
        return Usage(kBuildsUsage, "--format: table or json");
      }
      json = *v == "json";
    } else {
      return Usage(kBuildsUsage, absl::StrCat("unknown argument: ", w));
    }
  }
  grpc::ClientContext cc;
  v1::ListBuildsResponse resp;
  grpc::Status s = stub->ListBuilds(&cc, req, &resp);
  if (!s.ok()) return CallFailed("list builds", s);
  if (json) {
    ordered_json arr = ordered_json::array();
    for (const auto& b : resp.builds()) {
      ordered_json j;
      j["id"] = b.build_id();
      j["state"] = BuildStateName(b.state());
      j["submitter"] = b.spec().submitter();
      j["worker"] = b.worker_id();
      j["created"] = FormatTime(b.created_unix_nanos());
      j["started"] = FormatTime(b.started_unix_nanos());
      j["finished"] = FormatTime(b.finished_unix_nanos());
      if (b.started_unix_nanos() > 0) {
        absl::Time end = b.finished_unix_nanos() > 0
                             ? absl::FromUnixNanos(b.finished_unix_nanos())
                             : now;
        j["duration_ms"] = absl::ToInt64Milliseconds(
            end - absl::FromUnixNanos(b.started_unix_nanos()));
      } else {
        j["duration_ms"] = nullptr;
      }
      j["tags"] = std::vector<std::string>(b.spec().tags().begin(),
                                           b.spec().tags().end());
      j["image_digest"] = b.image_digest();
      j["error"] = b.error();
      arr.push_back(j);
    }
    printf("%s\n", arr.dump(2).c_str());
    return 0;
  }
  // BUILD, STATE and WORKER stay the first three columns: scripts read them.
  printf("%-36s %-10s %-16s %-16s %-20s %-9s %s\n", "BUILD", "STATE", "WORKER",
         "SUBMITTER", "CREATED", "DURATION", "IMAGE");
  for (const auto& b : resp.builds()) {
    std::string image = b.image_digest().empty() ? "-" : b.image_digest();
    printf("%-36s %-10s %-16s %-16s %-20s %-9s %s\n", b.build_id().c_str(),
           BuildStateName(b.state()),
           b.worker_id().empty() ? "-" : b.worker_id().c_str(),
           b.spec().submitter().empty() ? "-" : b.spec().submitter().c_str(),
           FormatTime(b.created_unix_nanos()).c_str(),
           BuildDuration(b, now).c_str(), image.c_str());
  }
  return 0;
}

}  // namespace

int RunHistoryCommand(const std::string& command,
                      const std::vector<std::string>& raw_args) {
  const char* usage = command == "builds"    ? kBuildsUsage
                      : command == "inspect" ? kInspectUsage
                                             : kLogsUsage;
  for (const auto& a : raw_args) {
    if (a == "-h" || a == "--help") {
      fputs(usage, stdout);
      return 0;
    }
  }
  Args a = SplitArgs(raw_args);
  if (a.scheduler.empty()) {
    fprintf(stderr,
            "longshore %s: pass --scheduler HOST:PORT or set "
            "LONGSHORE_SCHEDULER\n",
            command.c_str());
    return 2;
  }
  auto channel = DialScheduler(a.scheduler, TlsFilesFromEnvironment());
  if (!channel.ok()) {
    fprintf(stderr, "longshore %s: %s\n", command.c_str(),
            std::string(channel.status().message()).c_str());
    return 2;
  }
  auto stub = v1::BuildService::NewStub(*channel);
  if (command == "logs") return RunLogs(stub.get(), a);
  if (command == "inspect") return RunInspect(stub.get(), a);
  return RunBuilds(stub.get(), a);
}

}  // namespace longshore::client
