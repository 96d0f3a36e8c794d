#include "scheduler/verified_file_writer.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <vector>

#include "common/errno_status.h"

namespace longshore::scheduler {

absl::StatusOr<std::unique_ptr<VerifiedFileWriter>> VerifiedFileWriter::Create(
    const std::string& dir) {
  std::string pattern = dir + "/.incoming.XXXXXX";
  std::vector<char> buf(pattern.begin(), pattern.end());
  buf.push_back('\0');
  int fd = mkostemp(buf.data(), O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, "mkostemp(%s)", pattern);
  // mkostemp creates 0600; stored blobs are read by the scheduler only, but
  // keep them readable for operators inspecting the state directory.
  if (fchmod(fd, 0644) != 0) {
    int err = errno;
    unlink(buf.data());
    close(fd);
    return ErrnoStatus(err, "fchmod(%s)", buf.data());
  }
  return std::unique_ptr<VerifiedFileWriter>(
      new VerifiedFileWriter(UniqueFd(fd), std::string(buf.data())));
}

VerifiedFileWriter::~VerifiedFileWriter() {
  if (!committed_) unlink(temp_path_.c_str());
}

absl::Status VerifiedFileWriter::Append(absl::string_view data) {
  hash_.Update(data);
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = write(fd_.get(), data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "write(%s)", temp_path_);
    }
    done += static_cast<size_t>(n);
  }
  size_ += static_cast<int64_t>(data.size());
  return absl::OkStatus();
}

absl::StatusOr<int64_t> VerifiedFileWriter::Commit(
    const std::string& final_path, const std::string& expected_digest,
    int64_t expected_size) {
  if (committed_) {
    return absl::FailedPreconditionError("Commit called twice for " +
                                         final_path);
  }
  std::string actual = hash_.Digest();
  if (actual != expected_digest) {
    return absl::InvalidArgumentError(
        "digest mismatch for " + final_path + ": announced " + expected_digest +
        ", received " + std::to_string(size_) + " bytes with digest " + actual);
  }
  if (expected_size >= 0 && expected_size != size_) {
    return absl::InvalidArgumentError(
        "size mismatch for " + final_path + ": announced " +
        std::to_string(expected_size) + " bytes, received " +
        std::to_string(size_));
  }
  if (fsync(fd_.get()) != 0) return ErrnoStatus(errno, "fsync(%s)", temp_path_);
  fd_.reset();
  if (rename(temp_path_.c_str(), final_path.c_str()) != 0) {
    return ErrnoStatus(errno, "rename(%s, %s)", temp_path_, final_path);
  }
  committed_ = true;
  return size_;
}

}  // namespace longshore::scheduler
