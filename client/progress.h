// Renders a build's event stream for the submitter, as `docker build
// --progress`.
#ifndef LONGSHORE_CLIENT_PROGRESS_H_
#define LONGSHORE_CLIENT_PROGRESS_H_

#include <stdio.h>

#include <map>
#include <memory>
#include <string>

#include "client/build_flags.h"
#include "proto/longshore.pb.h"

namespace longshore::client {

class ProgressPrinter {
 public:
  virtual ~ProgressPrinter() = default;
  virtual void OnEvent(const v1::BuildEvent& event) = 0;
};

// kAuto picks tty when `out` is a terminal and plain otherwise.
std::unique_ptr<ProgressPrinter> MakeProgressPrinter(ProgressMode mode,
                                                     FILE* out);

// "queued", "running", "succeeded", "failed", "cancelled" or "unknown".
const char* BuildStateName(v1::BuildState state);

// One JSON object (a single line, no trailing newline) for `event`, with the
// keys type, sequence, time, step, stage, instruction, line, duration_ms,
// layer_digest, worker, stream, data, image_digest, references, result, error —
// null where an event has no such field.
std::string EventToJson(const v1::BuildEvent& event);

}  // namespace longshore::client

#endif  // LONGSHORE_CLIENT_PROGRESS_H_
