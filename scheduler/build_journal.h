// The durable record of every build: its spec, state, attempts, lease holder,
// times and result, plus the ordered event stream submitters watch and the
// outputs workers uploaded. Backed by one SQLite database; safe to call from
// any thread.
#ifndef LONGSHORE_SCHEDULER_BUILD_JOURNAL_H_
#define LONGSHORE_SCHEDULER_BUILD_JOURNAL_H_

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "proto/longshore.pb.h"

struct sqlite3;

namespace longshore::scheduler {

// One row of the builds table. `attempt` is the attempt the build runs
// (RUNNING) or will run next (QUEUED): 1 at submission, +1 each time it is
// queued again after losing its worker. Times are Unix nanoseconds, 0 when not
// reached.
struct BuildRecord {
  std::string id;
  longshore::v1::BuildSpec spec;
  longshore::v1::BuildState state = longshore::v1::QUEUED;
  int attempt = 1;
  std::string worker_id;
  bool cancel_requested = false;
  std::string cancel_reason;
  int64_t created_ns = 0;
  int64_t queued_ns = 0;   // When it last entered the queue.
  int64_t started_ns = 0;  // When its current or last attempt was leased.
  int64_t finished_ns = 0;
  std::string image_digest;
  std::string error;
  longshore::v1::BuildResult result;
  // Submission order, assigned by Insert; the queue is FIFO over it.
  int64_t order = 0;
};

// An output file a worker uploaded for one attempt of a build.
struct OutputRecord {
  int index = 0;
  int attempt = 0;
  std::string digest;
  int64_t size = 0;
};

class BuildJournal {
 public:
  // Opens (creating when missing) the database at `path`.
  static absl::StatusOr<std::unique_ptr<BuildJournal>> Open(
      const std::string& path);
  ~BuildJournal();
  BuildJournal(const BuildJournal&) = delete;
  BuildJournal& operator=(const BuildJournal&) = delete;

  // Adds a new build; fills record->order. ALREADY_EXISTS for a duplicate id.
  absl::Status Insert(BuildRecord* record);
  // Overwrites every column of an existing build but its order.
  absl::Status Update(const BuildRecord& record);
  absl::StatusOr<BuildRecord> Get(const std::string& id);
  // Builds in `states` (all when empty), newest first, at most `limit` (all
  // when <=0).
  absl::StatusOr<std::vector<BuildRecord>> List(
      const std::vector<longshore::v1::BuildState>& states, int limit);
  // QUEUED and RUNNING builds in submission order.
  absl::StatusOr<std::vector<BuildRecord>> ListActive();

  // Stores an event whose sequence and time are already set. ALREADY_EXISTS
  // when the sequence is taken.
  absl::Status AppendEvent(const std::string& build_id,
                           const longshore::v1::BuildEvent& event);
  // Events with sequence > after_sequence, in order, at most `limit`.
  absl::StatusOr<std::vector<longshore::v1::BuildEvent>> ReadEvents(
      const std::string& build_id, uint64_t after_sequence, int limit);
  // The last event of a build, or NOT_FOUND when it has none.
  absl::StatusOr<longshore::v1::BuildEvent> LastEvent(
      const std::string& build_id);

  // Records (replacing) the output `index` of a build.
  absl::Status PutOutput(const std::string& build_id,
                         const OutputRecord& output);
  absl::StatusOr<std::vector<OutputRecord>> ListOutputs(
      const std::string& build_id);

  // Retention. Up to `limit` builds that finished (SUCCEEDED, FAILED or
  // CANCELLED) before `finished_before_ns`, oldest first.
  absl::StatusOr<std::vector<std::string>> FinishedBefore(
      int64_t finished_before_ns, int limit);
  // Removes the builds with their events and outputs, in one transaction.
  absl::Status DeleteBuilds(const std::vector<std::string>& ids);
  // The context digests of every build still in the journal.
  absl::StatusOr<std::set<std::string>> ContextDigestsInUse();

 private:
  explicit BuildJournal(sqlite3* db) : db_(db) {}
  absl::Status Exec(const char* sql) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Init() ABSL_LOCKS_EXCLUDED(mu_);

  absl::Mutex mu_;
  sqlite3* db_ ABSL_GUARDED_BY(mu_);
};

}  // namespace longshore::scheduler

#endif  // LONGSHORE_SCHEDULER_BUILD_JOURNAL_H_
