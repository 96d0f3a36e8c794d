// What each submitter keeps on the scheduler's disk (its builds' logs and
// client-side outputs), against --submitter-quota-bytes.
//
// Counted live as logs are appended and outputs uploaded, and recounted
// from the journal and the log files at start and after each retention
// sweep (which is what frees space). At the quota: Submit is refused, a
// running build's further output is dropped with a marker, and an output
// upload that would pass it fails the build; each error names the limit.
#ifndef LONGSHORE_SCHEDULER_STORAGE_QUOTA_H_
#define LONGSHORE_SCHEDULER_STORAGE_QUOTA_H_

#include <cstdint>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "scheduler/build_journal.h"
#include "scheduler/event_log.h"

namespace longshore::scheduler {

class StorageQuota {
 public:
  // `limit` bytes per submitter; 0: no limit (usage is still counted).
  explicit StorageQuota(int64_t limit) : limit_(limit) {}

  int64_t limit() const { return limit_; }
  void Reset(absl::flat_hash_map<std::string, int64_t> usage);
  void Add(const std::string& submitter, int64_t bytes);
  // Output of the submitter was dropped at the quota: it counts as full
  // (Submit refused) until a recount (Reset) finds room again.
  void MarkFull(const std::string& submitter);
  int64_t Used(const std::string& submitter) const;

  // OK when `more` bytes (of `what`) fit under the limit; otherwise
  // RESOURCE_EXHAUSTED naming the submitter, its usage and the flag. With
  // more == 0: whether the submitter is below the limit at all.
  absl::Status Check(const std::string& submitter, int64_t more,
                     const std::string& what) const;

 private:
  const int64_t limit_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, int64_t> used_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<std::string> full_ ABSL_GUARDED_BY(mu_);
};

// Each submitter's stored bytes: outputs as the journal records them, logs
// as their files measure.
absl::StatusOr<absl::flat_hash_map<std::string, int64_t>> CountStoredBytes(
    BuildJournal* journal, const EventLog& events);

}  // namespace longshore::scheduler

#endif  // LONGSHORE_SCHEDULER_STORAGE_QUOTA_H_
