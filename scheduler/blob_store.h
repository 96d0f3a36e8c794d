// The scheduler's files beside its journal: build contexts, content-addressed
// as <state>/contexts/sha256/<hex>, and client-side outputs as
// <state>/outputs/<build>/<index>. Every file is written under a temporary
// name, checked against the digest its sender announced, then renamed, so a
// reader never sees a partial or unverified file.
#ifndef LONGSHORE_SCHEDULER_BLOB_STORE_H_
#define LONGSHORE_SCHEDULER_BLOB_STORE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/unique_fd.h"
#include "scheduler/verified_file_writer.h"

namespace longshore::scheduler {

class BlobStore {
 public:
  // Creates <state_dir>/contexts/sha256 and <state_dir>/outputs when missing.
  static absl::StatusOr<std::unique_ptr<BlobStore>> Open(
      const std::string& state_dir);

  // Size of the stored context, or NOT_FOUND. INVALID_ARGUMENT for a malformed
  // digest (anything but "sha256:" + 64 lower-case hex characters).
  absl::StatusOr<int64_t> StatContext(const std::string& digest) const;
  absl::StatusOr<UniqueFd> OpenContext(const std::string& digest) const;
  // A writer whose Commit target is ContextPath(digest).
  absl::StatusOr<std::unique_ptr<VerifiedFileWriter>> NewContextWriter() const;
  absl::StatusOr<std::string> ContextPath(const std::string& digest) const;

  // Outputs of one build; `build_id` must be a plain name (no '/', not "." or
  // "..").
  absl::StatusOr<std::unique_ptr<VerifiedFileWriter>> NewOutputWriter(
      const std::string& build_id) const;
  absl::StatusOr<std::string> OutputPath(const std::string& build_id,
                                         int index) const;
  absl::StatusOr<UniqueFd> OpenOutput(const std::string& build_id,
                                      int index) const;

  // Retention. A found context's modification time is set to now by
  // StatContext (a client told it is held may submit it a little later), so
  // `last_used` is the later of its upload and its last StatContext.
  struct StoredContext {
    std::string digest;
    absl::Time last_used;
    int64_t size = 0;
  };
  absl::StatusOr<std::vector<StoredContext>> ListContexts() const;
  // Removes the context unless it was used (uploaded or found by
  // StatContext) at or after `cutoff`; returns whether it did.
  absl::StatusOr<bool> RemoveContextUnusedSince(const std::string& digest,
                                                absl::Time cutoff) const;
  // Removes every output of the build; OK when it had none.
  absl::Status RemoveOutputs(const std::string& build_id) const;

 private:
  explicit BlobStore(std::string state_dir)
      : state_dir_(std::move(state_dir)) {}
  absl::StatusOr<std::string> OutputDir(const std::string& build_id) const;

  std::string state_dir_;
};

}  // namespace longshore::scheduler

#endif  // LONGSHORE_SCHEDULER_BLOB_STORE_H_
