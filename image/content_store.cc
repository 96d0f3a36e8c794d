#include "image/content_store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <set>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/errno_status.h"
#include "common/file_util.h"
#include "common/log.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "common/unique_fd.h"

namespace longshore::image {
namespace {

absl::StatusOr<std::string> HexOf(absl::string_view digest) {
  if (!IsValidDigest(digest)) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid digest \"", digest, "\""));
  }
  return std::string(digest.substr(7));
}

bool IsHex64(absl::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

int64_t NowNs() {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

int64_t MtimeNs(const struct stat& st) {
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 +
         st.st_mtim.tv_nsec;
}

absl::StatusOr<std::vector<std::string>> ListDir(const std::string& dir) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return ErrnoStatus(errno, "opendir(%s)", dir);
  std::vector<std::string> out;
  while (dirent* de = readdir(d)) {
    absl::string_view n = de->d_name;
    if (n != "." && n != "..") out.emplace_back(n);
  }
  closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

// Disk usage of a tree (allocated blocks), each hard-linked inode counted once.
absl::Status DiskUsage(int dirfd, const std::string& path,
                       std::set<std::pair<dev_t, ino_t>>* seen,
                       int64_t* total) {
  int dupfd = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
  if (dupfd < 0) return ErrnoStatus(errno, "dup(%s)", path);
  DIR* d = fdopendir(dupfd);
  if (d == nullptr) {
    close(dupfd);
    return ErrnoStatus(errno, "fdopendir(%s)", path);
  }
  std::vector<std::string> names;
  while (dirent* de = readdir(d)) {
    absl::string_view n = de->d_name;
    if (n != "." && n != "..") names.emplace_back(n);
  }
  closedir(d);
  for (const auto& n : names) {
    struct stat st;
    if (fstatat(dirfd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      return ErrnoStatus(errno, "fstatat(%s/%s)", path, n);
    }
    if (st.st_nlink > 1 && !S_ISDIR(st.st_mode) &&
        !seen->insert({st.st_dev, st.st_ino}).second) {
      continue;
    }
    *total += static_cast<int64_t>(st.st_blocks) * 512;
    if (S_ISDIR(st.st_mode)) {
      UniqueFd fd(openat(dirfd, n.c_str(),
                         O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!fd) return ErrnoStatus(errno, "openat(%s/%s)", path, n);
      RETURN_IF_ERROR(DiskUsage(fd.get(), path + "/" + n, seen, total));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> TreeSize(const std::string& path) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return ErrnoStatus(errno, "open(%s)", path);
  struct stat st;
  if (fstat(fd.get(), &st) != 0) return ErrnoStatus(errno, "fstat(%s)", path);
  int64_t total = static_cast<int64_t>(st.st_blocks) * 512;
  std::set<std::pair<dev_t, ino_t>> seen;
  RETURN_IF_ERROR(DiskUsage(fd.get(), path, &seen, &total));
  return total;
}

absl::Status FsyncPath(const std::string& path) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return ErrnoStatus(errno, "open(%s)", path);
  if (fsync(fd.get()) != 0) return ErrnoStatus(errno, "fsync(%s)", path);
  return absl::OkStatus();
}

}  // namespace

// ---------------------------------------------------------------------------
// Lease

ContentStore::Lease& ContentStore::Lease::operator=(Lease&& o) noexcept {
  if (this != &o) {
    Release();
    store_ = std::exchange(o.store_, nullptr);
    key_ = std::move(o.key_);
    path_ = std::move(o.path_);
  }
  return *this;
}

void ContentStore::Lease::Release() {
  if (store_ != nullptr) store_->Unref(key_);
  store_ = nullptr;
}

// ---------------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<ContentStore>> ContentStore::Open(
    const std::string& root) {
  std::unique_ptr<ContentStore> store(new ContentStore(root));
  RETURN_IF_ERROR(store->Load());
  return store;
}

ContentStore::~ContentStore() = default;

std::string ContentStore::Key(bool snapshot, absl::string_view hex) {
  return absl::StrCat(snapshot ? "snap:" : "blob:", hex);
}

std::string ContentStore::ItemPath(const Item& item) const {
  return item.snapshot ? absl::StrCat(root_, "/snapshots/", item.hex)
                       : absl::StrCat(root_, "/blobs/sha256/", item.hex);
}

absl::Status ContentStore::Load() {
  RETURN_IF_ERROR(MakeDirs(root_ + "/blobs/sha256"));
  RETURN_IF_ERROR(MakeDirs(root_ + "/snapshots"));
  // Whatever is in tmp/ was being written by a process that is gone.
  RETURN_IF_ERROR(RemoveTree(root_ + "/tmp"));
  RETURN_IF_ERROR(MakeDirs(root_ + "/tmp"));

  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(std::vector<std::string> blobs,
                   ListDir(root_ + "/blobs/sha256"));
  for (const auto& name : blobs) {
    if (!IsHex64(name)) continue;
    struct stat st;
    std::string path = root_ + "/blobs/sha256/" + name;
    if (lstat(path.c_str(), &st) != 0)
      return ErrnoStatus(errno, "lstat(%s)", path);
    if (!S_ISREG(st.st_mode)) continue;
    Item item{false, name, st.st_size, MtimeNs(st), 0};
    items_[Key(false, name)] = item;
  }
  ASSIGN_OR_RETURN(std::vector<std::string> snaps,
                   ListDir(root_ + "/snapshots"));
  std::set<std::string> dirs;
  for (const auto& name : snaps) {
    if (IsHex64(name)) dirs.insert(name);
  }
  for (const auto& name : snaps) {
    absl::string_view hex = name;
    if (!absl::ConsumeSuffix(&hex, ".size") || !IsHex64(hex)) continue;
    if (dirs.count(std::string(hex)) == 0) {
      unlink((root_ + "/snapshots/" + name).c_str());  // its snapshot is gone
    }
  }
  for (const auto& hex : dirs) {
    std::string meta = root_ + "/snapshots/" + hex + ".size";
    Item item{true, hex, 0, 0, 0};
    struct stat st;
    absl::StatusOr<std::string> text = ReadFile(meta);
    if (text.ok() && absl::SimpleAtoi(*text, &item.size) &&
        stat(meta.c_str(), &st) == 0) {
      item.last_used_ns = MtimeNs(st);
    } else {
      // Renamed into place but the size was never recorded: measure it now.
      ASSIGN_OR_RETURN(item.size, TreeSize(root_ + "/snapshots/" + hex));
      RETURN_IF_ERROR(WriteFileAtomic(meta, absl::StrCat(item.size)));
      item.last_used_ns = NowNs();
    }
    items_[Key(true, hex)] = item;
  }
  LS_LOG(INFO) << "content store " << root_ << ": " << items_.size()
               << " items";
  return absl::OkStatus();
}

int64_t ContentStore::NextUseTime() {
  last_use_ns_ = std::max(NowNs(), last_use_ns_ + 1);
  return last_use_ns_;
}

void ContentStore::Touch(Item& item) {
  item.last_used_ns = NextUseTime();
  // Persist the use for the next Open(); the in-memory order stays exact.
  std::string path = item.snapshot
                         ? absl::StrCat(root_, "/snapshots/", item.hex, ".size")
                         : ItemPath(item);
  struct timespec ts[2] = {
      {0, UTIME_OMIT},
      {item.last_used_ns / 1000000000, item.last_used_ns % 1000000000}};
  utimensat(AT_FDCWD, path.c_str(), ts, 0);
}

ContentStore::Lease ContentStore::MakeLease(Item& item) {
  ++item.refs;
  Touch(item);
  return Lease(this, Key(item.snapshot, item.hex), ItemPath(item));
}

void ContentStore::Unref(const std::string& key) {
  absl::MutexLock lock(&mu_);
  auto it = items_.find(key);
  if (it != items_.end() && it->second.refs > 0) --it->second.refs;
}

// --- Blobs -----------------------------------------------------------------

std::string ContentStore::BlobPath(absl::string_view digest) const {
  absl::string_view hex = digest;
  absl::ConsumePrefix(&hex, "sha256:");
  return absl::StrCat(root_, "/blobs/sha256/", hex);
}

bool ContentStore::Has(absl::string_view digest) const {
  absl::StatusOr<std::string> hex = HexOf(digest);
  if (!hex.ok()) return false;
  absl::MutexLock lock(&mu_);
  return items_.count(Key(false, *hex)) > 0;
}

absl::StatusOr<int64_t> ContentStore::BlobSize(absl::string_view digest) const {
  ASSIGN_OR_RETURN(std::string hex, HexOf(digest));
  absl::MutexLock lock(&mu_);
  auto it = items_.find(Key(false, hex));
  if (it == items_.end()) {
    return absl::NotFoundError(absl::StrCat("blob ", digest, " not in store"));
  }
  return it->second.size;
}

absl::StatusOr<std::string> ContentStore::ReadBlob(
    absl::string_view digest) const {
  ASSIGN_OR_RETURN(std::string hex, HexOf(digest));
  if (!Has(digest)) {
    return absl::NotFoundError(absl::StrCat("blob ", digest, " not in store"));
  }
  return ReadFile(BlobPath(digest));
}

absl::StatusOr<std::string> ContentStore::NewTempPath(
    absl::string_view prefix) {
  absl::MutexLock lock(&mu_);
  return absl::StrCat(root_, "/tmp/", prefix, "-", getpid(), "-",
                      ++temp_counter_);
}

absl::Status ContentStore::AddBlob(absl::string_view hex, int64_t size) {
  absl::MutexLock lock(&mu_);
  Item& item = items_[Key(false, hex)];
  item.snapshot = false;
  item.hex = std::string(hex);
  item.size = size;
  Touch(item);
  return absl::OkStatus();
}

absl::Status ContentStore::CommitTemp(const std::string& tmp_path,
                                      absl::string_view expected_digest) {
  absl::StatusOr<std::string> hex = HexOf(expected_digest);
  absl::Status status = hex.status();
  if (status.ok()) {
    absl::StatusOr<std::string> actual = Sha256File(tmp_path);
    status = actual.status();
    if (status.ok() && *actual != expected_digest) {
      status = absl::DataLossError(
          absl::StrCat("blob digest mismatch: expected ", expected_digest,
                       ", content hashes to ", *actual));
    }
  }
  struct stat st;
  if (status.ok() && stat(tmp_path.c_str(), &st) != 0) {
    status = ErrnoStatus(errno, "stat(%s)", tmp_path);
  }
  if (status.ok() && chmod(tmp_path.c_str(), 0444) != 0) {
    status = ErrnoStatus(errno, "chmod(%s)", tmp_path);
  }
  if (status.ok()) status = FsyncPath(tmp_path);
  if (status.ok()) {
    std::string dest = BlobPath(expected_digest);
    if (rename(tmp_path.c_str(), dest.c_str()) != 0) {
      status = ErrnoStatus(errno, "rename(%s, %s)", tmp_path, dest);
    }
  }
  if (!status.ok()) {
    unlink(tmp_path.c_str());
    return status;
  }
  return AddBlob(*hex, st.st_size);
}

absl::StatusOr<std::string> ContentStore::Put(absl::string_view bytes) {
  std::string digest = Sha256Digest(bytes);
  ASSIGN_OR_RETURN(std::string tmp, NewTempPath("put"));
  RETURN_IF_ERROR(WriteFileAtomic(tmp, bytes, 0444));
  RETURN_IF_ERROR(CommitTemp(tmp, digest));
  return digest;
}

absl::Status ContentStore::Ingest(const std::string& path,
                                  absl::string_view expected_digest) {
  RETURN_IF_ERROR(HexOf(expected_digest).status());
  ASSIGN_OR_RETURN(std::string tmp, NewTempPath("ingest"));
  UniqueFd in(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!in) return ErrnoStatus(errno, "open(%s)", path);
  UniqueFd out(
      open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (!out) return ErrnoStatus(errno, "open(%s)", tmp);
  absl::Status copied = CopyFdContents(in.get(), out.get(), path, tmp);
  if (!copied.ok()) {
    unlink(tmp.c_str());
    return copied;
  }
  out.reset();
  absl::Status s = CommitTemp(tmp, expected_digest);
  if (!s.ok()) {
    return absl::Status(s.code(),
                        absl::StrCat("ingest ", path, ": ", s.message()));
  }
  return s;
}

absl::StatusOr<ContentStore::Lease> ContentStore::AcquireBlob(
    absl::string_view digest) {
  ASSIGN_OR_RETURN(std::string hex, HexOf(digest));
  absl::MutexLock lock(&mu_);
  auto it = items_.find(Key(false, hex));
  if (it == items_.end()) {
    return absl::NotFoundError(absl::StrCat("blob ", digest, " not in store"));
  }
  return MakeLease(it->second);
}

// --- Snapshots -------------------------------------------------------------

std::string ContentStore::SnapshotPath(absl::string_view diff_id) const {
  absl::string_view hex = diff_id;
  absl::ConsumePrefix(&hex, "sha256:");
  return absl::StrCat(root_, "/snapshots/", hex);
}

bool ContentStore::HasSnapshot(absl::string_view diff_id) const {
  absl::StatusOr<std::string> hex = HexOf(diff_id);
  if (!hex.ok()) return false;
  absl::MutexLock lock(&mu_);
  return items_.count(Key(true, *hex)) > 0;
}

absl::StatusOr<ContentStore::Lease> ContentStore::AcquireSnapshot(
    absl::string_view diff_id) {
  ASSIGN_OR_RETURN(std::string hex, HexOf(diff_id));
  absl::MutexLock lock(&mu_);
  auto it = items_.find(Key(true, hex));
  if (it == items_.end()) {
    return absl::NotFoundError(
        absl::StrCat("snapshot ", diff_id, " not in store"));
  }
  return MakeLease(it->second);
}

absl::StatusOr<std::string> ContentStore::PrepareSnapshot(
    absl::string_view diff_id) {
  ASSIGN_OR_RETURN(std::string hex, HexOf(diff_id));
  ASSIGN_OR_RETURN(std::string dir, NewTempPath("snap-" + hex.substr(0, 12)));
  if (mkdir(dir.c_str(), 0755) != 0)
    return ErrnoStatus(errno, "mkdir(%s)", dir);
  return dir;
}

void ContentStore::AbortSnapshot(const std::string& temp_dir) {
  absl::Status s = RemoveTree(temp_dir);
  if (!s.ok()) LS_LOG(WARNING) << "discard " << temp_dir << ": " << s;
}

absl::StatusOr<ContentStore::Lease> ContentStore::CommitSnapshot(
    absl::string_view diff_id, const std::string& temp_dir) {
  absl::StatusOr<std::string> hex = HexOf(diff_id);
  if (!hex.ok()) {
    AbortSnapshot(temp_dir);
    return hex.status();
  }
  absl::StatusOr<int64_t> size = TreeSize(temp_dir);
  if (!size.ok()) {
    AbortSnapshot(temp_dir);
    return size.status();
  }
  const std::string dest = SnapshotPath(diff_id);
  const std::string meta = dest + ".size";
  absl::StatusOr<Lease> result;
  bool discard = false;
  {
    absl::MutexLock lock(&mu_);
    auto it = items_.find(Key(true, *hex));
    if (it != items_.end()) {
      result = MakeLease(it->second);
      discard = true;  // another extraction got there first
    } else {
      // The size goes down first: a crash between the two leaves a stray .size
      // that Open() removes, never a snapshot without its size.
      absl::Status s = WriteFileAtomic(meta, absl::StrCat(*size));
      if (s.ok() && rename(temp_dir.c_str(), dest.c_str()) != 0) {
        s = ErrnoStatus(errno, "rename(%s, %s)", temp_dir, dest);
        unlink(meta.c_str());
      }
      if (s.ok()) {
        Item& item = items_[Key(true, *hex)];
        item.snapshot = true;
        item.hex = *hex;
        item.size = *size;
        result = MakeLease(item);
      } else {
        result = s;
        discard = true;
      }
    }
  }
  if (discard) AbortSnapshot(temp_dir);
  return result;
}

absl::StatusOr<ContentStore::Lease> ContentStore::GetOrCreateSnapshot(
    absl::string_view diff_id, const FillFn& fill) {
  ASSIGN_OR_RETURN(std::string hex, HexOf(diff_id));
  {
    absl::MutexLock lock(&mu_);
    for (;;) {
      auto it = items_.find(Key(true, hex));
      if (it != items_.end()) return MakeLease(it->second);
      if (filling_.count(hex) == 0) break;
      filled_.Wait(&mu_);
    }
    filling_.insert(hex);
  }
  absl::StatusOr<Lease> result;
  absl::StatusOr<std::string> dir = PrepareSnapshot(diff_id);
  if (!dir.ok()) {
    result = dir.status();
  } else {
    absl::Status s = fill(*dir);
    if (s.ok()) {
      result = CommitSnapshot(diff_id, *dir);
    } else {
      AbortSnapshot(*dir);
      result = s;
    }
  }
  absl::MutexLock lock(&mu_);
  filling_.erase(hex);
  filled_.SignalAll();
  return result;
}

// --- Accounting and collection ---------------------------------------------

int64_t ContentStore::TotalBytes() const {
  absl::MutexLock lock(&mu_);
  int64_t total = 0;
  for (const auto& [key, item] : items_) total += item.size;
  return total;
}

int ContentStore::RefCount(absl::string_view digest, bool snapshot) const {
  absl::StatusOr<std::string> hex = HexOf(digest);
  if (!hex.ok()) return 0;
  absl::MutexLock lock(&mu_);
  auto it = items_.find(Key(snapshot, *hex));
  return it == items_.end() ? 0 : it->second.refs;
}

absl::StatusOr<ContentStore::GcResult> ContentStore::GarbageCollect(
    int64_t budget_bytes) {
  GcResult result;
  std::vector<std::string> trash;
  {
    absl::MutexLock lock(&mu_);
    int64_t total = 0;
    std::vector<const Item*> candidates;
    for (const auto& [key, item] : items_) {
      total += item.size;
      if (item.refs == 0) candidates.push_back(&item);
    }
    std::sort(candidates.begin(), candidates.end(),
              [](const Item* a, const Item* b) {
                if (a->last_used_ns != b->last_used_ns) {
                  return a->last_used_ns < b->last_used_ns;
                }
                return a->hex < b->hex;
              });
    std::vector<std::string> remove_keys;
    for (const Item* item : candidates) {
      if (total <= budget_bytes) break;
      const std::string path = ItemPath(*item);
      if (item->snapshot) {
        // Out of sight at once; the slow delete happens without the lock.
        std::string dest =
            absl::StrCat(root_, "/tmp/trash-", item->hex, "-", ++temp_counter_);
        if (rename(path.c_str(), dest.c_str()) != 0) {
          return ErrnoStatus(errno, "rename(%s, %s)", path, dest);
        }
        unlink((path + ".size").c_str());
        trash.push_back(dest);
        ++result.snapshots_removed;
      } else {
        if (unlink(path.c_str()) != 0 && errno != ENOENT) {
          return ErrnoStatus(errno, "unlink(%s)", path);
        }
        ++result.blobs_removed;
      }
      total -= item->size;
      result.bytes_freed += item->size;
      remove_keys.push_back(Key(item->snapshot, item->hex));
    }
    for (const auto& k : remove_keys) items_.erase(k);
    result.bytes_remaining = total;
  }
  for (const auto& dir : trash) {
    absl::Status s = RemoveTree(dir);
    if (!s.ok()) LS_LOG(WARNING) << "gc: remove " << dir << ": " << s;
  }
  LS_LOG(INFO) << "gc " << root_ << ": removed " << result.blobs_removed
               << " blobs and " << result.snapshots_removed
               << " snapshots, freed " << result.bytes_freed << " bytes, "
               << result.bytes_remaining << " remain";
  return result;
}

}  // namespace longshore::image
