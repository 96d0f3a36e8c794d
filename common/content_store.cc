#include "common/content_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/errno_status.h"
#include "common/file_util.h"
#include "common/status_macros.h"

namespace longshore {
namespace {

std::atomic<uint64_t> g_temp_counter{0};

absl::Status CheckDigest(const std::string& digest) {
  if (IsValidDigest(digest)) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("content digest \"", digest, "\" is not sha256:<64 hex>"));
}

}  // namespace

absl::StatusOr<std::unique_ptr<ContentStore>> ContentStore::Open(
    const std::string& dir, bool durable) {
  RETURN_IF_ERROR(MakeDirs(dir + "/sha256", 0700));
  RETURN_IF_ERROR(MakeDirs(dir + "/tmp", 0700));
  return std::unique_ptr<ContentStore>(new ContentStore(dir, durable));
}

absl::StatusOr<std::string> ContentStore::Path(
    const std::string& digest) const {
  RETURN_IF_ERROR(CheckDigest(digest));
  absl::string_view hex = digest;
  absl::ConsumePrefix(&hex, "sha256:");
  return absl::StrCat(dir_, "/sha256/", hex);
}

absl::StatusOr<int64_t> ContentStore::Stat(const std::string& digest) const {
  ASSIGN_OR_RETURN(std::string path, Path(digest));
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) {
      return absl::NotFoundError(absl::StrCat("content ", digest, " not held"));
    }
    return ErrnoStatus(errno, "stat(%s)", path);
  }
  return static_cast<int64_t>(st.st_size);
}

absl::StatusOr<UniqueFd> ContentStore::Open(const std::string& digest) const {
  ASSIGN_OR_RETURN(std::string path, Path(digest));
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT) {
      return absl::NotFoundError(absl::StrCat("content ", digest, " not held"));
    }
    return ErrnoStatus(errno, "open(%s)", path);
  }
  return fd;
}

absl::StatusOr<std::string> ContentStore::Read(
    const std::string& digest) const {
  ASSIGN_OR_RETURN(std::string path, Path(digest));
  if (!PathExists(path)) {
    return absl::NotFoundError(absl::StrCat("content ", digest, " not held"));
  }
  return ReadFile(path);
}

void ContentStore::Touch(const std::string& digest) const {
  absl::StatusOr<std::string> path = Path(digest);
  if (path.ok()) utimensat(AT_FDCWD, path->c_str(), nullptr, 0);
}

absl::StatusOr<std::unique_ptr<ContentStore::Writer>> ContentStore::NewWriter(
    const std::string& digest, int64_t size) const {
  RETURN_IF_ERROR(CheckDigest(digest));
  if (size < 0 && size != kUnknownSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("content ", digest, ": negative size ", size));
  }
  std::string temp = absl::StrCat(dir_, "/tmp/", getpid(), "-", gettid(), "-",
                                  g_temp_counter.fetch_add(1));
  UniqueFd fd(
      open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd) return ErrnoStatus(errno, "open(%s)", temp);
  return std::unique_ptr<Writer>(
      new Writer(this, digest, size, std::move(fd), std::move(temp)));
}

ContentStore::Writer::~Writer() {
  if (!committed_) unlink(temp_.c_str());
}

absl::Status ContentStore::Writer::Append(absl::string_view data) {
  if (size_ != kUnknownSize &&
      written_ + static_cast<int64_t>(data.size()) > size_) {
    return absl::InvalidArgumentError(absl::StrCat("content ", digest_,
                                                   ": more than the announced ",
                                                   size_, " bytes arrived"));
  }
  hash_.Update(data);
  for (size_t off = 0; off < data.size();) {
    ssize_t n = write(fd_.get(), data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(errno, "write(%s)", temp_);
    off += static_cast<size_t>(n);
  }
  written_ += static_cast<int64_t>(data.size());
  return absl::OkStatus();
}

absl::Status ContentStore::Writer::Verify() {
  if (size_ != kUnknownSize && written_ != size_) {
    return absl::InvalidArgumentError(
        absl::StrCat("content ", digest_, ": ", written_,
                     " bytes arrived, but ", size_, " were announced"));
  }
  std::string got = hash_.Digest();
  if (got != digest_) {
    return absl::InvalidArgumentError(absl::StrCat(
        "content announced as ", digest_, " arrived with digest ", got));
  }
  fd_.reset();
  verified_ = true;
  return absl::OkStatus();
}

absl::Status ContentStore::Writer::Publish() {
  if (!verified_) return absl::InternalError("content published unverified");
  ASSIGN_OR_RETURN(std::string path, store_->Path(digest_));
  if (rename(temp_.c_str(), path.c_str()) != 0) {
    return ErrnoStatus(errno, "rename(%s)", path);
  }
  committed_ = true;
  return absl::OkStatus();
}

absl::Status ContentStore::Writer::Commit() {
  if (store_->durable_ && fdatasync(fd_.get()) != 0) {
    return ErrnoStatus(errno, "fdatasync(%s)", temp_);
  }
  RETURN_IF_ERROR(Verify());
  return Publish();
}

absl::Status ContentStore::Sync() const {
  UniqueFd fd(open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return ErrnoStatus(errno, "open(%s)", dir_);
  if (syncfs(fd.get()) != 0) return ErrnoStatus(errno, "syncfs(%s)", dir_);
  return absl::OkStatus();
}

absl::Status ContentStore::Put(const std::string& digest,
                               absl::string_view data) const {
  ASSIGN_OR_RETURN(std::unique_ptr<Writer> w,
                   NewWriter(digest, static_cast<int64_t>(data.size())));
  RETURN_IF_ERROR(w->Append(data));
  return w->Commit();
}

namespace {

// Calls `fn(name, stat)` for each stored file.
template <typename Fn>
absl::Status ForEachFile(const std::string& dir, Fn fn) {
  std::string files = dir + "/sha256";
  DIR* d = opendir(files.c_str());
  if (d == nullptr) return ErrnoStatus(errno, "opendir(%s)", files);
  absl::Status status;
  while (struct dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    struct stat st;
    if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (!S_ISREG(st.st_mode)) continue;
    status = fn(dirfd(d), std::string(e->d_name), st);
    if (!status.ok()) break;
  }
  closedir(d);
  return status;
}

}  // namespace

absl::StatusOr<ContentStore::Usage> ContentStore::Measure() const {
  Usage u;
  RETURN_IF_ERROR(
      ForEachFile(dir_, [&](int, const std::string&, const struct stat& st) {
        ++u.files;
        u.bytes += st.st_size;
        return absl::OkStatus();
      }));
  return u;
}

absl::StatusOr<ContentStore::Usage> ContentStore::RemoveUnusedSince(
    absl::Time cutoff) const {
  Usage removed;
  RETURN_IF_ERROR(ForEachFile(
      dir_, [&](int dfd, const std::string& name, const struct stat& st) {
        if (absl::TimeFromTimespec(st.st_mtim) >= cutoff) {
          return absl::OkStatus();
        }
        if (unlinkat(dfd, name.c_str(), 0) != 0 && errno != ENOENT) {
          return ErrnoStatus(errno, "unlink(%s/sha256/%s)", dir_, name);
        }
        ++removed.files;
        removed.bytes += st.st_size;
        return absl::OkStatus();
      }));
  return removed;
}

}  // namespace longshore
