// Per-build event streams: assigns sequence numbers and times, persists every
// event in the journal before anyone sees it, and wakes watchers waiting for
// newer events. With a log directory, step output goes to an append-only
// file per build (DIR/ID.log) and the journal row keeps only its place in
// it, so noisy steps do not bloat the journal. Watchers read from the journal,
// so a watcher that joins late, or reconnects after a scheduler restart, sees
// exactly the events after the sequence it names.
#ifndef LONGSHORE_SCHEDULER_EVENT_LOG_H_
#define LONGSHORE_SCHEDULER_EVENT_LOG_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/node_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "proto/longshore.pb.h"
#include "scheduler/build_journal.h"

namespace longshore::scheduler {

class EventLog {
 public:
  explicit EventLog(BuildJournal* journal,
                    std::function<absl::Time()> clock = absl::Now)
      : journal_(journal), clock_(std::move(clock)) {}

  // Step output from now on goes to DIR/ID.log (created 0700 if missing).
  absl::Status SetLogDir(const std::string& dir);
  // The path of a build's log file; empty without a log directory.
  std::string LogPath(const std::string& build_id) const;

  // Sets sequence (last + 1) and time on `event`, stores it and wakes watchers.
  // Returns the stored event.
  absl::StatusOr<longshore::v1::BuildEvent> Append(
      const std::string& build_id, longshore::v1::BuildEvent event);

  // Events after `after_sequence`, oldest first, at most `limit`.
  absl::StatusOr<std::vector<longshore::v1::BuildEvent>> Read(
      const std::string& build_id, uint64_t after_sequence, int limit);

  // True when the build's stream is closed (its last event is build_finished)
  // and nothing follows `after_sequence`: a watcher at that point is done.
  absl::StatusOr<bool> FinishedAfter(const std::string& build_id,
                                     uint64_t after_sequence);

  // Blocks until the build has an event after `after_sequence`, or `timeout`
  // passes. Returns whether such an event exists.
  bool WaitForNewer(const std::string& build_id, uint64_t after_sequence,
                    absl::Duration timeout);

  // Wakes every waiter (used at shutdown so watchers notice promptly).
  void WakeAll();

  // Drops what is cached of these builds' streams (retention removed them
  // from the journal), removes their log files, and wakes their waiters.
  void Forget(const std::vector<std::string>& build_ids);

 private:
  struct StreamState {
    uint64_t last_sequence = 0;
    bool finished = false;
  };
  // Loads a build's last sequence from the journal on first use (releasing
  // mu_ meanwhile, so earlier StreamState pointers must be looked up again).
  absl::StatusOr<StreamState*> StateLocked(const std::string& build_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Appends `data` to the build's log file; returns the offset it starts at.
  absl::StatusOr<int64_t> AppendToLogFileLocked(const std::string& build_id,
                                                absl::string_view data)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  BuildJournal* journal_;
  std::function<absl::Time()> clock_;
  std::string log_dir_;  // Set once, before use.
  absl::Mutex mu_;
  // Node map: StateLocked hands out pointers that must survive later inserts.
  absl::node_hash_map<std::string, StreamState> streams_ ABSL_GUARDED_BY(mu_);
  // Bumped by WakeAll and Forget; an Append wakes only its build's waiters.
  uint64_t wake_generation_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace longshore::scheduler

#endif  // LONGSHORE_SCHEDULER_EVENT_LOG_H_
