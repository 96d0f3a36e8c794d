// The scheduler's side of content-addressed context sync
// (docs/context-sync.md): one content store per submitter under
// <state>/files/<hash of the submitter>/, holding the files and manifest
// chunks of its contexts (the manifest roots live with the context tars in
// BlobStore). A submitter sees, uploads and builds from its own store only,
// so no submitter learns what another holds; the store counts against its
// --submitter-quota-bytes and retention removes what was unused for
// --retention.
#ifndef LONGSHORE_SCHEDULER_CONTEXT_FILES_H_
#define LONGSHORE_SCHEDULER_CONTEXT_FILES_H_

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/content_store.h"

namespace longshore::scheduler {

// What a context manifest names, once checked complete.
struct ManifestContents {
  absl::flat_hash_set<std::string> digests;  // Its chunks and files.
  int64_t total_size = 0;
};

class ContextFiles {
 public:
  static absl::StatusOr<std::unique_ptr<ContextFiles>> Open(
      const std::string& state_dir);

  // The store of `owner` (a submitter's name; "" for an open scheduler's
  // anonymous callers), created when missing.
  absl::StatusOr<ContentStore*> For(const std::string& owner);

  // Parses the root and its chunks from `owner`'s store, checks them
  // (common/context_manifest.h) and that every file is held, and marks them
  // used. FAILED_PRECONDITION names the first chunk or file missing.
  absl::StatusOr<ManifestContents> Resolve(const std::string& owner,
                                           const std::string& root_bytes);

  // Bytes held per owner, for the quota's recount.
  absl::StatusOr<absl::flat_hash_map<std::string, int64_t>> Usage();
  // Removes what no one used since `cutoff`.
  absl::StatusOr<ContentStore::Usage> RemoveUnusedSince(absl::Time cutoff);

 private:
  explicit ContextFiles(std::string dir) : dir_(std::move(dir)) {}
  absl::Status LoadOwners() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string dir_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::unique_ptr<ContentStore>> stores_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace longshore::scheduler

#endif  // LONGSHORE_SCHEDULER_CONTEXT_FILES_H_
