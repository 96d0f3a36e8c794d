#include "scheduler/context_files.h"

#include <sys/stat.h>

#include "absl/strings/str_cat.h"
#include "common/context_manifest.h"
#include "common/file_util.h"
#include "common/sha256.h"
#include "common/status_macros.h"

namespace longshore::scheduler {
namespace {

// The directory name of an owner's store: not the name itself, which may
// hold any character.
std::string OwnerDir(const std::string& owner) {
  return Sha256Digest(absl::StrCat("owner:", owner)).substr(7, 32);
}

}  // namespace

absl::StatusOr<std::unique_ptr<ContextFiles>> ContextFiles::Open(
    const std::string& state_dir) {
  std::string dir = state_dir + "/files";
  RETURN_IF_ERROR(MakeDirs(dir, 0700));
  std::unique_ptr<ContextFiles> files(new ContextFiles(dir));
  absl::MutexLock l(&files->mu_);
  RETURN_IF_ERROR(files->LoadOwners());
  return files;
}

absl::Status ContextFiles::LoadOwners() {
  ASSIGN_OR_RETURN(std::vector<std::string> names, ListDirSorted(dir_));
  for (const std::string& n : names) {
    absl::StatusOr<std::string> owner = ReadFile(dir_ + "/" + n + "/owner");
    if (!owner.ok() || OwnerDir(*owner) != n) continue;
    ASSIGN_OR_RETURN(std::unique_ptr<ContentStore> store,
                     ContentStore::Open(dir_ + "/" + n, /*durable=*/true));
    stores_[*owner] = std::move(store);
  }
  return absl::OkStatus();
}

absl::StatusOr<ContentStore*> ContextFiles::For(const std::string& owner) {
  absl::MutexLock l(&mu_);
  auto it = stores_.find(owner);
  if (it != stores_.end()) return it->second.get();
  std::string dir = dir_ + "/" + OwnerDir(owner);
  ASSIGN_OR_RETURN(std::unique_ptr<ContentStore> store,
                   ContentStore::Open(dir, /*durable=*/true));
  RETURN_IF_ERROR(WriteFileAtomic(dir + "/owner", owner, 0600));
  ContentStore* raw = store.get();
  stores_[owner] = std::move(store);
  return raw;
}

absl::StatusOr<ManifestContents> ContextFiles::Resolve(
    const std::string& owner, const std::string& root_bytes) {
  ASSIGN_OR_RETURN(ContentStore * store, For(owner));
  ASSIGN_OR_RETURN(ParsedManifest manifest, ParseManifest(root_bytes));
  std::vector<longshore::v1::ContextManifestChunk> chunks;
  chunks.reserve(manifest.root.chunks_size());
  ManifestContents out;
  for (const std::string& d : manifest.root.chunks()) {
    absl::StatusOr<std::string> bytes = store->Read(d);
    if (absl::IsNotFound(bytes.status())) {
      return absl::FailedPreconditionError(absl::StrCat(
          "context manifest chunk ", d,
          " was not uploaded (FindMissingContent, then UploadContent)"));
    }
    if (!bytes.ok()) return bytes.status();
    ASSIGN_OR_RETURN(longshore::v1::ContextManifestChunk chunk,
                     ParseChunk(*bytes));
    store->Touch(d);
    out.digests.insert(d);
    chunks.push_back(std::move(chunk));
  }
  RETURN_IF_ERROR(CheckEntries(manifest, chunks));
  for (const auto& chunk : chunks) {
    for (const auto& e : chunk.entries()) {
      if ((e.mode() & S_IFMT) != S_IFREG) continue;
      if (!out.digests.insert(e.digest()).second) continue;
      absl::StatusOr<int64_t> size = store->Stat(e.digest());
      if (absl::IsNotFound(size.status())) {
        return absl::FailedPreconditionError(absl::StrCat(
            "context file ", e.path(), " (", e.digest(), ") was not uploaded"));
      }
      if (!size.ok()) return size.status();
      if (*size != e.size()) {
        return absl::InvalidArgumentError(
            absl::StrCat("context file ", e.path(), " is ", e.size(),
                         " bytes in the manifest but its content ", *size));
      }
      store->Touch(e.digest());
    }
  }
  out.total_size = manifest.root.total_size();
  return out;
}

absl::StatusOr<absl::flat_hash_map<std::string, int64_t>>
ContextFiles::Usage() {
  absl::flat_hash_map<std::string, int64_t> out;
  absl::MutexLock l(&mu_);
  for (const auto& [owner, store] : stores_) {
    ASSIGN_OR_RETURN(ContentStore::Usage u, store->Measure());
    out[owner] += u.bytes;
  }
  return out;
}

absl::StatusOr<ContentStore::Usage> ContextFiles::RemoveUnusedSince(
    absl::Time cutoff) {
  ContentStore::Usage total;
  absl::MutexLock l(&mu_);
  for (const auto& [owner, store] : stores_) {
    ASSIGN_OR_RETURN(ContentStore::Usage u, store->RemoveUnusedSince(cutoff));
    total.files += u.files;
    total.bytes += u.bytes;
  }
  return total;
}

}  // namespace longshore::scheduler
