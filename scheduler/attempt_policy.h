// What happens to a running build whose attempt ended without a result from its
// worker (the worker's stream ended, it missed its heartbeats, or the scheduler
// restarted): queued again for another attempt, up to a bound, then failed.
#ifndef LONGSHORE_SCHEDULER_ATTEMPT_POLICY_H_
#define LONGSHORE_SCHEDULER_ATTEMPT_POLICY_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "scheduler/build_journal.h"

namespace longshore::scheduler {

inline constexpr int kDefaultMaxAttempts = 3;

// The cancel reason the scheduler records when a build runs past its timeout.
// A build stopped for it ends FAILED with that reason, not CANCELLED.
inline constexpr absl::string_view kTimeoutReasonPrefix = "timeout: ";

// "cancelled: REASON", or "cancelled: requested by client" without one.
std::string CancelledError(absl::string_view reason);

// The final state and error of a build whose cancel was requested, by a
// client (CANCELLED, "cancelled: REASON") or by its timeout (FAILED, the
// reason without its prefix).
struct StoppedOutcome {
  longshore::v1::BuildState state;
  std::string error;
};
StoppedOutcome StopOutcome(const BuildRecord& build);

enum class InterruptOutcome {
  kRequeued,   // QUEUED again with attempt + 1.
  kFailed,     // FAILED: the attempt was the last one allowed.
  kCancelled,  // CANCELLED: a cancel was pending, so nothing runs again.
};

// Updates a RUNNING `build` in memory (the caller persists it): clears its
// worker and sets state, attempt, queued_ns or finished_ns and error. `cause`
// says why the attempt ended ("worker w1 missed its heartbeats") and ends up in
// the error.
InterruptOutcome InterruptAttempt(BuildRecord* build, int max_attempts,
                                  int64_t now_ns, absl::string_view cause);

}  // namespace longshore::scheduler

#endif  // LONGSHORE_SCHEDULER_ATTEMPT_POLICY_H_
