#include "client/live_view.h"

#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace longshore::client {
namespace {

int64_t NowNs() {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

std::string Seconds(int64_t ns) {
  if (ns < 0) ns = 0;
  return absl::StrFormat("%.1fs", static_cast<double>(ns) / 1e9);
}

// UTF-8 display columns of `s` (continuation bytes take none).
int Columns(const std::string& s) {
  int n = 0;
  for (unsigned char c : s) {
    if ((c & 0xC0) != 0x80) ++n;
  }
  return n;
}

// "LEFT ... RIGHT" in exactly `width` columns when it fits; LEFT is cut first.
std::string WithRight(const std::string& left, const std::string& right,
                      int width) {
  const int r = Columns(right);
  if (width <= r + 1) return FitWidth(right, width);
  std::string l = FitWidth(left, width - r - 1);
  return absl::StrCat(l, std::string(width - r - Columns(l), ' '), right);
}

}  // namespace

std::string LiveStepLabel(const v1::StepRef& s) {
  return absl::StrFormat("[%s%d/%d] %s",
                         s.stage().empty() ? "" : absl::StrCat(s.stage(), " "),
                         s.index(), s.total(), s.instruction());
}

std::string FitWidth(const std::string& text, int width) {
  std::string out;
  int cols = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == '\t') {
      if (cols + 1 > width) break;
      out.push_back(' ');
      ++cols;
      continue;
    }
    if (c < 0x20 || c == 0x7f) continue;  // no escape reaches the terminal
    if ((c & 0xC0) == 0x80) {             // continues the last character
      if (!out.empty()) out.push_back(static_cast<char>(c));
      continue;
    }
    if (cols + 1 > width) break;
    out.push_back(static_cast<char>(c));
    ++cols;
  }
  // A character cut after its first byte would print as garbage.
  size_t end = out.size();
  while (end > 0 && (static_cast<unsigned char>(out[end - 1]) & 0xC0) == 0x80) {
    --end;
  }
  if (end > 0 && static_cast<unsigned char>(out[end - 1]) >= 0xC0) {
    unsigned char lead = static_cast<unsigned char>(out[end - 1]);
    size_t want = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
    if (out.size() - (end - 1) < want) out.resize(end - 1);
  }
  return out;
}

std::vector<std::string> LiveState::Apply(const v1::BuildEvent& e) {
  std::vector<std::string> lines;
  if (first_ns_ == 0) first_ns_ = e.time_unix_nanos();
  switch (e.kind_case()) {
    case v1::BuildEvent::kQueued:
      queued_position_ = e.queued().position();
      break;
    case v1::BuildEvent::kAssigned:
      worker_ = e.assigned().worker_id();
      queued_position_ = 0;
      break;
    case v1::BuildEvent::kStepStarted: {
      const v1::StepRef& ref = e.step_started().step();
      total_ = std::max(total_, ref.total());
      Step& s = running_[ref.index()];
      s.ref = ref;
      s.started_ns = e.time_unix_nanos();
      break;
    }
    case v1::BuildEvent::kStepCached: {
      const v1::StepRef& ref = e.step_cached().step();
      total_ = std::max(total_, ref.total());
      running_.erase(ref.index());
      ++done_;
      ++cached_;
      lines.push_back(absl::StrCat(" => CACHED ", LiveStepLabel(ref)));
      break;
    }
    case v1::BuildEvent::kStepFinished: {
      const auto& f = e.step_finished();
      total_ = std::max(total_, f.step().total());
      running_.erase(f.step().index());
      ++done_;
      ++run_;
      lines.push_back(
          absl::StrCat(" => ", LiveStepLabel(f.step()), "\t",
                       Seconds(int64_t{f.duration_ms()} * 1000000)));
      break;
    }
    case v1::BuildEvent::kLog: {
      auto it = running_.find(e.log().step().index());
      if (it == running_.end()) break;
      Step& s = it->second;
      std::string data = s.partial + e.log().data();
      size_t start = 0;
      for (size_t nl; (nl = data.find('\n', start)) != std::string::npos;
           start = nl + 1) {
        std::string line = data.substr(start, nl - start);
        // A progress bar redrawn with \r: what the line shows last.
        size_t cr = line.rfind('\r');
        if (cr != std::string::npos) line = line.substr(cr + 1);
        s.tail.push_back(std::move(line));
        if (s.tail.size() > kTailLines) s.tail.erase(s.tail.begin());
      }
      s.partial = data.substr(start);
      if (s.partial.size() > 4096) s.partial.erase(0, s.partial.size() - 4096);
      break;
    }
    case v1::BuildEvent::kError: {
      const auto& err = e.error();
      int idx = err.step().index();
      if (idx > 0) {
        lines.push_back(absl::StrCat(" => ERROR ", LiveStepLabel(err.step())));
        auto it = running_.find(idx);
        if (it != running_.end()) {
          for (const auto& l : it->second.tail) lines.push_back("    | " + l);
          if (!it->second.partial.empty()) {
            lines.push_back("    | " + it->second.partial);
          }
          running_.erase(it);
        }
      }
      lines.push_back(absl::StrCat("ERROR: ", err.message()));
      break;
    }
    case v1::BuildEvent::kWarning:
      lines.push_back(absl::StrCat("WARNING: ", e.warning().message()));
      break;
    case v1::BuildEvent::kBuildFinished:
      finished_ = true;
      result_ = e.build_finished();
      running_.clear();
      break;
    default:
      break;
  }
  return lines;
}

