#include "scheduler/web/event_stream.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "scheduler/web/json_text.h"

namespace longshore::scheduler::web {
namespace {

using longshore::v1::BuildEvent;

// Events read from the journal at a time.
constexpr int kBatch = 256;

std::string StepJson(const longshore::v1::StepRef& step) {
  return absl::StrCat("{\"stage\":", JsonQuote(step.stage()),
                      ",\"index\":", step.index(), ",\"total\":", step.total(),
                      ",\"instruction\":", JsonQuote(step.instruction()),
                      ",\"line\":", step.line(), "}");
}

std::string StringsJson(
    const google::protobuf::RepeatedPtrField<std::string>& strings) {
  std::string out = "[";
  for (int i = 0; i < strings.size(); ++i) {
    absl::StrAppend(&out, i > 0 ? "," : "", JsonQuote(strings[i]));
  }
  out.push_back(']');
  return out;
}

}  // namespace

std::string EventJson(const BuildEvent& event) {
  std::string json =
      absl::StrCat("{\"seq\":", event.sequence(),
                   ",\"time_ms\":", event.time_unix_nanos() / 1000000);
  switch (event.kind_case()) {
    case BuildEvent::kQueued:
      absl::StrAppend(&json, ",\"kind\":\"queued\",\"position\":",
                      event.queued().position());
      break;
    case BuildEvent::kAssigned:
      absl::StrAppend(&json, ",\"kind\":\"assigned\",\"worker\":",
                      JsonQuote(event.assigned().worker_id()),
                      ",\"attempt\":", event.assigned().attempt());
      break;
    case BuildEvent::kStepStarted:
      absl::StrAppend(&json, ",\"kind\":\"step_started\",\"step\":",
                      StepJson(event.step_started().step()));
      break;
    case BuildEvent::kStepCached:
      absl::StrAppend(
          &json, ",\"kind\":\"step_cached\",\"step\":",
          StepJson(event.step_cached().step()),
          ",\"layer_digest\":", JsonQuote(event.step_cached().layer_digest()));
      break;
    case BuildEvent::kStepFinished:
      absl::StrAppend(&json, ",\"kind\":\"step_finished\",\"step\":",
                      StepJson(event.step_finished().step()),
                      ",\"duration_ms\":", event.step_finished().duration_ms(),
                      ",\"layer_digest\":",
                      JsonQuote(event.step_finished().layer_digest()));
      break;
    case BuildEvent::kLog:
      absl::StrAppend(
          &json, ",\"kind\":\"log\",\"step\":", StepJson(event.log().step()),
          ",\"stream\":",
          event.log().stream() == BuildEvent::Log::STDERR ? "\"stderr\""
                                                          : "\"stdout\"",
          ",\"text\":", JsonQuote(event.log().data()));
      break;
    case BuildEvent::kWarning:
      absl::StrAppend(&json, ",\"kind\":\"warning\",\"message\":",
                      JsonQuote(event.warning().message()),
                      ",\"step\":", StepJson(event.warning().step()));
      break;
    case BuildEvent::kBuildFinished:
      absl::StrAppend(
          &json, ",\"kind\":\"build_finished\",\"result\":",
          JsonQuote(
              longshore::v1::BuildState_Name(event.build_finished().result())),
          ",\"image_digest\":",
          JsonQuote(event.build_finished().image_digest()),
          ",\"references\":", StringsJson(event.build_finished().references()),
          ",\"duration_ms\":", event.build_finished().duration_ms());
      break;
    case BuildEvent::kError:
      absl::StrAppend(&json, ",\"kind\":\"error\",\"message\":",
                      JsonQuote(event.error().message()),
                      ",\"step\":", StepJson(event.error().step()),
                      ",\"line\":", event.error().line());
      break;
    case BuildEvent::KIND_NOT_SET:
      absl::StrAppend(&json, ",\"kind\":\"unknown\"");
      break;
  }
  json.push_back('}');
  return json;
}

std::string SseMessage(const BuildEvent& event) {
  // JSON from EventJson holds no raw newline, so one data line suffices.
  return absl::StrCat("id: ", event.sequence(),
                      "\nevent: build\ndata: ", EventJson(event), "\n\n");
}

bool EventStream::Pump(const Writer& write, absl::Duration wait,
                       absl::Duration keepalive) {
  if (stopping_ != nullptr && stopping_->load()) return false;
  absl::StatusOr<std::vector<BuildEvent>> events =
      events_->Read(build_id_, after_, kBatch);
  if (!events.ok()) {
    write(absl::StrCat("event: failure\ndata: ",
                       JsonQuote(events.status().message()), "\n\n"));
    return false;
  }
  if (!events->empty()) {
    std::string batch;
    bool finished = false;
    for (const BuildEvent& ev : *events) {
      absl::StrAppend(&batch, SseMessage(ev));
      after_ = ev.sequence();
      if (ev.has_build_finished()) finished = true;
    }
    if (!write(batch)) return false;
    last_write_ = absl::Now();
    return !finished;
  }
  absl::StatusOr<bool> finished = events_->FinishedAfter(build_id_, after_);
  if (!finished.ok() || *finished) return false;
  if (!events_->WaitForNewer(build_id_, after_, wait) &&
      absl::Now() - last_write_ >= keepalive) {
    if (!write(": keepalive\n\n")) return false;
    last_write_ = absl::Now();
  }
  return true;
}

absl::Status WriteBuildLog(EventLog* events, const std::string& build_id,
                           const EventStream::Writer& write) {
  uint64_t after = 0;
  while (true) {
    absl::StatusOr<std::vector<BuildEvent>> batch =
        events->Read(build_id, after, kBatch);
    if (!batch.ok()) return batch.status();
    if (batch->empty()) return absl::OkStatus();
    std::string text;
    for (const BuildEvent& ev : *batch) {
      after = ev.sequence();
      if (ev.has_log()) absl::StrAppend(&text, ev.log().data());
    }
    if (!text.empty() && !write(text)) return absl::OkStatus();
  }
}

}  // namespace longshore::scheduler::web
