// The scheduler's state machine: builds move QUEUED -> RUNNING -> SUCCEEDED |
// FAILED | CANCELLED, leases go to workers with free slots, worker events are
// relayed, results and interrupted attempts are recorded. Every change is
// written to the journal before it is acted on. One mutex serializes it all;
// gRPC handlers call in and return.
#ifndef LONGSHORE_SCHEDULER_BUILD_COORDINATOR_H_
#define LONGSHORE_SCHEDULER_BUILD_COORDINATOR_H_

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/container/node_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "proto/longshore.pb.h"
#include "scheduler/attempt_policy.h"
#include "scheduler/authorization.h"
#include "scheduler/blob_store.h"
#include "scheduler/build_journal.h"
#include "scheduler/build_queue.h"
#include "scheduler/event_log.h"
#include "scheduler/merged_builds.h"
#include "scheduler/placement.h"
#include "scheduler/scheduler_metrics.h"
#include "scheduler/secret_sealer.h"
#include "scheduler/storage_quota.h"
#include "scheduler/worker_registry.h"

namespace longshore::scheduler {

struct CoordinatorOptions {
  int max_attempts = kDefaultMaxAttempts;
  // Workers are told to heartbeat this often...
  absl::Duration heartbeat_interval = absl::Seconds(2);
  // ...and lose their leases after this many intervals without one.
  int missed_heartbeats_allowed = 3;
  // Disconnected workers stay listed (and keep their drain flag) this long.
  absl::Duration forget_workers_after = absl::Hours(1);
  // Queued builds allowed in all and per submitter; 0: no limit. Past them
  // Submit fails with RESOURCE_EXHAUSTED; nothing accepted is ever dropped.
  int64_t max_queued = 0;
  int64_t max_queued_per_submitter = 0;
  // A build whose worker's stream ended (or that was running when the
  // scheduler restarted) waits this long for its worker to reconnect and
  // report it held, before it is queued again with its next attempt.
  absl::Duration reattach_grace = absl::Seconds(20);
  // A build whose current attempt runs longer than its timeout (the spec's
  // timeout_seconds, else this default) is stopped and fails saying so.
  absl::Duration build_timeout = absl::Hours(3);
  // The largest timeout a build may ask for.
  absl::Duration max_build_timeout = absl::Hours(24);
  // The largest build context accepted, in bytes; 0: no limit.
  int64_t max_context_bytes = 0;
  // Step output kept per build, in bytes; past it output is dropped with a
  // line saying so. 0: no limit.
  int64_t max_log_bytes = 0;
  // Seals secret values into the journal (--secrets-key-file); null keeps
  // them in memory only.
  const SecretSealer* sealer = nullptr;
  // Each submitter's stored logs and outputs against a limit; null: none.
  StorageQuota* quota = nullptr;
};

class BuildCoordinator {
 public:
  BuildCoordinator(const CoordinatorOptions& options, BuildJournal* journal,
                   EventLog* events, BlobStore* blobs,
                   SchedulerMetrics* metrics);

  // Loads queued and running builds from the journal. Builds that were running
  // when the scheduler stopped have lost their workers: they are queued again
  // with the next attempt, or fail when that was their last one.
  absl::Status Recover();

  // --- Builds ---------------------------------------------------------------
  // Queues a build whose spec was validated and whose context is stored.
  // Returns the new build id.
  absl::StatusOr<std::string> Submit(const longshore::v1::BuildSpec& spec);
  // Whether Submit would take `spec` now: INVALID_ARGUMENT for a timeout past
  // the operator's maximum; RESOURCE_EXHAUSTED, naming the limit and the
  // depth, when it would not fit in the queue. Submit checks again; this lets
  // the service refuse before receiving a context.
  absl::Status CheckAdmission(const longshore::v1::BuildSpec& spec);
  // QUEUED: cancelled at once. RUNNING: the worker is told to stop; the build
  // becomes CANCELLED when its result arrives or its lease expires. Finished:
  // no change. Returns the state after the call.
  absl::StatusOr<longshore::v1::BuildState> Cancel(const std::string& build_id,
                                                   const std::string& reason);
  absl::StatusOr<longshore::v1::BuildInfo> GetBuild(
      const std::string& build_id);
  // Newest first; specs without the Dockerfile bytes.
  // Only `submitter`'s builds when it is not empty.
  absl::StatusOr<std::vector<longshore::v1::BuildInfo>> ListBuilds(
      const std::vector<longshore::v1::BuildState>& states, int limit,
      const std::string& submitter = "", int64_t since_ns = 0);
  // Each build's 1-based place in the queue (0 when it is not queued), for
  // the web page.
  std::vector<int> QueuePositions(const std::vector<std::string>& build_ids);
  // What the authorization policy compares a caller with: the build's
  // submitter, whether it runs, its context and who registered its worker.
  absl::StatusOr<BuildAccess> Access(const std::string& build_id);
  // The build whose stored output `index` serves `build_id` (itself, or the
  // leader whose execution a merged submission shares), when that output was
  // uploaded by the current attempt.
  absl::StatusOr<std::string> CheckOutputReady(const std::string& build_id,
                                               int index);

