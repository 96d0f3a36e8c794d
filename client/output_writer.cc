#include "client/output_writer.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <memory>

#include "absl/strings/str_cat.h"
#include "common/errno_status.h"
#include "common/file_util.h"
#include "common/status_macros.h"
#include "common/tar_extract.h"
#include "common/unique_fd.h"

namespace longshore::client {
namespace {

std::string ParentDir(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

absl::Status PlaceOutput(const std::string& tar_path, const std::string& dest,
                         bool as_tar) {
  std::string parent = ParentDir(dest);
  RETURN_IF_ERROR(MakeDirs(parent));
  if (as_tar) {
    if (rename(tar_path.c_str(), dest.c_str()) == 0) return absl::OkStatus();
    if (errno != EXDEV) {
      return ErrnoStatus(errno, "rename(%s, %s)", tar_path, dest);
    }
    return CopyFileAtomic(tar_path, dest);
  }
  struct stat st;
  if (lstat(dest.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) {
      return absl::AlreadyExistsError(
          absl::StrCat(dest, " exists and is not a directory"));
    }
  }
  // Extract beside the destination, then swap it in, so a failure leaves the
  // previous contents (or nothing) and never half an image layout.
  ASSIGN_OR_RETURN(std::string staging,
                   MakeTempDir(parent, ".longshore-output-"));
  absl::Status s = ExtractTarConfined(tar_path, staging, "output");
  if (!s.ok()) {
    RemoveTree(staging).IgnoreError();
    return s;
  }
  chmod(staging.c_str(), 0755);
  if (PathExists(dest)) {
    std::string old = absl::StrCat(dest, ".longshore-old-", getpid());
    if (rename(dest.c_str(), old.c_str()) != 0) {
      s = ErrnoStatus(errno, "rename(%s, %s)", dest, old);
      RemoveTree(staging).IgnoreError();
      return s;
    }
    if (rename(staging.c_str(), dest.c_str()) != 0) {
      s = ErrnoStatus(errno, "rename(%s, %s)", staging, dest);
      rename(old.c_str(), dest.c_str());
      RemoveTree(staging).IgnoreError();
      return s;
    }
    return RemoveTree(old);
  }
  if (rename(staging.c_str(), dest.c_str()) != 0) {
    s = ErrnoStatus(errno, "rename(%s, %s)", staging, dest);
    RemoveTree(staging).IgnoreError();
    return s;
  }
  return absl::OkStatus();
}

absl::Status PlaceLocalOutput(const std::string& tar_path,
                              const std::string& dest) {
  RETURN_IF_ERROR(MakeDirs(dest));
  return ExtractTarConfined(tar_path, dest, "output");
}

absl::Status CopyToFd(const std::string& path, int fd) {
  UniqueFd in(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!in) return ErrnoStatus(errno, "open(%s)", path);
  char buf[1 << 16];
  for (;;) {
    ssize_t n = read(in.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(errno, "read(%s)", path);
    if (n == 0) return absl::OkStatus();
    for (ssize_t off = 0; off < n;) {
      ssize_t w = write(fd, buf + off, n - off);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return ErrnoStatus(errno, "write(stdout)");
      off += w;
    }
  }
}

}  // namespace longshore::client
