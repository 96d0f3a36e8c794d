#include "worker/context_fetcher.h"

#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/errno_status.h"
#include "common/file_util.h"
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

absl::Status ExtractContext(const std::string& tar_path,
                            const std::string& dir) {
  return ExtractTarConfined(tar_path, dir, "build context");
}

}  // namespace longshore::worker
