#include "worker/context_fetcher.h"

#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <sys/stat.h>
#include <unistd.h>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/context_manifest.h"
#include "common/errno_status.h"
#include "common/file_util.h"
#include "common/log.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "common/tar_extract.h"
#include "common/unique_fd.h"

namespace longshore::worker {

absl::StatusOr<std::string> ContextFetcher::Fetch(const std::string& digest,
                                                  const std::string& build_id) {
  if (!IsValidDigest(digest)) {
    return absl::InvalidArgumentError(
        absl::StrCat("context digest \"", digest, "\" is not sha256:<hex>"));
  }
  absl::string_view hex = digest;
  absl::ConsumePrefix(&hex, "sha256:");
  std::string dir = work_dir_ + "/contexts";
  RETURN_IF_ERROR(MakeDirs(dir, 0700));
  std::string path = absl::StrCat(dir, "/", hex, ".tar");
  if (PathExists(path)) return path;

  std::string tmp = absl::StrCat(path, ".part-", gettid());
  UniqueFd fd(
      open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!fd) return ErrnoStatus(errno, "open(%s)", tmp);
  Sha256 h;
  grpc::ClientContext cc;
  v1::FetchContextRequest req;
  req.set_digest(digest);
  req.set_build_id(build_id);
  std::unique_ptr<grpc::ClientReaderInterface<v1::ContextChunk>> reader;
  {
    absl::MutexLock l(&mu_);
    reader = stub_->FetchContext(&cc, req);
  }
  v1::ContextChunk chunk;
  absl::Status status;
  int64_t bytes = 0;
  while (reader->Read(&chunk)) {
    const std::string& d = chunk.data();
    bytes += static_cast<int64_t>(d.size());
    h.Update(d);
    for (size_t off = 0; off < d.size();) {
      ssize_t w = write(fd.get(), d.data() + off, d.size() - off);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) {
        status = ErrnoStatus(errno, "write(%s)", tmp);
        break;
      }
      off += w;
    }
    if (!status.ok()) break;
  }
  if (!status.ok()) cc.TryCancel();
  grpc::Status gs = reader->Finish();
  if (status.ok() && !gs.ok()) {
    status = absl::UnavailableError(
        absl::StrCat("fetching context ", digest,
                     " from the scheduler: ", gs.error_message()));
  }
  if (status.ok()) {
    std::string got = h.Digest();
    if (got != digest) {
      status = absl::DataLossError(
          absl::StrCat("context ", digest, " arrived with digest ", got));
    }
  }
  if (!status.ok()) {
    unlink(tmp.c_str());
    return status;
  }
  fd.reset();
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    unlink(tmp.c_str());
    return ErrnoStatus(err, "rename(%s)", path);
  }
  if (on_fetched_) on_fetched_(bytes);
  return path;
}

ContextFetcher::~ContextFetcher() = default;

namespace {

constexpr size_t kFetchBatch = 4096;
// The worker's context store keeps what a build used within a day, swept at
// most hourly (a content fetched and not used since goes).
constexpr absl::Duration kKeepUnused = absl::Hours(24);
constexpr absl::Duration kSweepEvery = absl::Hours(1);

// Writes one entry of a checked manifest beneath `dir` (fresh, and holding
// only what earlier entries made, so no symlink lies on the way).
absl::Status WriteEntry(const ContentStore& store, const std::string& dir,
                        const v1::ContextEntry& e, int64_t mtime) {
  std::string path = absl::StrCat(dir, "/", e.path());
  size_t slash = e.path().rfind('/');
  if (slash != std::string::npos) {
    RETURN_IF_ERROR(
        MakeDirs(absl::StrCat(dir, "/", e.path().substr(0, slash)), 0755));
  }
  struct timespec times[2] = {{mtime, 0}, {mtime, 0}};
  mode_t perm = e.mode() & 07777;
  switch (e.mode() & S_IFMT) {
    case S_IFDIR:
      if (mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) {
        return ErrnoStatus(errno, "mkdir(%s)", path);
      }
      return absl::OkStatus();  // Mode and time once its contents are in.
    case S_IFLNK:
      if (symlink(e.link_target().c_str(), path.c_str()) != 0) {
        return ErrnoStatus(errno, "symlink(%s)", path);
      }
      utimensat(AT_FDCWD, path.c_str(), times, AT_SYMLINK_NOFOLLOW);
      return absl::OkStatus();
    default: {
      ASSIGN_OR_RETURN(UniqueFd in, store.Open(e.digest()));
      UniqueFd out(open(path.c_str(),
                        O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                        0600));
      if (!out) return ErrnoStatus(errno, "create(%s)", path);
      RETURN_IF_ERROR(CopyFdContents(in.get(), out.get(), e.digest(), path));
      if (fchmod(out.get(), perm) != 0) {
        return ErrnoStatus(errno, "chmod(%s)", path);
      }
      if (futimens(out.get(), times) != 0) {
        return ErrnoStatus(errno, "utimens(%s)", path);
      }
      return absl::OkStatus();
    }
  }
}

}  // namespace

