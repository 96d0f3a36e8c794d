#include "client/context_sync.h"

#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "client/context_index.h"
#include "common/context_manifest.h"
#include "common/errno_status.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "common/unique_fd.h"

namespace longshore::client {
namespace {

constexpr size_t kChunkBytes = 1 << 20;
constexpr size_t kFindBatch = 8192;

absl::Status FromGrpc(const grpc::Status& s, const std::string& what) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                      absl::StrCat(what, ": ", s.error_message()));
}

// Indexes into `digests` the scheduler lacks, asked in batches.
absl::StatusOr<std::vector<size_t>> FindMissing(
    v1::BuildService::StubInterface* stub,
    const std::vector<std::string>& digests, int64_t context_size) {
  std::vector<size_t> missing;
  for (size_t start = 0; start < digests.size(); start += kFindBatch) {
    size_t end = std::min(digests.size(), start + kFindBatch);
    v1::FindMissingContentRequest req;
    req.set_context_size(context_size);
    for (size_t i = start; i < end; ++i) req.add_digests(digests[i]);
    v1::FindMissingContentResponse resp;
    grpc::ClientContext cc;
    RETURN_IF_ERROR(FromGrpc(stub->FindMissingContent(&cc, req, &resp),
                             "scheduler FindMissingContent"));
    for (int m : resp.missing()) {
      if (m < 0 || static_cast<size_t>(m) >= end - start) {
        return absl::InternalError("FindMissingContent: index out of range");
      }
      missing.push_back(start + static_cast<size_t>(m));
    }
  }
  return missing;
}

// What to upload: a file on disk (hashed again as it is read) or bytes.
struct Upload {
  std::string digest;
  int64_t size = 0;
  std::string path;   // A file of the context...
  std::string bytes;  // ...or a manifest chunk.
};

// Thrown-away state of a file that changed after it was hashed.
struct Changed {
  std::string path;
};

absl::Status SendAll(v1::BuildService::StubInterface* stub,
                     const std::vector<Upload>& uploads,
                     const std::function<bool()>& cancelled, SyncedContext* out,
                     Changed* changed) {
  if (uploads.empty()) return absl::OkStatus();
  grpc::ClientContext cc;
  v1::UploadContentResponse resp;
  auto writer = stub->UploadContent(&cc, &resp);
  absl::Status local;
  std::string buf(kChunkBytes, '\0');
  for (const Upload& u : uploads) {
    v1::UploadContentRequest header;
    header.mutable_header()->set_digest(u.digest);
    header.mutable_header()->set_size(u.size);
    if (!writer->Write(header)) break;
    if (u.path.empty()) {
      v1::UploadContentRequest data;
      data.set_data(u.bytes);
      if (!u.bytes.empty() && !writer->Write(data)) break;
    } else {
      // The index vouched for (or this run hashed) these bytes; hash them
      // again as they go, so a file changed behind the index's back is
      // caught here, not only by the scheduler's check.
      UniqueFd fd(open(u.path.c_str(), O_RDONLY | O_CLOEXEC));
      if (!fd) {
        local = ErrnoStatus(errno, "open(%s)", u.path);
        break;
      }
      Sha256 h;
      int64_t left = u.size;
      bool ok = true;
      while (left > 0 && ok) {
        ssize_t n = read(fd.get(), buf.data(),
                         static_cast<size_t>(std::min<int64_t>(
                             left, static_cast<int64_t>(buf.size()))));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
          local = ErrnoStatus(errno, "read(%s)", u.path);
          break;
        }
        if (n == 0) break;
        if (cancelled && cancelled()) {
          // The scheduler keeps only whole, verified contents; nothing was
          // submitted.
          local = absl::CancelledError("sending the context was interrupted");
          break;
        }
        h.Update(buf.data(), static_cast<size_t>(n));
        v1::UploadContentRequest data;
        data.set_data(buf.data(), static_cast<size_t>(n));
        ok = writer->Write(data);
        left -= n;
      }
      if (!local.ok() || !ok) break;
      if (left != 0 || h.Digest() != u.digest) {
        changed->path = u.path;
        local = absl::AbortedError(
            absl::StrCat(u.path, " changed while the context was sent"));
        break;
      }
    }
    ++out->files_sent;
    out->bytes_sent += u.size;
  }
  if (!local.ok()) {
    cc.TryCancel();
    writer->Finish().ok();
    return local;
  }
  writer->WritesDone();
  return FromGrpc(writer->Finish(), "scheduler UploadContent");
}