  // --- Workers --------------------------------------------------------------
  // Registers a worker's Connect stream, sends it Registered and then any
  // assignments it has room for. Returns the connection handle for later calls.
  // `identity`: the authenticated name that registers it (empty when the
  // scheduler is open); a worker id held by one identity cannot be taken
  // over by another while it is connected.
  absl::StatusOr<uint64_t> ConnectWorker(const longshore::v1::Register& reg,
                                         std::shared_ptr<WorkerChannel> channel,
                                         const std::string& identity = "");
  // Heartbeat, event or result from a connection; anything from a superseded or
  // expired connection, or about an attempt that is no longer current, is
  // dropped.
  void HandleWorkerMessage(uint64_t connection,
                           const longshore::v1::WorkerMessage& message);
  // The stream ended: its builds are interrupted (queued again or failed).
  void DisconnectWorker(uint64_t connection);
  // Expires workers whose last heartbeat is older than the lease; call
  // periodically.
  void ExpireLeases();

  // OK when `attempt` of the build is running and `index` names one of its
  // outputs.
  absl::Status CheckUploadAllowed(const std::string& build_id, int attempt,
                                  int index);
  // Re-checks as above and, while holding the lock so no newer attempt can
  // race, publishes the verified upload and records it.
  absl::Status CommitOutput(const std::string& build_id, int attempt, int index,
                            const std::string& digest,
                            VerifiedFileWriter* writer);

  // --- Admin ----------------------------------------------------------------
  std::vector<longshore::v1::WorkerInfo> ListWorkers();
  absl::StatusOr<longshore::v1::WorkerInfo> SetDraining(
      const std::string& worker_id, bool draining);

  // From now on nothing is leased and lost connections do not touch their
  // builds: a scheduler that is stopping leaves RUNNING builds in the journal,
  // and the next start re-queues them (Recover). Without this, shutting down
  // streams one by one would re-lease builds to workers about to be cut off
  // too, burning attempts.
  void Stop();

  absl::Duration heartbeat_interval() const {
    return options_.heartbeat_interval;
  }

