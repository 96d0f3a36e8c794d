#include "scheduler/blob_store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <vector>

#include "absl/strings/match.h"
#include "common/errno_status.h"
#include "common/file_util.h"
#include "common/sha256.h"
#include "common/status_macros.h"

namespace longshore::scheduler {
namespace {

absl::StatusOr<UniqueFd> OpenForReading(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, "open(%s)", path);
  return UniqueFd(fd);
}

// Names of the entries of `dir` (without "." and "..").
absl::StatusOr<std::vector<std::string>> ListDir(const std::string& dir) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return ErrnoStatus(errno, "opendir(%s)", dir);
  std::vector<std::string> names;
  while (struct dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(std::move(name));
  }
  closedir(d);
  return names;
}

constexpr char kIncomingPrefix[] = ".incoming.";

// Removes temporary files an interrupted upload left in `dir`.
absl::Status RemoveIncoming(const std::string& dir) {
  ASSIGN_OR_RETURN(std::vector<std::string> names, ListDir(dir));
  for (const std::string& name : names) {
    if (!absl::StartsWith(name, kIncomingPrefix)) continue;
    std::string path = dir + "/" + name;
    if (unlink(path.c_str()) != 0 && errno != ENOENT) {
      return ErrnoStatus(errno, "unlink(%s)", path);
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<BlobStore>> BlobStore::Open(
    const std::string& state_dir) {
  const std::string contexts = state_dir + "/contexts/sha256";
  const std::string outputs = state_dir + "/outputs";
  RETURN_IF_ERROR(MakeDirs(contexts));
  RETURN_IF_ERROR(MakeDirs(outputs));
  // Only one scheduler uses a state directory, so at start every temporary file
  // belongs to an upload that died with the previous process.
  RETURN_IF_ERROR(RemoveIncoming(contexts));
  ASSIGN_OR_RETURN(std::vector<std::string> builds, ListDir(outputs));
  for (const std::string& build : builds) {
    struct stat st;
    std::string dir = outputs + "/" + build;
    if (lstat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
      RETURN_IF_ERROR(RemoveIncoming(dir));
    }
  }
  return std::unique_ptr<BlobStore>(new BlobStore(state_dir));
}

absl::StatusOr<std::string> BlobStore::ContextPath(
    const std::string& digest) const {
  if (!IsValidDigest(digest)) {
    return absl::InvalidArgumentError("malformed context digest \"" + digest +
                                      "\": want sha256:<64 hex>");
  }
  return state_dir_ + "/contexts/sha256/" + digest.substr(7);
}

absl::StatusOr<int64_t> BlobStore::StatContext(
    const std::string& digest) const {
  ASSIGN_OR_RETURN(std::string path, ContextPath(digest));
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) {
      return absl::NotFoundError("context " + digest + " is not stored");
    }
    return ErrnoStatus(errno, "stat(%s)", path);
  }
  // Used now: retention keeps it at least its grace period from here.
  (void)utimensat(AT_FDCWD, path.c_str(), nullptr, 0);
  return static_cast<int64_t>(st.st_size);
}

absl::StatusOr<UniqueFd> BlobStore::OpenContext(
    const std::string& digest) const {
  ASSIGN_OR_RETURN(std::string path, ContextPath(digest));
  auto fd = OpenForReading(path);
  if (!fd.ok() && absl::IsNotFound(fd.status())) {
    return absl::NotFoundError("context " + digest + " is not stored");
  }
  return fd;
}

absl::StatusOr<std::unique_ptr<VerifiedFileWriter>>
BlobStore::NewContextWriter() const {
  return VerifiedFileWriter::Create(state_dir_ + "/contexts/sha256");
}

absl::StatusOr<std::string> BlobStore::OutputDir(
    const std::string& build_id) const {
  if (build_id.empty() || build_id == "." || build_id == ".." ||
      absl::StrContains(build_id, '/')) {
    return absl::InvalidArgumentError("malformed build id \"" + build_id +
                                      "\"");
  }
  return state_dir_ + "/outputs/" + build_id;
}

absl::StatusOr<std::unique_ptr<VerifiedFileWriter>> BlobStore::NewOutputWriter(
    const std::string& build_id) const {
  ASSIGN_OR_RETURN(std::string dir, OutputDir(build_id));
  RETURN_IF_ERROR(MakeDirs(dir));
  return VerifiedFileWriter::Create(dir);
}

absl::StatusOr<std::string> BlobStore::OutputPath(const std::string& build_id,
                                                  int index) const {
  ASSIGN_OR_RETURN(std::string dir, OutputDir(build_id));
  if (index < 0) {
    return absl::InvalidArgumentError("negative output index " +
                                      std::to_string(index));
  }
  return dir + "/" + std::to_string(index);
}

absl::StatusOr<UniqueFd> BlobStore::OpenOutput(const std::string& build_id,
                                               int index) const {
  ASSIGN_OR_RETURN(std::string path, OutputPath(build_id, index));
  return OpenForReading(path);
}

absl::StatusOr<std::vector<BlobStore::StoredContext>> BlobStore::ListContexts()
    const {
  const std::string dir = state_dir_ + "/contexts/sha256";
  ASSIGN_OR_RETURN(std::vector<std::string> names, ListDirSorted(dir));
  std::vector<StoredContext> out;
  for (const std::string& name : names) {
    const std::string digest = "sha256:" + name;
    // Writers' temporary files are not contexts yet.
    if (!IsValidDigest(digest)) continue;
    struct stat st;
    if (stat((dir + "/" + name).c_str(), &st) != 0) continue;
    out.push_back({digest, absl::TimeFromTimespec(st.st_mtim),
                   static_cast<int64_t>(st.st_size)});
  }
  return out;
}

absl::StatusOr<bool> BlobStore::RemoveContextUnusedSince(
    const std::string& digest, absl::Time cutoff) const {
  ASSIGN_OR_RETURN(std::string path, ContextPath(digest));
  // Checked again right before the unlink: a StatContext since the listing
  // keeps it.
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return false;
    return ErrnoStatus(errno, "stat(%s)", path);
  }
  if (absl::TimeFromTimespec(st.st_mtim) >= cutoff) return false;
  if (unlink(path.c_str()) != 0) {
    if (errno == ENOENT) return false;
    return ErrnoStatus(errno, "unlink(%s)", path);
  }
  return true;
}

absl::Status BlobStore::RemoveOutputs(const std::string& build_id) const {
  ASSIGN_OR_RETURN(std::string dir, OutputDir(build_id));
  return RemoveTree(dir);
}

}  // namespace longshore::scheduler
