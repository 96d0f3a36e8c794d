// The live terminal view of a build (`--progress=tty`, the default on a
// terminal), shaped like BuildKit's: a header with the build's clock, every
// running step with its ticking timer and the last lines of its output,
// parallel stages side by side; finished steps (DONE with their time, CACHED,
// ERROR) scroll above it as permanent lines; a summary at the end.
//
// The frame is a pure function of the state, the clock and the terminal's
// size (LiveFrame), so it is tested without a terminal; LiveView draws it.
#ifndef LONGSHORE_CLIENT_LIVE_VIEW_H_
#define LONGSHORE_CLIENT_LIVE_VIEW_H_

#include <stdio.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "client/progress.h"
#include "proto/longshore.pb.h"

namespace longshore::client {

// What the view knows of a build, fed by its events.
class LiveState {
 public:
  static constexpr int kTailLines = 6;

  struct Step {
    v1::StepRef ref;
    int64_t started_ns = 0;
    std::vector<std::string> tail;  // last kTailLines complete lines
    std::string partial;            // output after the last newline
  };

  // Applies `e`; returns the permanent lines it produces (a finished, cached
  // or failed step; a warning; an error), without terminal codes.
  std::vector<std::string> Apply(const v1::BuildEvent& e);

  // The live part: header and running steps, each line at most `width`
  // columns, at most `height` lines. `now_ns` drives the timers.
  std::vector<std::string> Frame(int64_t now_ns, int width, int height) const;

  // The closing lines: result, steps run and cached, time, image digest,
  // names, and where each of `outputs` goes.
  std::vector<std::string> Summary(
      const std::vector<std::string>& outputs) const;

  bool finished() const { return finished_; }

 private:
  int64_t first_ns_ = 0;
  std::string worker_;
  int queued_position_ = 0;
  int total_ = 0;
  int done_ = 0;
  int run_ = 0;
  int cached_ = 0;
  std::map<int, Step> running_;  // by step index
  bool finished_ = false;
  v1::BuildEvent::BuildFinished result_;
};

// "[stage 2/5] RUN make", as BuildKit labels a step.
std::string LiveStepLabel(const v1::StepRef& s);

// `text` cut to `width` terminal columns (UTF-8 aware; control characters
// dropped, tabs as spaces).
std::string FitWidth(const std::string& text, int width);

struct LiveViewOptions {
  // Where the outputs go, for the summary ("filesystem to /x/out").
  std::vector<std::string> outputs;
  // Redraws per second while something runs.
  int fps = 10;
};

class LiveView : public ProgressPrinter {
 public:
  // `out` must be a terminal (its size is read on every redraw).
  LiveView(FILE* out, LiveViewOptions opts);
  ~LiveView() override;

  void OnEvent(const v1::BuildEvent& event) override;

 private:
  void Tick();
  void RedrawLocked(int64_t now_ns) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EraseLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void TerminalSize(int* width, int* height) const;

  FILE* out_;
  LiveViewOptions opts_;
  absl::Mutex mu_;
  LiveState state_ ABSL_GUARDED_BY(mu_);
  int drawn_lines_ ABSL_GUARDED_BY(mu_) = 0;
  int drawn_width_ ABSL_GUARDED_BY(mu_) = 0;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread ticker_;
};

}  // namespace longshore::client

#endif  // LONGSHORE_CLIENT_LIVE_VIEW_H_
