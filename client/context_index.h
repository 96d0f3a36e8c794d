// The client's index of context file digests, so files unchanged since the
// last build are not read again: one file per context directory, under
// $XDG_CACHE_HOME/longshore/context-index/ (or ~/.cache/longshore/...).
//
// An entry is trusted only while the file's path, size, mtime, ctime, inode
// and device all match. ctime is set by the kernel on every write and on
// every metadata change (touch -d included) and cannot be set back, so an
// edit that keeps the size and restores the mtime is still noticed. A file
// whose change time was within a second of its hashing may change again
// within the filesystem's timestamp granularity unseen, so it is hashed again
// next time. What the index gets wrong is still caught before it matters:
// the client hashes the bytes it uploads again, and the scheduler checks
// every upload against its digest (docs/context-sync.md).
#ifndef LONGSHORE_CLIENT_CONTEXT_INDEX_H_
#define LONGSHORE_CLIENT_CONTEXT_INDEX_H_

#include <sys/stat.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace longshore::client {

class ContextIndex {
 public:
  // The index file for the context directory `context_dir` (absolute), or ""
  // when neither XDG_CACHE_HOME nor HOME is set.
  static std::string PathFor(const std::string& context_dir);

  // An unreadable, missing or malformed file gives an empty index.
  static ContextIndex Load(const std::string& path);

  // The digest recorded for `rel` when `st` still matches it.
  std::optional<std::string> Lookup(const std::string& rel,
                                    const struct stat& st) const;
  // Records that `rel` with `st` hashed to `digest` at `hashed_at`.
  void Record(const std::string& rel, const struct stat& st,
              const std::string& digest, absl::Time hashed_at);
  void Forget(const std::string& rel) { entries_.erase(rel); }
  size_t size() const { return entries_.size(); }

  // Writes every entry atomically (a run records into a fresh index, so
  // files gone from the context drop out); the directory is created when
  // missing.
  absl::Status Save(const std::string& path) const;

 private:
  struct Entry {
    int64_t size = 0;
    int64_t mtime_ns = 0;
    int64_t ctime_ns = 0;
    uint64_t ino = 0;
    uint64_t dev = 0;
    std::string digest;
    bool racy = false;  // Hashed within a second of its last change.
  };
  absl::flat_hash_map<std::string, Entry> entries_;
};

// Digests ("sha256:<hex>") of the regular files `paths` (on disk), `threads`
// at a time; entry i is the digest of paths[i]. `cancelled`, when set, is
// asked before each file: a yes stops the hashing with a Cancelled error.
absl::StatusOr<std::vector<std::string>> HashFilesInParallel(
    const std::vector<std::string>& paths, int threads,
    const std::function<bool()>& cancelled = nullptr);

}  // namespace longshore::client

#endif  // LONGSHORE_CLIENT_CONTEXT_INDEX_H_
