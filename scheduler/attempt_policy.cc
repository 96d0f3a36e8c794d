#include "scheduler/attempt_policy.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace longshore::scheduler {

std::string CancelledError(absl::string_view reason) {
  return absl::StrCat("cancelled: ",
                      reason.empty() ? "requested by client" : reason);
}

StoppedOutcome StopOutcome(const BuildRecord& build) {
  if (absl::StartsWith(build.cancel_reason, kTimeoutReasonPrefix)) {
    return {longshore::v1::FAILED,
            build.cancel_reason.substr(kTimeoutReasonPrefix.size())};
  }
  return {longshore::v1::CANCELLED, CancelledError(build.cancel_reason)};
}

InterruptOutcome InterruptAttempt(BuildRecord* build, int max_attempts,
                                  int64_t now_ns, absl::string_view cause) {
  build->worker_id.clear();
  if (build->cancel_requested) {
    StoppedOutcome stopped = StopOutcome(*build);
    build->state = stopped.state;
    build->finished_ns = now_ns;
    build->error = stopped.error;
    return InterruptOutcome::kCancelled;
  }
  if (build->attempt >= max_attempts) {
    build->state = longshore::v1::FAILED;
    build->finished_ns = now_ns;
    build->error = absl::StrCat("build gave up after ", build->attempt,
                                " attempts (limit ", max_attempts,
                                "): the last attempt ended because ", cause);
    return InterruptOutcome::kFailed;
  }
  build->state = longshore::v1::QUEUED;
  build->attempt += 1;
  build->queued_ns = now_ns;
  build->started_ns = 0;
  return InterruptOutcome::kRequeued;
}

}  // namespace longshore::scheduler