std::vector<std::string> LiveState::Frame(int64_t now_ns, int width,
                                          int height) const {
  std::vector<std::string> out;
  if (width < 10 || height < 2) return out;
  std::string status = queued_position_ > 0
                           ? absl::StrCat("queued, position ", queued_position_)
                       : worker_.empty() ? "waiting for a worker"
                                         : absl::StrCat("on ", worker_);
  out.push_back(
      WithRight(absl::StrCat("[+] Building ", Seconds(now_ns - first_ns_), " (",
                             done_, "/", total_, ") ", status),
                "", width));
  if (running_.empty()) return out;
  // Steps of different stages running at once stand side by side when each
  // column can be 40 wide; otherwise one under the other.
  const int n = static_cast<int>(running_.size());
  const int columns = std::min(n, std::max(1, width / 40));
  std::vector<std::vector<std::string>> blocks;
  const int col_width =
      columns > 1 ? (width - (columns - 1) * 3) / columns : width;
  for (const auto& [idx, s] : running_) {
    std::vector<std::string> b;
    b.push_back(WithRight(absl::StrCat(" => ", LiveStepLabel(s.ref)),
                          Seconds(now_ns - s.started_ns), col_width));
    std::vector<std::string> tail = s.tail;
    if (!s.partial.empty()) {
      std::string p = s.partial;
      size_t cr = p.rfind('\r');
      if (cr != std::string::npos) p = p.substr(cr + 1);
      tail.push_back(p);
    }
    if (tail.size() > kTailLines) tail.erase(tail.begin());
    for (const auto& l : tail) {
      b.push_back(FitWidth(absl::StrCat(" => => # ", l), col_width));
    }
    blocks.push_back(std::move(b));
  }
  for (size_t first = 0; first < blocks.size(); first += columns) {
    size_t last = std::min(blocks.size(), first + columns);
    size_t rows = 0;
    for (size_t i = first; i < last; ++i)
      rows = std::max(rows, blocks[i].size());
    for (size_t r = 0; r < rows; ++r) {
      std::string line;
      for (size_t i = first; i < last; ++i) {
        std::string cell = r < blocks[i].size() ? blocks[i][r] : "";
        if (i + 1 < last) {
          cell += std::string(col_width - Columns(cell), ' ');
          cell += " | ";
        }
        line += cell;
      }
      out.push_back(FitWidth(line, width));
    }
  }
  if (static_cast<int>(out.size()) > height) {
    out.resize(height - 1);
    out.push_back(
        FitWidth(" => ... (more running than the terminal shows)", width));
  }
  return out;
}

