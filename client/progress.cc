#include "client/progress.h"

#include <unistd.h>

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"

namespace longshore::client {
namespace {

using v1::BuildEvent;

std::string StepLabel(const v1::StepRef& s) {
  return absl::StrFormat("[%s%d/%d] %s",
                         s.stage().empty() ? "" : absl::StrCat(s.stage(), " "),
                         s.index(), s.total(), s.instruction());
}

// BuildKit-style plain output: "#N [i/n] INSTR", "#N 0.123 log line",
// "#N DONE 0.4s" or "#N CACHED", "#N ERROR: ...".
class PlainPrinter : public ProgressPrinter {
 public:
  explicit PlainPrinter(FILE* out) : out_(out) {}

  void OnEvent(const BuildEvent& e) override {
    switch (e.kind_case()) {
      case BuildEvent::kQueued:
        fprintf(out_, "#0 queued (position %d)\n", e.queued().position());
        break;
      case BuildEvent::kAssigned:
        fprintf(out_, "#0 building on worker %s\n",
                e.assigned().worker_id().c_str());
        break;
      case BuildEvent::kStepStarted: {
        const auto& s = e.step_started().step();
        start_ns_[s.index()] = e.time_unix_nanos();
        fprintf(out_, "\n#%d %s\n", s.index(), StepLabel(s).c_str());
        break;
      }
      case BuildEvent::kStepCached: {
        const auto& s = e.step_cached().step();
        if (!start_ns_.count(s.index())) {
          fprintf(out_, "\n#%d %s\n", s.index(), StepLabel(s).c_str());
        }
        fprintf(out_, "#%d CACHED\n", s.index());
        break;
      }
      case BuildEvent::kStepFinished: {
        const auto& f = e.step_finished();
        fprintf(out_, "#%d DONE %.1fs\n", f.step().index(),
                f.duration_ms() / 1000.0);
        break;
      }
      case BuildEvent::kLog: {
        const auto& l = e.log();
        int idx = l.step().index();
        double t = 0;
        auto it = start_ns_.find(idx);
        if (it != start_ns_.end()) {
          t = (e.time_unix_nanos() - it->second) / 1e9;
        }
        for (absl::string_view line : absl::StrSplit(l.data(), '\n')) {
          if (line.empty()) continue;
          fprintf(out_, "#%d %.3f %.*s\n", idx, t,
                  static_cast<int>(line.size()), line.data());
        }
        break;
      }
      case BuildEvent::kError: {
        const auto& err = e.error();
        if (err.step().index() > 0) {
          fprintf(out_, "#%d ERROR: %s\n", err.step().index(),
                  err.message().c_str());
        } else {
          fprintf(out_, "ERROR: %s\n", err.message().c_str());
        }
        break;
      }
      case BuildEvent::kWarning:
        fprintf(out_, "WARNING: %s\n", e.warning().message().c_str());
        break;
      case BuildEvent::kBuildFinished: {
        const auto& f = e.build_finished();
        if (f.result() == v1::SUCCEEDED) {
          fprintf(out_, "\n#done image %s (%.1fs)\n", f.image_digest().c_str(),
                  f.duration_ms() / 1000.0);
          for (const auto& r : f.references()) {
            fprintf(out_, "#done naming %s\n", r.c_str());
          }
        } else {
          fprintf(out_, "\n#done build %s\n", BuildStateName(f.result()));
        }
        break;
      }
      default:
        break;
    }
    fflush(out_);
  }

 private:
  FILE* out_;
  std::map<int, int64_t> start_ns_;
};

// Terminal output in the shape docker leaves on screen: one line per step as it
// completes, and the failing step's last log lines on error.
class TtyPrinter : public ProgressPrinter {
 public:
  explicit TtyPrinter(FILE* out) : out_(out) {}

  void OnEvent(const BuildEvent& e) override {
    switch (e.kind_case()) {
      case BuildEvent::kAssigned:
        fprintf(out_, "[+] Building on %s\n", e.assigned().worker_id().c_str());
        break;
      case BuildEvent::kStepStarted:
        current_ = e.step_started().step().index();
        logs_[current_].clear();
        break;
      case BuildEvent::kStepCached:
        fprintf(out_, " => CACHED %s\n",
                StepLabel(e.step_cached().step()).c_str());
        break;
      case BuildEvent::kStepFinished: {
        const auto& f = e.step_finished();
        fprintf(out_, " => %-60s %6.1fs\n", StepLabel(f.step()).c_str(),
                f.duration_ms() / 1000.0);
        logs_.erase(f.step().index());
        break;
      }
      case BuildEvent::kLog: {
        auto& lines = logs_[e.log().step().index()];
        for (absl::string_view line : absl::StrSplit(e.log().data(), '\n')) {
          if (line.empty()) continue;
          lines.emplace_back(line);
          if (lines.size() > 20) lines.erase(lines.begin());
        }
        break;
      }
      case BuildEvent::kError: {
        const auto& err = e.error();
        int idx = err.step().index();
        if (idx > 0) {
          fprintf(out_, " => ERROR %s\n", StepLabel(err.step()).c_str());
          for (const auto& l : logs_[idx]) {
            fprintf(out_, "    | %s\n", l.c_str());
          }
        }
        fprintf(out_, "ERROR: %s\n", err.message().c_str());
        break;
      }
      case BuildEvent::kWarning:
        fprintf(out_, "WARNING: %s\n", e.warning().message().c_str());
        break;
      case BuildEvent::kBuildFinished: {
        const auto& f = e.build_finished();
        if (f.result() == v1::SUCCEEDED) {
          fprintf(out_, " => image %s  %.1fs\n", f.image_digest().c_str(),
                  f.duration_ms() / 1000.0);
        }
        break;
      }
      default:
        break;
    }
    fflush(out_);
  }

