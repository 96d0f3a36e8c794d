// A build's events as server-sent events (text/event-stream) for the web
// page: every event after a sequence number, then new ones as they are
// appended, until the build finishes, the client goes away or the server
// stops. Each message's id is the event's sequence, so a browser that
// reconnects (Last-Event-ID) resumes where it was.
#ifndef LONGSHORE_SCHEDULER_WEB_EVENT_STREAM_H_
#define LONGSHORE_SCHEDULER_WEB_EVENT_STREAM_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "proto/longshore.pb.h"
#include "scheduler/event_log.h"

namespace longshore::scheduler::web {

// One event as JSON: {"seq", "time_ms", "kind", "step": {...}, ...}; log data
// as text (invalid UTF-8 replaced). Journal-only fields are never included.
std::string EventJson(const longshore::v1::BuildEvent& event);

// One SSE message: "id: SEQ\nevent: build\ndata: JSON\n\n".
std::string SseMessage(const longshore::v1::BuildEvent& event);

// Writes a build's events to a client. `write` sends bytes and returns false
// once the client is gone.
class EventStream {
 public:
  using Writer = std::function<bool(absl::string_view)>;

  EventStream(EventLog* events, std::string build_id, uint64_t after_sequence,
              const std::atomic<bool>* stopping)
      : events_(events),
        build_id_(std::move(build_id)),
        after_(after_sequence),
        stopping_(stopping) {}

  // Sends what is there, or waits up to `wait` for more (sending a comment
  // line when `keepalive` passed since the last write, so a gone client is
  // noticed). Returns false when the stream is over: the build finished and
  // everything was sent, the client went away, the server is stopping, or
  // reading failed (then an "error" event says why).
  bool Pump(const Writer& write, absl::Duration wait = absl::Seconds(1),
            absl::Duration keepalive = absl::Seconds(15));

  uint64_t after_sequence() const { return after_; }

 private:
  EventLog* const events_;
  const std::string build_id_;
  uint64_t after_;
  const std::atomic<bool>* const stopping_;
  absl::Time last_write_ = absl::Now();
};

// The build's step output (every log event's bytes, in order), fed to `write`
// in pieces; stops early when `write` returns false.
absl::Status WriteBuildLog(EventLog* events, const std::string& build_id,
                           const EventStream::Writer& write);

}  // namespace longshore::scheduler::web

#endif  // LONGSHORE_SCHEDULER_WEB_EVENT_STREAM_H_