 private:
  absl::Time Now() const { return absl::Now(); }
  std::string NewBuildIdLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // After a restart: opens the build's sealed secrets into secrets_, when
  // the scheduler has a key and every one opens.
  void RecoverSecretsLocked(const BuildRecord& r)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The error for the first secret the build names that secrets_ lacks
  // (lost in a restart); empty when it has them all.
  std::string LostSecretLocked(const BuildRecord& r)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Submit and Cancel before their journal writes are synced.
  absl::StatusOr<std::string> SubmitUnsynced(
      const longshore::v1::BuildSpec& spec);
  absl::StatusOr<longshore::v1::BuildState> CancelUnsynced(
      const std::string& build_id, const std::string& reason);
  absl::Status CheckAdmissionLocked(const longshore::v1::BuildSpec& spec)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Leases queued builds to workers with room, as Placement decides.
  void DispatchLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status LeaseLocked(const std::string& build_id, WorkerEntry* worker)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A RUNNING build lost its worker without a result.
  void InterruptLocked(const std::string& build_id, const std::string& cause)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void DropConnectionLocked(uint64_t connection, const std::string& cause,
                            bool expired) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void HandleResultLocked(WorkerEntry* worker,
                          const longshore::v1::BuildResult& result)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void HandleEventLocked(WorkerEntry* worker,
                         const longshore::v1::WorkerEvent& event)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The build's record when `attempt` of it runs on `worker`, else null.
  BuildRecord* CurrentLeaseLocked(const WorkerEntry& worker,
                                  const std::string& build_id, int attempt)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Cancels the build's execution: at once when queued, through its worker
  // when running.
  absl::StatusOr<longshore::v1::BuildState> CancelExecutionLocked(
      const std::string& build_id, const std::string& reason)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Submit of a build identical to `leader`'s, in flight: a follower.
  absl::StatusOr<std::string> JoinLocked(const std::string& leader,
                                         const longshore::v1::BuildSpec& spec)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Writes the final record, the closing events and metrics; forgets the build.
  void FinishLocked(BuildRecord record) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EmitQueuedLocked(const std::string& build_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void AppendEventLocked(const std::string& build_id,
                         const longshore::v1::BuildEvent& event)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void UpdateGaugesLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A connection of `worker` just registered holding `held`: re-attaches the
  // builds it still runs to their leases, tells it to stop the ones it no
  // longer holds a lease for, and interrupts its orphans it did not bring back.
  void ReattachLocked(
      WorkerEntry* worker,
      const google::protobuf::RepeatedPtrField<longshore::v1::HeldBuild>& held)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Compares a heartbeat's running builds with the worker's leases: a lease
  // the worker does not run (older than two heartbeats, so not an assignment
  // still in flight) is interrupted; a build it runs without a lease is told
  // to stop.
  void ReconcileLocked(WorkerEntry* worker,
                       const longshore::v1::Heartbeat& heartbeat)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The worker gave the build back (draining): queued again, same attempt.
  void HandleReleaseLocked(WorkerEntry* worker,
                           const longshore::v1::ReleaseBuild& release)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Stops running builds past their timeout (asks their workers to stop; the
  // result, or the lease ending, fails them with the timeout's message).
  void EnforceTimeoutsLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OrphanLocked(const std::string& build_id, const std::string& worker_id,
                    int attempt, const std::string& cause)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status PersistDrainLocked(const std::string& worker_id, bool draining)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Bookkeeping of running_total_/running_by_submitter_ for a build entering
  // or leaving RUNNING.
  void CountRunningLocked(const BuildRecord& record, int delta)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<BuildRecord> LookupLocked(const std::string& build_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  longshore::v1::BuildInfo ToBuildInfoLocked(const BuildRecord& record,
                                             bool with_dockerfile)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const CoordinatorOptions options_;
  BuildJournal* const journal_;
  EventLog* const events_;
  BlobStore* const blobs_;
  SchedulerMetrics* const metrics_;
  Placement placement_;

  absl::Mutex mu_;
  // QUEUED and RUNNING builds; finished ones live only in the journal. Their
  // specs are kept without the Dockerfile (read back from the journal when a
  // lease or GetBuild needs it), so a queue of 100k builds stays small.
  // (A node map: records are large, and their slots not wasted at growth.)
  absl::node_hash_map<std::string, BuildRecord> active_ ABSL_GUARDED_BY(mu_);
  // RUNNING builds, in all and per submitter, kept up to date as builds move
  // in and out of RUNNING (placement's shares and the gauges read them).
  size_t running_total_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<std::string, int> running_by_submitter_
      ABSL_GUARDED_BY(mu_);
  // Build secrets' values, by build id (the journal has their ids, and
  // sealed copies with a key; see BuildSpec.secrets).
  absl::flat_hash_map<std::string, std::vector<longshore::v1::Secret>> secrets_
      ABSL_GUARDED_BY(mu_);
  BuildQueue queue_ ABSL_GUARDED_BY(mu_);
  MergedBuilds merges_ ABSL_GUARDED_BY(mu_);
  // When each submitter last had a build leased (a counter, memory only), for
  // Placement's tie-break between equally loaded submitters.
  absl::flat_hash_map<std::string, int64_t> last_served_ ABSL_GUARDED_BY(mu_);
  int64_t served_count_ ABSL_GUARDED_BY(mu_) = 0;
  WorkerRegistry workers_ ABSL_GUARDED_BY(mu_);
  // RUNNING builds without a connected worker: its stream ended or the
  // scheduler restarted. Kept for options_.reattach_grace in case the worker
  // comes back still running them.
  struct Orphan {
    std::string worker_id;
    int attempt = 0;
    absl::Time since;
    std::string cause;
  };
  absl::flat_hash_map<std::string, Orphan> orphans_ ABSL_GUARDED_BY(mu_);
  // Worker ids an operator drained, as journaled: a worker keeps its drain
  // across its reconnects and the scheduler's restarts.
  absl::flat_hash_set<std::string> drained_ ABSL_GUARDED_BY(mu_);
  std::mt19937_64 id_random_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace longshore::scheduler

#endif  // LONGSHORE_SCHEDULER_BUILD_COORDINATOR_H_