 private:
  FILE* out_;
  int current_ = 0;
  std::map<int, std::vector<std::string>> logs_;
};

class JsonPrinter : public ProgressPrinter {
 public:
  explicit JsonPrinter(FILE* out) : out_(out) {}
  void OnEvent(const BuildEvent& e) override {
    std::string line = EventToJson(e);
    fprintf(out_, "%s\n", line.c_str());
    fflush(out_);
  }

 private:
  FILE* out_;
};

}  // namespace

const char* BuildStateName(v1::BuildState s) {
  switch (s) {
    case v1::SUCCEEDED:
      return "succeeded";
    case v1::FAILED:
      return "failed";
    case v1::CANCELLED:
      return "cancelled";
    case v1::QUEUED:
      return "queued";
    case v1::RUNNING:
      return "running";
    default:
      return "unknown";
  }
}

std::unique_ptr<ProgressPrinter> MakeProgressPrinter(ProgressMode mode,
                                                     FILE* out) {
  if (mode == ProgressMode::kAuto) {
    mode = isatty(fileno(out)) ? ProgressMode::kTty : ProgressMode::kPlain;
  }
  switch (mode) {
    case ProgressMode::kJson:
      return std::make_unique<JsonPrinter>(out);
    case ProgressMode::kTty:
      return std::make_unique<TtyPrinter>(out);
    default:
      return std::make_unique<PlainPrinter>(out);
  }
}

std::string EventToJson(const BuildEvent& e) {
  nlohmann::ordered_json j;
  const char* type = "unknown";
  const v1::StepRef* step = nullptr;
  j["type"] = nullptr;
  j["sequence"] = e.sequence();
  j["time"] = e.time_unix_nanos();
  for (const char* k : {"step", "stage", "instruction", "line", "duration_ms",
                        "layer_digest", "worker", "stream", "data",
                        "image_digest", "references", "result", "error"}) {
    j[k] = nullptr;
  }
  switch (e.kind_case()) {
    case BuildEvent::kQueued:
      type = "queued";
      break;
    case BuildEvent::kAssigned:
      type = "assigned";
      j["worker"] = e.assigned().worker_id();
      break;
    case BuildEvent::kStepStarted:
      type = "step_start";
      step = &e.step_started().step();
      break;
    case BuildEvent::kStepCached:
      type = "step_cached";
      step = &e.step_cached().step();
      j["layer_digest"] = e.step_cached().layer_digest();
      break;
    case BuildEvent::kStepFinished:
      type = "step_done";
      step = &e.step_finished().step();
      j["duration_ms"] = e.step_finished().duration_ms();
      j["layer_digest"] = e.step_finished().layer_digest();
      break;
    case BuildEvent::kLog:
      type = "log";
      step = &e.log().step();
      j["stream"] =
          e.log().stream() == BuildEvent::Log::STDERR ? "stderr" : "stdout";
      // Log bytes may not be UTF-8; replace what is not, rather than fail.
      j["data"] = e.log().data();
      break;
    case BuildEvent::kBuildFinished: {
      type = "build_done";
      const auto& f = e.build_finished();
      j["result"] = BuildStateName(f.result());
      j["image_digest"] = f.image_digest();
      j["duration_ms"] = f.duration_ms();
      j["references"] = std::vector<std::string>(f.references().begin(),
                                                 f.references().end());
      break;
    }
    case BuildEvent::kError:
      type = "error";
      j["error"] = e.error().message();
      if (e.error().step().index() > 0) step = &e.error().step();
      if (e.error().line() > 0) j["line"] = e.error().line();
      break;
    case BuildEvent::kWarning:
      type = "warning";
      j["warning"] = e.warning().message();
      if (e.warning().step().index() > 0) step = &e.warning().step();
      break;
    default:
      break;
  }
  j["type"] = type;
  if (step != nullptr) {
    j["step"] = step->index();
    j["stage"] = step->stage();
    j["instruction"] = step->instruction();
    j["line"] = step->line();
  }
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace longshore::client