void ContextFetcher::SweepStore(const ContentStore& store) {
  absl::Time now = absl::Now();
  {
    absl::MutexLock l(&store_mu_);
    if (now < next_sweep_) return;
    next_sweep_ = now + kSweepEvery;
  }
  absl::StatusOr<ContentStore::Usage> removed =
      store.RemoveUnusedSince(now - kKeepUnused);
  if (!removed.ok()) {
    LS_LOG(WARNING) << "context store sweep: " << removed.status();
  } else if (removed->files > 0) {
    LS_LOG(INFO) << "context store: removed " << removed->files
                 << " contents unused for " << absl::FormatDuration(kKeepUnused)
                 << " (" << removed->bytes << " bytes)";
  }
}

absl::StatusOr<ContentStore*> ContextFetcher::Store() {
  absl::MutexLock l(&store_mu_);
  if (store_ == nullptr) {
    ASSIGN_OR_RETURN(
        store_, ContentStore::Open(work_dir_ + "/files", /*durable=*/false));
  }
  return store_.get();
}

absl::Status ContextFetcher::FetchContents(
    const std::string& build_id, const std::vector<std::string>& digests,
    int64_t* bytes) {
  ASSIGN_OR_RETURN(ContentStore * store, Store());
  for (size_t start = 0; start < digests.size(); start += kFetchBatch) {
    size_t end = std::min(digests.size(), start + kFetchBatch);
    v1::FetchContextFilesRequest req;
    req.set_build_id(build_id);
    for (size_t i = start; i < end; ++i) req.add_digests(digests[i]);
    grpc::ClientContext cc;
    std::unique_ptr<grpc::ClientReaderInterface<v1::ContextFileChunk>> reader;
    {
      absl::MutexLock l(&mu_);
      reader = stub_->FetchContextFiles(&cc, req);
    }
    v1::ContextFileChunk chunk;
    absl::Status status;
    std::unique_ptr<ContentStore::Writer> writer;
    int current = -1;
    std::string current_digest;
    size_t done = 0;
    while (status.ok() && reader->Read(&chunk)) {
      if (chunk.index() != current) {
        if (writer != nullptr || chunk.index() < 0 ||
            static_cast<size_t>(chunk.index()) >= end - start) {
          status =
              absl::DataLossError("FetchContextFiles: contents out of order");
          break;
        }
        current = chunk.index();
        current_digest = digests[start + static_cast<size_t>(current)];
        // The size is checked against the manifest where it is known;
        // here the digest binds the bytes.
        auto w = store->NewWriter(current_digest, ContentStore::kUnknownSize);
        if (!w.ok()) {
          status = w.status();
          break;
        }
        writer = std::move(*w);
      }
      status = writer->Append(chunk.data());
      *bytes += static_cast<int64_t>(chunk.data().size());
      if (status.ok() && chunk.last()) {
        status = writer->Commit();
        writer.reset();
        current = -1;
        ++done;
      }
    }
    if (!status.ok()) cc.TryCancel();
    grpc::Status gs = reader->Finish();
    if (status.ok() && !gs.ok()) {
      status = absl::UnavailableError(absl::StrCat(
          "fetching context files from the scheduler: ", gs.error_message()));
    }
    if (status.ok() && done != end - start) {
      status = absl::DataLossError(absl::StrCat(
          "FetchContextFiles sent ", done, " of ", end - start, " contents"));
    }
    RETURN_IF_ERROR(status);
  }
  return absl::OkStatus();
}

