// A content-addressed file store: <dir>/sha256/<hex>, each file named by the
// sha256 of its bytes. Files are written under a temporary name, checked
// against the digest announced for them and renamed, so a reader never sees a
// partial or unverified file; concurrent writers of one digest are harmless
// (the last rename wins with the same bytes). Used by the scheduler (one store
// per submitter, for context files) and by workers (their context cache).
#ifndef LONGSHORE_COMMON_CONTENT_STORE_H_
#define LONGSHORE_COMMON_CONTENT_STORE_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/sha256.h"
#include "common/unique_fd.h"

namespace longshore {

class ContentStore {
 public:
  // Creates <dir>/sha256 when missing. With `durable`, each file is synced
  // before it is renamed into place (the scheduler's store outlives crashes;
  // a worker's is a cache).
  static absl::StatusOr<std::unique_ptr<ContentStore>> Open(
      const std::string& dir, bool durable);

  // Size of the stored file, or NOT_FOUND; INVALID_ARGUMENT for a malformed
  // digest (anything but "sha256:" + 64 lower-case hex characters).
  absl::StatusOr<int64_t> Stat(const std::string& digest) const;
  bool Has(const std::string& digest) const { return Stat(digest).ok(); }
  absl::StatusOr<std::string> Path(const std::string& digest) const;
  absl::StatusOr<UniqueFd> Open(const std::string& digest) const;
  absl::StatusOr<std::string> Read(const std::string& digest) const;
  // Sets the file's modification time to now: retention removes what was
  // not used for a while.
  void Touch(const std::string& digest) const;

  class Writer {
   public:
    ~Writer();
    Writer(const Writer&) = delete;
    Writer& operator=(const Writer&) = delete;
    // INVALID_ARGUMENT once more than the announced size arrives.
    absl::Status Append(absl::string_view data);
    int64_t written() const { return written_; }
    // Publishes the file when its bytes hash to the digest and have the
    // announced size; INVALID_ARGUMENT naming both digests otherwise. A
    // durable store syncs the file first.
    absl::Status Commit();

    // Commit in two halves, for many files made durable by one Sync: Verify
    // checks the bytes and closes the file; Publish renames it into place.
    absl::Status Verify();
    absl::Status Publish();

   private:
    friend class ContentStore;
    Writer(const ContentStore* store, std::string digest, int64_t size,
           UniqueFd fd, std::string temp)
        : store_(store),
          digest_(std::move(digest)),
          size_(size),
          fd_(std::move(fd)),
          temp_(std::move(temp)) {}
    const ContentStore* store_;
    std::string digest_;
    int64_t size_;
    UniqueFd fd_;
    std::string temp_;
    Sha256 hash_;
    int64_t written_ = 0;
    bool verified_ = false;
    bool committed_ = false;
  };
  static constexpr int64_t kUnknownSize = -1;
  // A writer for the file `digest` of `size` bytes (or kUnknownSize).
  absl::StatusOr<std::unique_ptr<Writer>> NewWriter(const std::string& digest,
                                                    int64_t size) const;
  // Stores `data`, which must hash to `digest`.
  absl::Status Put(const std::string& digest, absl::string_view data) const;

  struct Usage {
    int64_t files = 0;
    int64_t bytes = 0;
  };
  absl::StatusOr<Usage> Measure() const;
  // Removes every file last used (written or touched) before `cutoff`.
  absl::StatusOr<Usage> RemoveUnusedSince(absl::Time cutoff) const;

  // Flushes every file of the store's filesystem to disk (syncfs): one call
  // for a batch of Verify()ed files before they are Publish()ed.
  absl::Status Sync() const;

  const std::string& dir() const { return dir_; }

 private:
  ContentStore(std::string dir, bool durable)
      : dir_(std::move(dir)), durable_(durable) {}
  std::string dir_;
  bool durable_;
};

}  // namespace longshore

#endif  // LONGSHORE_COMMON_CONTENT_STORE_H_
