// Writes a file under a temporary name while hashing it, and publishes it under
// its final name only when the bytes match the digest (and size) the sender
// announced.
#ifndef LONGSHORE_SCHEDULER_VERIFIED_FILE_WRITER_H_
#define LONGSHORE_SCHEDULER_VERIFIED_FILE_WRITER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/sha256.h"
#include "common/unique_fd.h"

namespace longshore::scheduler {

class VerifiedFileWriter {
 public:
  // Creates a uniquely named temporary file inside `dir` (which must exist), so
  // the final rename stays on one filesystem and is atomic.
  static absl::StatusOr<std::unique_ptr<VerifiedFileWriter>> Create(
      const std::string& dir);

  // Removes the temporary file unless Commit succeeded.
  ~VerifiedFileWriter();
  VerifiedFileWriter(const VerifiedFileWriter&) = delete;
  VerifiedFileWriter& operator=(const VerifiedFileWriter&) = delete;

  absl::Status Append(absl::string_view data);
  int64_t bytes_written() const { return size_; }

  // Flushes the file and renames it to `final_path` when its sha256 equals
  // `expected_digest` and, if `expected_size` >= 0, its size equals it. On a
  // mismatch the temporary file is removed and INVALID_ARGUMENT names both
  // digests. Returns the number of bytes published.
  absl::StatusOr<int64_t> Commit(const std::string& final_path,
                                 const std::string& expected_digest,
                                 int64_t expected_size);

 private:
  VerifiedFileWriter(UniqueFd fd, std::string temp_path)
      : fd_(std::move(fd)), temp_path_(std::move(temp_path)) {}

  UniqueFd fd_;
  std::string temp_path_;
  Sha256 hash_;
  int64_t size_ = 0;
  bool committed_ = false;
};

}  // namespace longshore::scheduler

#endif  // LONGSHORE_SCHEDULER_VERIFIED_FILE_WRITER_H_