absl::Status ContextFetcher::Materialize(const v1::BuildSpec& spec,
                                         const std::string& build_id,
                                         const std::string& dir,
                                         int64_t* fetched_bytes) {
  *fetched_bytes = 0;
  ASSIGN_OR_RETURN(std::string fetched, Fetch(spec.context_digest(), build_id));
  if (!spec.context_manifest()) return ExtractContext(fetched, dir);

  ASSIGN_OR_RETURN(std::string root, ReadFile(fetched));
  ASSIGN_OR_RETURN(ParsedManifest manifest, ParseManifest(root));
  ASSIGN_OR_RETURN(ContentStore * store, Store());
  std::vector<std::string> missing;
  for (const std::string& d : manifest.root.chunks()) {
    if (!store->Has(d)) missing.push_back(d);
  }
  RETURN_IF_ERROR(FetchContents(build_id, missing, fetched_bytes));
  std::vector<v1::ContextManifestChunk> chunks;
  for (const std::string& d : manifest.root.chunks()) {
    store->Touch(d);
    ASSIGN_OR_RETURN(std::string bytes, store->Read(d));
    ASSIGN_OR_RETURN(v1::ContextManifestChunk chunk, ParseChunk(bytes));
    chunks.push_back(std::move(chunk));
  }
  RETURN_IF_ERROR(CheckEntries(manifest, chunks));
  missing.clear();
  absl::flat_hash_set<std::string> asked;
  for (const auto& chunk : chunks) {
    for (const auto& e : chunk.entries()) {
      if ((e.mode() & S_IFMT) != S_IFREG) continue;
      absl::StatusOr<int64_t> size = store->Stat(e.digest());
      if (size.ok()) {
        store->Touch(e.digest());  // Used: a concurrent sweep keeps it.
        if (*size != e.size()) {
          return absl::DataLossError(
              absl::StrCat("context file ", e.path(), " is ", e.size(),
                           " bytes in the manifest but its content ", *size));
        }
        continue;
      }
      if (asked.insert(e.digest()).second) missing.push_back(e.digest());
    }
  }
  RETURN_IF_ERROR(FetchContents(build_id, missing, fetched_bytes));
  // The chunks and files fetched count as context bytes, like a tar.
  if (on_fetched_ && *fetched_bytes > 0) on_fetched_(*fetched_bytes);
  SweepStore(*store);

  size_t index = 0;
  std::vector<std::pair<const v1::ContextEntry*, int64_t>> dirs;
  for (const auto& chunk : chunks) {
    for (const auto& e : chunk.entries()) {
      int64_t mtime = manifest.mtimes[index++];
      absl::Status s = WriteEntry(*store, dir, e, mtime);
      if (!s.ok()) {
        return absl::Status(s.code(),
                            absl::StrCat("build context: ", s.message()));
      }
      if ((e.mode() & S_IFMT) == S_IFDIR) dirs.emplace_back(&e, mtime);
      if ((e.mode() & S_IFMT) == S_IFREG) {
        absl::StatusOr<int64_t> size = store->Stat(e.digest());
        if (!size.ok() || *size != e.size()) {
          return absl::DataLossError(absl::StrCat(
              "context file ", e.path(), " does not have its manifest size"));
        }
      }
    }
  }
  // Deepest first, so setting a directory's time is not undone by its
  // children.
  for (auto it = dirs.rbegin(); it != dirs.rend(); ++it) {
    std::string path = absl::StrCat(dir, "/", it->first->path());
    if (chmod(path.c_str(), it->first->mode() & 07777) != 0) {
      return ErrnoStatus(errno, "chmod(%s)", path);
    }
    struct timespec times[2] = {{it->second, 0}, {it->second, 0}};
    utimensat(AT_FDCWD, path.c_str(), times, AT_SYMLINK_NOFOLLOW);
  }
  return absl::OkStatus();
}

absl::Status ExtractContext(const std::string& tar_path,
                            const std::string& dir) {
  return ExtractTarConfined(tar_path, dir, "build context");
}

}  // namespace longshore::worker
