// Retention: a finished build stays readable (status, events, outputs) for a
// while, then goes with its outputs; a stored context goes once no build in
// the journal uses it and nobody has used it for as long.
#ifndef LONGSHORE_SCHEDULER_RETENTION_H_
#define LONGSHORE_SCHEDULER_RETENTION_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "scheduler/blob_store.h"
#include "scheduler/build_journal.h"
#include "scheduler/event_log.h"

namespace longshore::scheduler {

struct RetentionOptions {
  // How long finished builds and unused contexts are kept; zero keeps
  // everything.
  absl::Duration keep = absl::Hours(7 * 24);
  // Builds removed per journal transaction.
  int batch = 256;
};

struct SweepResult {
  int builds = 0;
  int contexts = 0;
  int64_t context_bytes = 0;
};

class Retention {
 public:
  Retention(const RetentionOptions& options, BuildJournal* journal,
            BlobStore* blobs, EventLog* events)
      : options_(options), journal_(journal), blobs_(blobs), events_(events) {}

  // Removes builds that finished before `now - keep` (outputs first, then the
  // journal rows, so an interrupted sweep leaves no orphaned files), then the
  // contexts no remaining build names that were last used before then.
  absl::StatusOr<SweepResult> Sweep(absl::Time now);

 private:
  const RetentionOptions options_;
  BuildJournal* const journal_;
  BlobStore* const blobs_;
  EventLog* const events_;
};

}  // namespace longshore::scheduler

#endif  // LONGSHORE_SCHEDULER_RETENTION_H_
