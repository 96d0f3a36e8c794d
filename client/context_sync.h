// Content-addressed context sync (docs/context-sync.md): the client lists the
// context as the packer would, hashes what its index cannot vouch for, builds
// the manifest and sends the scheduler only the chunks and files it lacks.
// The Submit that follows carries the manifest's root as its context.
#ifndef LONGSHORE_CLIENT_CONTEXT_SYNC_H_
#define LONGSHORE_CLIENT_CONTEXT_SYNC_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "client/context_packer.h"
#include "proto/longshore.grpc.pb.h"

namespace longshore::client {

struct SyncedContext {
  std::string digest;  // Of the root: spec.context_digest.
  std::string root;    // The root's bytes, sent with Submit.
  int64_t entries = 0;
  int64_t total_size = 0;    // Bytes of the context's regular files.
  int64_t hashed_bytes = 0;  // Read to hash (not vouched for by the index).
  int64_t files_sent = 0;    // Files and chunks uploaded...
  int64_t bytes_sent = 0;    // ...and their bytes.
};

struct SyncOptions {
  PackOptions pack;
  // The index file (ContextIndex::PathFor); "" keeps no index.
  std::string index_path;
  int hash_threads = 0;  // 0: one per CPU, at most 8.
};

absl::StatusOr<SyncedContext> SyncContext(
    longshore::v1::BuildService::StubInterface* stub, const SyncOptions& opts);

}  // namespace longshore::client

#endif  // LONGSHORE_CLIENT_CONTEXT_SYNC_H_
