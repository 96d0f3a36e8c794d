#include "scheduler/storage_quota.h"

#include <sys/stat.h>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace longshore::scheduler {

void StorageQuota::Reset(absl::flat_hash_map<std::string, int64_t> usage) {
  absl::MutexLock lock(&mu_);
  used_ = std::move(usage);
  full_.clear();
}

void StorageQuota::MarkFull(const std::string& submitter) {
  absl::MutexLock lock(&mu_);
  full_.insert(submitter);
}

void StorageQuota::Add(const std::string& submitter, int64_t bytes) {
  absl::MutexLock lock(&mu_);
  used_[submitter] += bytes;
}

int64_t StorageQuota::Used(const std::string& submitter) const {
  absl::MutexLock lock(&mu_);
  auto it = used_.find(submitter);
  return it == used_.end() ? 0 : it->second;
}

absl::Status StorageQuota::Check(const std::string& submitter, int64_t more,
                                 const std::string& what) const {
  if (limit_ <= 0) return absl::OkStatus();
  int64_t used = 0;
  bool full = false;
  {
    absl::MutexLock lock(&mu_);
    auto it = used_.find(submitter);
    if (it != used_.end()) used = it->second;
    full = full_.contains(submitter);
  }
  const char* kHow =
      " (--submitter-quota-bytes); old builds free their space when "
      "retention (--retention) removes them, or an operator can raise the "
      "quota";
  if (more == 0) {
    if (used < limit_ && !full) return absl::OkStatus();
    return absl::ResourceExhaustedError(absl::StrCat(
        "submitter \"", submitter, "\" has filled its quota of ", limit_,
        " bytes of build logs and outputs (", used, " stored)", kHow));
  }
  if (used + more <= limit_) return absl::OkStatus();
  return absl::ResourceExhaustedError(
      absl::StrCat("submitter \"", submitter, "\" stores ", used,
                   " bytes of build logs and outputs, and ", what, " of ", more,
                   " bytes would pass its quota of ", limit_, " bytes", kHow));
}

absl::StatusOr<absl::flat_hash_map<std::string, int64_t>> CountStoredBytes(
    BuildJournal* journal, const EventLog& events) {
  absl::flat_hash_map<std::string, int64_t> usage;
  ASSIGN_OR_RETURN(auto outputs, journal->OutputBytesBySubmitter());
  for (const auto& [submitter, bytes] : outputs) usage[submitter] += bytes;
  ASSIGN_OR_RETURN(auto builds, journal->BuildSubmitters());
  for (const auto& [id, submitter] : builds) {
    const std::string path = events.LogPath(id);
    struct stat st;
    if (!path.empty() && stat(path.c_str(), &st) == 0) {
      usage[submitter] += st.st_size;
    }
  }
  return usage;
}

}  // namespace longshore::scheduler
