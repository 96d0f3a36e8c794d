// The file list of a build context for content-addressed sync
// (docs/context-sync.md): entries as the context tar would carry them, cut
// into chunks by their paths' hashes, and a root naming the chunks and the
// entries' modification times. The client builds it; the scheduler and the
// workers parse and check it before trusting a byte of it.
#ifndef LONGSHORE_COMMON_CONTEXT_MANIFEST_H_
#define LONGSHORE_COMMON_CONTEXT_MANIFEST_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "proto/longshore.pb.h"

namespace longshore {

// One entry with its modification time (seconds).
struct ContextFile {
  longshore::v1::ContextEntry entry;
  int64_t mtime = 0;
};

struct ManifestChunk {
  std::string digest;
  std::string bytes;  // A serialized ContextManifestChunk.
  // Digests of the regular files in it, in order (repeats kept).
  std::vector<std::string> file_digests;
};

struct BuiltManifest {
  std::string digest;  // Of `root`: the context's name (spec.context_digest).
  std::string root;    // A serialized ContextManifest.
  std::vector<ManifestChunk> chunks;
  int64_t total_size = 0;
};

// Entries in the order given (the walk order of the context).
BuiltManifest BuildManifest(const std::vector<ContextFile>& files);

// A parsed root, checked: version 1, valid chunk digests, one mtime per entry.
struct ParsedManifest {
  longshore::v1::ContextManifest root;
  std::vector<int64_t> mtimes;
};
absl::StatusOr<ParsedManifest> ParseManifest(const std::string& root_bytes);

// A parsed chunk whose entries are each well formed: a relative path without
// "", "." or ".." components, a regular file (with a valid digest and a
// non-negative size), directory or symlink (with a target).
absl::StatusOr<longshore::v1::ContextManifestChunk> ParseChunk(
    const std::string& bytes);

// Checks the entries of all chunks together against the root: their count
// and total size, unique paths, and no entry beneath a symlink entry (so
// materializing them never writes through a link).
absl::Status CheckEntries(
    const ParsedManifest& manifest,
    const std::vector<longshore::v1::ContextManifestChunk>& chunks);

}  // namespace longshore

#endif  // LONGSHORE_COMMON_CONTEXT_MANIFEST_H_
