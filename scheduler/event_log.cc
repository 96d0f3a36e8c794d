#include "scheduler/event_log.h"

#include "common/status_macros.h"

namespace longshore::scheduler {

using longshore::v1::BuildEvent;

absl::StatusOr<EventLog::StreamState*> EventLog::StateLocked(
    const std::string& build_id) {
  auto it = streams_.find(build_id);
  if (it != streams_.end()) return &it->second;
  // The journal is read without mu_: the thread that holds the journal for a
  // batch may be waiting for mu_ to append (lock order: journal, then log).
  mu_.Unlock();
  absl::StatusOr<BuildEvent> last = journal_->LastEvent(build_id);
  mu_.Lock();
  it = streams_.find(build_id);
  if (it != streams_.end()) return &it->second;  // Appended meanwhile.
  StreamState state;
  if (last.ok()) {
    state.last_sequence = last->sequence();
    state.finished = last->has_build_finished();
  } else if (!absl::IsNotFound(last.status())) {
    return last.status();
  }
  return &streams_.emplace(build_id, state).first->second;
}

absl::StatusOr<BuildEvent> EventLog::Append(const std::string& build_id,
                                            BuildEvent event) {
  // The journal first, then mu_: nobody holds mu_ while waiting for the
  // journal (StateLocked lets go of it), so this order cannot deadlock.
  BuildJournal::Batch batch(journal_);
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(StreamState * state, StateLocked(build_id));
  event.set_sequence(state->last_sequence + 1);
  event.set_time_unix_nanos(absl::ToUnixNanos(clock_()));
  RETURN_IF_ERROR(journal_->AppendEvent(build_id, event));
  state->last_sequence = event.sequence();
  state->finished = event.has_build_finished();
  // Waiters are woken by their own condition (their build's sequence moved),
  // evaluated as mu_ is released: watchers of other builds stay asleep.
  return event;
}

absl::StatusOr<std::vector<BuildEvent>> EventLog::Read(
    const std::string& build_id, uint64_t after_sequence, int limit) {
  return journal_->ReadEvents(build_id, after_sequence, limit);
}

absl::StatusOr<bool> EventLog::FinishedAfter(const std::string& build_id,
                                             uint64_t after_sequence) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(StreamState * state, StateLocked(build_id));
  return state->finished && state->last_sequence <= after_sequence;
}

bool EventLog::WaitForNewer(const std::string& build_id,
                            uint64_t after_sequence, absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<StreamState*> state = StateLocked(build_id);
  if (!state.ok()) return false;
  if ((*state)->last_sequence > after_sequence) return true;
  const uint64_t generation = wake_generation_;
  auto newer = [this, &build_id, after_sequence,
                generation]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (wake_generation_ != generation) return true;
    auto it = streams_.find(build_id);
    return it == streams_.end() || it->second.last_sequence > after_sequence;
  };
  mu_.AwaitWithTimeout(absl::Condition(&newer), timeout);
  // Forget may have dropped the stream while the lock was released.
  absl::StatusOr<StreamState*> now = StateLocked(build_id);
  return now.ok() && (*now)->last_sequence > after_sequence;
}

void EventLog::WakeAll() {
  absl::MutexLock lock(&mu_);
  ++wake_generation_;
}

void EventLog::Forget(const std::vector<std::string>& build_ids) {
  absl::MutexLock lock(&mu_);
  for (const std::string& id : build_ids) streams_.erase(id);
  ++wake_generation_;
}

}  // namespace longshore::scheduler
