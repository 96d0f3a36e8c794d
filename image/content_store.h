// The worker's local content store: blobs by digest and extracted layer
// snapshots by diffID, with reference counts and least-recently-used garbage
// collection.
//
// On disk, below `root`:
//   blobs/sha256/<hex>      blob bytes, read-only (0444); mtime = last use
//   snapshots/<hex>/        a layer extracted in overlay lower-dir form
//   snapshots/<hex>.size    its disk usage in bytes; mtime = last use
//   tmp/                    blobs being written, snapshots being extracted,
//   trash
//
// Writes are crash-safe: a blob appears under blobs/ only by rename after its
// digest was verified; a snapshot only by renaming its fully extracted temp
// dir. Whatever a crash leaves in tmp/ is removed by Open(). One process owns a
// root at a time; within it the store is thread-safe.
#ifndef LONGSHORE_IMAGE_CONTENT_STORE_H_
#define LONGSHORE_IMAGE_CONTENT_STORE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace longshore::image {

class ContentStore {
 public:
  // Keeps a blob or snapshot from garbage collection while it lives. Move-only.
  class Lease {
   public:
    Lease() = default;
    Lease(Lease&& o) noexcept { *this = std::move(o); }
    Lease& operator=(Lease&& o) noexcept;
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease() { Release(); }

    // The blob file or snapshot directory.
    const std::string& path() const { return path_; }
    bool valid() const { return store_ != nullptr; }
    void Release();

   private:
    friend class ContentStore;
    Lease(ContentStore* store, std::string key, std::string path)
        : store_(store), key_(std::move(key)), path_(std::move(path)) {}
    ContentStore* store_ = nullptr;
    std::string key_;
    std::string path_;
  };

  struct GcResult {
    int blobs_removed = 0;
    int snapshots_removed = 0;
    int64_t bytes_freed = 0;
    int64_t bytes_remaining = 0;
  };

  // Creates the layout under `root` if needed, clears tmp/, and indexes what is
  // there.
  static absl::StatusOr<std::unique_ptr<ContentStore>> Open(
      const std::string& root);

  ContentStore(const ContentStore&) = delete;
  ContentStore& operator=(const ContentStore&) = delete;
  ~ContentStore();

  const std::string& root() const { return root_; }

  // --- Blobs. `digest` is "sha256:<hex>"; invalid digests are InvalidArgument.
  std::string BlobPath(absl::string_view digest) const;
  bool Has(absl::string_view digest) const;
  absl::StatusOr<int64_t> BlobSize(absl::string_view digest) const;
  absl::StatusOr<std::string> ReadBlob(absl::string_view digest) const;
  // Stores `bytes`, returns their digest.
  absl::StatusOr<std::string> Put(absl::string_view bytes);
  // Copies the file at `path` in, verifying it hashes to `expected_digest`.
  absl::Status Ingest(const std::string& path,
                      absl::string_view expected_digest);
  // A fresh path in tmp/ on the store's file system, for a writer (CommitLayer,
  // a download) that then hands it to CommitTemp.
  absl::StatusOr<std::string> NewTempPath(absl::string_view prefix);
  // Verifies the file at `tmp_path` (from NewTempPath) and renames it into
  // place. The temp file is gone afterwards, on success and on error.
  absl::Status CommitTemp(const std::string& tmp_path,
                          absl::string_view expected_digest);
  absl::StatusOr<Lease> AcquireBlob(absl::string_view digest);

  // --- Snapshots, keyed by diffID.
  std::string SnapshotPath(absl::string_view diff_id) const;
  bool HasSnapshot(absl::string_view diff_id) const;
  absl::StatusOr<Lease> AcquireSnapshot(absl::string_view diff_id);

  // Returns a lease on the snapshot for `diff_id`, calling `fill(dir)` to
  // extract it when it does not exist yet. Each diffID is filled at most once
  // at a time: other callers for the same diffID wait and then share the
  // result. When `fill` fails, its partial directory is removed and its error
  // returned.
  using FillFn = std::function<absl::Status(const std::string& dir)>;
  absl::StatusOr<Lease> GetOrCreateSnapshot(absl::string_view diff_id,
                                            const FillFn& fill);

  // The lower-level protocol under GetOrCreateSnapshot, for callers that
  // extract elsewhere: Prepare gives an empty temp dir on the same file system;
  // Commit renames it into place (or, when another one won the race, discards
  // it) and returns a lease; Abort removes it.
  absl::StatusOr<std::string> PrepareSnapshot(absl::string_view diff_id);
  absl::StatusOr<Lease> CommitSnapshot(absl::string_view diff_id,
                                       const std::string& temp_dir);
  void AbortSnapshot(const std::string& temp_dir);

  // --- Accounting and collection.
  int64_t TotalBytes() const;
  int RefCount(absl::string_view key_digest, bool snapshot) const;
  // Removes unreferenced blobs and snapshots, least recently used first, until
  // the total is at most `budget_bytes` (or nothing unreferenced is left).
  absl::StatusOr<GcResult> GarbageCollect(int64_t budget_bytes);

 private:
  struct Item {
    bool snapshot = false;
    std::string hex;
    int64_t size = 0;
    int64_t last_used_ns = 0;
    int refs = 0;
  };

  explicit ContentStore(std::string root) : root_(std::move(root)) {}
  absl::Status Load();
  static std::string Key(bool snapshot, absl::string_view hex);
  std::string ItemPath(const Item& item) const;
  // A strictly increasing use time, so LRU order is exact within a process.
  int64_t NextUseTime() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Touch(Item& item) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Lease MakeLease(Item& item) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Unref(const std::string& key);
  absl::Status AddBlob(absl::string_view hex, int64_t size);

  const std::string root_;
  mutable absl::Mutex mu_;
  absl::CondVar filled_;
  std::map<std::string, Item> items_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> filling_ ABSL_GUARDED_BY(mu_);  // snapshot hexes
  int64_t last_use_ns_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t temp_counter_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace longshore::image

#endif  // LONGSHORE_IMAGE_CONTENT_STORE_H_