absl::StatusOr<SyncedContext> SyncOnce(v1::BuildService::StubInterface* stub,
                                       const SyncOptions& opts,
                                       ContextIndex* old_index,
                                       Changed* changed) {
  ASSIGN_OR_RETURN(std::vector<ListedEntry> listed, ListContext(opts.pack));
  absl::Time now = absl::Now();
  ContextIndex next;
  std::vector<ContextFile> files(listed.size());
  std::vector<std::string> to_hash;
  std::vector<size_t> to_hash_index;
  SyncedContext out;
  for (size_t i = 0; i < listed.size(); ++i) {
    const ListedEntry& e = listed[i];
    ContextFile& f = files[i];
    f.entry.set_path(e.rel);
    f.entry.set_mode(e.st.st_mode);
    f.mtime = e.st.st_mtim.tv_sec;
    if (S_ISREG(e.st.st_mode)) {
      f.entry.set_size(e.st.st_size);
      if (auto d = old_index->Lookup(e.rel, e.st)) {
        f.entry.set_digest(*d);
        next.Record(e.rel, e.st, *d, now);
      } else {
        to_hash.push_back(e.path);
        to_hash_index.push_back(i);
        out.hashed_bytes += e.st.st_size;
      }
    } else if (S_ISLNK(e.st.st_mode)) {
      std::string target(static_cast<size_t>(e.st.st_size) + 1, '\0');
      ssize_t n = readlink(e.path.c_str(), target.data(), target.size());
      if (n < 0) return ErrnoStatus(errno, "readlink(%s)", e.path);
      target.resize(static_cast<size_t>(n));
      f.entry.set_link_target(target);
    }
  }
  int threads = opts.hash_threads;
  if (threads <= 0) {
    threads = std::min(
        8, std::max(1, static_cast<int>(std::thread::hardware_concurrency())));
  }
  ASSIGN_OR_RETURN(std::vector<std::string> digests,
                   HashFilesInParallel(to_hash, threads, opts.pack.cancelled));
  for (size_t k = 0; k < to_hash.size(); ++k) {
    size_t i = to_hash_index[k];
    files[i].entry.set_digest(digests[k]);
    // A file that changed size since it was listed would be sent wrongly.
    struct stat st;
    if (lstat(listed[i].path.c_str(), &st) != 0) {
      return ErrnoStatus(errno, "lstat(%s)", listed[i].path);
    }
    if (st.st_size != listed[i].st.st_size) {
      changed->path = listed[i].path;
      return absl::AbortedError(
          absl::StrCat(listed[i].path, " changed while it was hashed"));
    }
    next.Record(listed[i].rel, listed[i].st, digests[k], now);
  }

  BuiltManifest m = BuildManifest(files);
  out.digest = m.digest;
  out.root = m.root;
  out.entries = static_cast<int64_t>(files.size());
  out.total_size = m.total_size;

  // Asked of the caller's own content store every time (a root another
  // submitter sent may be held while this one's store lacks its chunks);
  // a held chunk's files were stored before it.
  {
    std::vector<std::string> chunk_digests;
    for (const ManifestChunk& c : m.chunks) chunk_digests.push_back(c.digest);
    ASSIGN_OR_RETURN(std::vector<size_t> missing_chunks,
                     FindMissing(stub, chunk_digests, m.total_size));
    // The files of the missing chunks (a stored chunk's files were stored
    // before it), each asked once.
    absl::flat_hash_map<std::string, size_t> first_file;  // digest -> entry
    for (size_t i = 0; i < files.size(); ++i) {
      if (S_ISREG(listed[i].st.st_mode)) {
        first_file.emplace(files[i].entry.digest(), i);
      }
    }
    std::vector<std::string> wanted;
    absl::flat_hash_set<std::string> seen;
    for (size_t c : missing_chunks) {
      for (const std::string& d : m.chunks[c].file_digests) {
        if (seen.insert(d).second) wanted.push_back(d);
      }
    }
    ASSIGN_OR_RETURN(std::vector<size_t> missing_files,
                     FindMissing(stub, wanted, m.total_size));
    std::vector<Upload> uploads;
    for (size_t k : missing_files) {
      size_t i = first_file[wanted[k]];
      Upload u;
      u.digest = wanted[k];
      u.size = files[i].entry.size();
      u.path = listed[i].path;
      uploads.push_back(std::move(u));
    }
    for (size_t c : missing_chunks) {
      Upload u;
      u.digest = m.chunks[c].digest;
      u.size = static_cast<int64_t>(m.chunks[c].bytes.size());
      u.bytes = m.chunks[c].bytes;
      uploads.push_back(std::move(u));
    }
    RETURN_IF_ERROR(SendAll(stub, uploads, opts.pack.cancelled, &out, changed));
  }
  *old_index = std::move(next);
  return out;
}

}  // namespace

absl::StatusOr<SyncedContext> SyncContext(v1::BuildService::StubInterface* stub,
                                          const SyncOptions& opts) {
  ContextIndex index = ContextIndex::Load(opts.index_path);
  // A file that changes while it is hashed or sent: once more, hashing
  // everything again (the index is no longer trusted).
  for (int attempt = 0;; ++attempt) {
    Changed changed;
    absl::StatusOr<SyncedContext> synced =
        SyncOnce(stub, opts, &index, &changed);
    if (synced.ok()) {
      index.Save(opts.index_path).IgnoreError();  // Only a cache.
      return synced;
    }
    if (changed.path.empty() || attempt > 0) return synced.status();
    index = ContextIndex();
  }
}

}  // namespace longshore::client
