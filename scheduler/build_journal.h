// The durable record of every build: its spec, state, attempts, lease holder,
// times and result, plus the ordered event stream submitters watch and the
// outputs workers uploaded. Backed by one SQLite database; safe to call from
// any thread.
#ifndef LONGSHORE_SCHEDULER_BUILD_JOURNAL_H_
#define LONGSHORE_SCHEDULER_BUILD_JOURNAL_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/numeric/int128.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "proto/longshore.pb.h"

struct sqlite3;

namespace longshore::scheduler {

class JournalStatement;

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
  // A merged submission: the build whose execution this one shares (same
  // submitter and inputs); empty for a build that runs itself.
  std::string leader_id;
  // In memory only: dockerfile::AffinityKeys of the spec, hashed
  // (AffinityHash), computed while the Dockerfile is at hand (placement
  // prefers workers warm for them).
  std::vector<uint64_t> affinity;
  // In memory only: bytes of step output kept so far (a restart starts
  // again from 0), and whether the --max-log-bytes marker was written.
  int64_t log_bytes = 0;
  bool log_capped = false;
  // In memory only: MergedBuilds::Key of the spec with its secrets, for a
  // build that others may join; 0 otherwise.
  absl::uint128 merge_key = 0;
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
  // Opens (creating when missing) the database at `path`. `group_window`:
  // how long an ended batch's transaction stays open for later writes.
  static absl::StatusOr<std::unique_ptr<BuildJournal>> Open(
      const std::string& path,
      absl::Duration group_window = absl::Milliseconds(1));
  ~BuildJournal();
  BuildJournal(const BuildJournal&) = delete;
  BuildJournal& operator=(const BuildJournal&) = delete;

  // Group commit. While a Batch lives, every write of the thread that made it
  // goes into the open transaction, and other threads' calls wait. When the
  // outermost Batch ends the transaction stays open for the group window,
  // so the writes of the next calls (other workers' results, other submits)
  // join it; then a committer thread commits it. Any call from another
  // thread, and Sync(), commits it first, so nobody reads a write that may
  // still roll back. Batches nest. A caller that must acknowledge durably
  // (Submit) calls Sync() after its Batch, without holding its own locks, so
  // concurrent submits share a commit. Durable means WAL with
  // synchronous=NORMAL: it survives a crash of the process.
  class Batch {
   public:
    explicit Batch(BuildJournal* journal);
    ~Batch();
    Batch(const Batch&) = delete;
    Batch& operator=(const Batch&) = delete;

   private:
    BuildJournal* journal_;
  };

  // Commits whatever is written and not yet committed.
  void Sync();

  // Called with the time each batch's COMMIT took (metrics). Set before use.
  void SetCommitObserver(std::function<void(absl::Duration)> observer) {
    commit_observer_ = std::move(observer);
  }

  // Adds a new build; fills record->order. ALREADY_EXISTS for a duplicate id.
  absl::Status Insert(BuildRecord* record);
  // Overwrites every column of an existing build but its order and its spec
  // (a spec never changes after Insert, so it is not written again).
  absl::Status Update(const BuildRecord& record);
  absl::StatusOr<BuildRecord> Get(const std::string& id);
  // Only the spec of a build.
  absl::StatusOr<longshore::v1::BuildSpec> GetSpec(const std::string& id);
  // Builds in `states` (all when empty), newest first, at most `limit` (all
  // when <=0); only `submitter`'s when it is not empty.
  absl::StatusOr<std::vector<BuildRecord>> List(
      const std::vector<longshore::v1::BuildState>& states, int limit,
      const std::string& submitter = "", int64_t since_ns = 0);
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

  // For storage quotas: every build's (id, submitter), and the bytes of
  // stored outputs per submitter.
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>>
  BuildSubmitters();
  absl::StatusOr<std::vector<std::pair<std::string, int64_t>>>
  OutputBytesBySubmitter();

  // Workers an operator drained; the flag outlives connections and restarts.
  absl::Status SetWorkerDrained(const std::string& worker_id, bool drained);
  absl::StatusOr<std::vector<std::string>> DrainedWorkers();

 private:
  // Holds mu_ for one call, unless this thread's Batch already holds it.
  class Access;

  BuildJournal(sqlite3* db, absl::Duration group_window);
  absl::Status Exec(const char* sql);
  absl::Status Init();
  // Fills the submitter column of rows written before it existed.
  absl::Status BackfillSubmitters();
  // The prepared statement for `sql` (a string that outlives the journal),
  // prepared on first use and reset before it is handed out again.
  absl::StatusOr<JournalStatement*> Prepared(const char* sql);
  void BeginBatch();
  void EndBatch();
  // COMMIT of the open transaction, if any. mu_ held.
  void CommitOpenLocked();
  void CommitLoop();

  // mu_ serializes every use of db_ and of prepared_. It is taken per call,
  // or for a whole Batch by the thread in batch_owner_.
  absl::Mutex mu_;
  std::atomic<std::thread::id> batch_owner_{};
  int batch_depth_ = 0;  // Only touched by batch_owner_.
  bool open_ = false;    // A transaction is open (BEGIN without COMMIT).
  bool stop_ = false;
  const absl::Duration group_window_;
  std::thread committer_;
  sqlite3* db_;
  absl::flat_hash_map<const char*, std::unique_ptr<JournalStatement>> prepared_;
  std::function<void(absl::Duration)> commit_observer_;
};

}  // namespace longshore::scheduler

#endif  // LONGSHORE_SCHEDULER_BUILD_JOURNAL_H_