std::vector<std::string> LiveState::Summary(
    const std::vector<std::string>& outputs) const {
  std::vector<std::string> out;
  const std::string took = Seconds(int64_t{result_.duration_ms()} * 1000000);
  if (result_.result() != v1::SUCCEEDED) {
    out.push_back(absl::StrCat("[+] Build ", BuildStateName(result_.result()),
                               " after ", took, ": ", run_, " steps run, ",
                               cached_, " cached"));
    return out;
  }
  out.push_back(absl::StrCat("[+] Built in ", took, ": ", run_, " steps run, ",
                             cached_, " cached",
                             worker_.empty() ? "" : " on " + worker_));
  out.push_back(absl::StrCat(" => image ", result_.image_digest()));
  for (const auto& r : result_.references()) {
    out.push_back(absl::StrCat(" => naming ", r));
  }
  for (const auto& o : outputs) out.push_back(absl::StrCat(" => ", o));
  return out;
}

LiveView::LiveView(FILE* out, LiveViewOptions opts)
    : out_(out), opts_(std::move(opts)) {
  ticker_ = std::thread([this] { Tick(); });
}

LiveView::~LiveView() {
  {
    absl::MutexLock l(&mu_);
    stop_ = true;
  }
  ticker_.join();
  absl::MutexLock l(&mu_);
  EraseLocked();
  fflush(out_);
}

void LiveView::TerminalSize(int* width, int* height) const {
  struct winsize ws = {};
  if (ioctl(fileno(out_), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) {
    *width = ws.ws_col;
    *height = ws.ws_row > 0 ? ws.ws_row : 24;
  } else {
    *width = 80;
    *height = 24;
  }
}

void LiveView::EraseLocked() {
  if (drawn_lines_ > 0) {
    // Up to the frame's first line, then clear to the end of the screen.
    fprintf(out_, "\x1b[%dA\r\x1b[J", drawn_lines_);
    drawn_lines_ = 0;
  }
}

void LiveView::RedrawLocked(int64_t now_ns) {
  int width = 80, height = 24;
  TerminalSize(&width, &height);
  if (drawn_width_ != 0 && width != drawn_width_) {
    // After a resize the terminal may have rewrapped the last frame, so
    // counting lines back up is no longer safe: clear the screen and start
    // the frame at its top (finished steps stay in the scrollback).
    fputs("\x1b[H\x1b[2J", out_);
    drawn_lines_ = 0;
  }
  drawn_width_ = width;
  EraseLocked();
  // One column spare: a line filling the last column would wrap on some
  // terminals.
  std::vector<std::string> frame =
      state_.Frame(now_ns, width - 1, std::max(2, height - 2));
  for (const auto& line : frame) fprintf(out_, "%s\x1b[K\n", line.c_str());
  drawn_lines_ = static_cast<int>(frame.size());
  fflush(out_);
}

void LiveView::OnEvent(const v1::BuildEvent& event) {
  absl::MutexLock l(&mu_);
  std::vector<std::string> lines = state_.Apply(event);
  int width = 80, height = 24;
  TerminalSize(&width, &height);
  if (!lines.empty() || state_.finished()) {
    EraseLocked();
    for (const auto& line : lines) {
      // "LABEL\tTIME": the time at the right edge, as BuildKit aligns it.
      size_t tab = line.find('\t');
      std::string shown =
          tab == std::string::npos
              ? FitWidth(line, width - 1)
              : WithRight(line.substr(0, tab), line.substr(tab + 1), width - 1);
      fprintf(out_, "%s\x1b[K\n", shown.c_str());
    }
  }
  if (state_.finished()) {
    stop_ = true;
    for (const auto& line : state_.Summary(opts_.outputs)) {
      fprintf(out_, "%s\n", FitWidth(line, width - 1).c_str());
    }
    fflush(out_);
    return;
  }
  RedrawLocked(event.time_unix_nanos() > 0
                   ? std::max(event.time_unix_nanos(), NowNs())
                   : NowNs());
}

void LiveView::Tick() {
  const auto period = std::chrono::milliseconds(1000 / std::max(1, opts_.fps));
  for (;;) {
    std::this_thread::sleep_for(period);
    absl::MutexLock l(&mu_);
    if (stop_) return;
    RedrawLocked(NowNs());
  }
}

}  // namespace longshore::client
