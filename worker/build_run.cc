// The build from parse to result: the plan, the first failure, the events.
#include "worker/build_run.h"

#include <unistd.h>

#include <algorithm>
#include <regex>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/file_util.h"
#include "common/log.h"
#include "common/platform.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"
#include "worker/entitlements.h"

namespace longshore::worker {
namespace build_internal {

int64_t NowNanos() { return absl::ToUnixNanos(absl::Now()); }

// "Dockerfile:12: unknown instruction: RUNN" -> 12.
int LineFromMessage(absl::string_view message) {
  static const std::regex kLine(R"(^[^:\s]*:(\d+)(:\d+)?: )");
  std::cmatch m;
  std::string s(message);
  if (std::regex_search(s.c_str(), m, kLine)) {
    int line = 0;
    if (absl::SimpleAtoi(m[1].str(), &line)) return line;
  }
  return 0;
}

BuildOutcome BuildRun::Run() {
  BuildOutcome out;
  auto tmp = MakeTempDir(opts_.work_dir + "/tmp",
                         absl::StrCat("build-", req_.build_id, "-"));
  if (!tmp.ok()) {
    out.error = std::string(tmp.status().message());
    return out;
  }
  tmp_ = *tmp;
  auto cleanup = absl::MakeCleanup([&] {
    absl::Status s = RemoveTree(tmp_);
    if (!s.ok()) LS_LOG(WARNING) << "cleanup of " << tmp_ << ": " << s;
  });
  absl::Status s = Build(&out);
  if (!s.ok()) {
    out.state = (cancel_ != nullptr && *cancel_) ? v1::CANCELLED : v1::FAILED;
    out.error = std::string(s.message());
    out.failed_step = failure_.step;
    out.error_line = failure_.line;
    for (const auto& [index, path] : out.output_files) unlink(path.c_str());
    out.output_files.clear();
    v1::BuildEvent ev;
    ev.set_time_unix_nanos(NowNanos());
    auto* e = ev.mutable_error();
    e->set_message(out.error);
    *e->mutable_step() = failure_.step;
    e->set_line(failure_.line);
    sink_->Emit(ev);
    return out;
  }
  out.state = v1::SUCCEEDED;
  return out;
}

absl::Status BuildRun::Build(BuildOutcome* out) {
  const v1::BuildSpec& spec = req_.spec;
  std::string filename =
      spec.dockerfile_path().empty() ? "Dockerfile" : spec.dockerfile_path();
  auto parsed = dockerfile::Parse(spec.dockerfile(), filename);
  if (!parsed.ok()) {
    return Fail(parsed.status(), {},
                LineFromMessage(parsed.status().message()));
  }
  df_ = std::move(*parsed);
  dockerfile::PlanOptions popts;
  for (const auto& kv : spec.build_args()) {
    popts.build_args.emplace_back(kv.key(), kv.value());
    if (kv.key() == "SOURCE_DATE_EPOCH") {
      int64_t v;
      if (absl::SimpleAtoi(kv.value(), &v)) source_date_epoch_ = v;
    }
  }
  popts.target = spec.target();
  // Workers build natively: a build for another platform was sent here by
  // mistake (the scheduler places by platform).
  const std::string native =
      opts_.platform.empty() ? NativePlatform() : opts_.platform;
  if (!spec.platform().empty() && !PlatformMatches(spec.platform(), native)) {
    return Fail(absl::FailedPreconditionError(
                    absl::StrCat("--platform ", spec.platform(),
                                 ": this worker builds ", native, " only")),
                {}, 0);
  }
  if (absl::Status s = CheckBuildEntitlements(
          spec, {opts_.allow_host_network, opts_.allow_insecure});
      !s.ok()) {
    return Fail(s, {}, 0);
  }
  popts.build_platform = native;
  popts.target_platform = spec.platform().empty() ? native : spec.platform();
  auto plan = dockerfile::Plan(df_, popts);
  if (!plan.ok()) {
    return Fail(plan.status(), {}, LineFromMessage(plan.status().message()));
  }
  plan_ = std::move(*plan);
  CountSteps();

  RETURN_IF_ERROR(BuildStages());
  StageResult final_stage;
  {
    absl::MutexLock l(&mu_);
    final_stage = results_.at(plan_.target);
  }
  return Export(final_stage, out);
}

// Records the build's failure (the first one wins when stages run in
// parallel) and stops the other stages.
absl::Status BuildRun::Fail(absl::Status s, const v1::StepRef& step, int line) {
  absl::MutexLock l(&mu_);
  if (failure_.status.ok()) {
    failure_.status = s;
    failure_.step = step;
    failure_.line = line;
  }
  stop_ = true;
  return s;
}

void BuildRun::EmitStarted(const v1::StepRef& ref) {
  v1::BuildEvent ev;
  ev.set_time_unix_nanos(NowNanos());
  *ev.mutable_step_started()->mutable_step() = ref;
  sink_->Emit(ev);
}

void BuildRun::EmitFinished(const v1::StepRef& ref, Clock::time_point start,
                            const std::string& layer_digest) {
  v1::BuildEvent ev;
  ev.set_time_unix_nanos(NowNanos());
  auto* fin = ev.mutable_step_finished();
  *fin->mutable_step() = ref;
  fin->set_duration_ms(std::chrono::duration_cast<std::chrono::milliseconds>(
                           Clock::now() - start)
                           .count());
  fin->set_layer_digest(layer_digest);
  sink_->Emit(ev);
}

// A warning for the submitter, shown among the build's output.
void BuildRun::Warn(const std::string& message) {
  LS_LOG(WARNING) << "build " << req_.build_id << ": " << message;
  v1::BuildEvent ev;
  ev.set_time_unix_nanos(NowNanos());
  ev.mutable_log()->set_stream(v1::BuildEvent::Log::STDERR);
  ev.mutable_log()->set_data(absl::StrCat("WARNING: ", message, "\n"));
  sink_->Emit(ev);
}

std::string BuildRun::Created() const {
  if (source_date_epoch_) return image::FormatRfc3339(*source_date_epoch_);
  return image::FormatRfc3339(absl::ToUnixSeconds(absl::Now()));
}

// The date recorded with a cache entry; now for entries that have none.
std::string BuildRun::CreatedOf(const image::CacheEntry& hit) const {
  auto j = nlohmann::json::parse(hit.config_change, nullptr, false);
  if (j.is_object() && j.contains("created") && j["created"].is_string()) {
    return j["created"].get<std::string>();
  }
  return Created();
}

// The latest date in a stage's history ("" when it has none).
std::string BuildRun::LastCreated(const StageResult& r) {
  std::string last;
  for (const auto& h : r.history) last = std::max(last, h.created);
  return last;
}

}  // namespace build_internal
}  // namespace longshore::worker
