#include "common/file_util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/errno_status.h"
#include "common/unique_fd.h"

namespace longshore {

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return ErrnoStatus(errno, "open(%s)", path);
  std::string out;
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "read(%s)", path);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

absl::Status WriteFileAtomic(const std::string& path, absl::string_view data,
                             int mode) {
  std::string tmp = absl::StrCat(path, ".tmp.", getpid());
  UniqueFd fd(
      ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
  if (!fd) return ErrnoStatus(errno, "open(%s)", tmp);
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd.get(), data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::unlink(tmp.c_str());
      return ErrnoStatus(err, "write(%s)", tmp);
    }
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd.get()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return ErrnoStatus(err, "fsync(%s)", tmp);
  }
  fd.reset();
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return ErrnoStatus(err, "rename(%s, %s)", tmp, path);
  }
  return absl::OkStatus();
}

absl::Status CopyFdContents(int in, int out, const std::string& in_name,
                            const std::string& out_name) {
  for (;;) {
    ssize_t n = ::sendfile(out, in, nullptr, 1 << 30);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EINVAL || errno == ENOSYS)) break;
    if (n < 0) return ErrnoStatus(errno, "copy %s to %s", in_name, out_name);
    if (n == 0) return absl::OkStatus();
  }
  // sendfile refused these descriptors: copy through a buffer.
  std::vector<char> buf(1 << 20);
  for (;;) {
    ssize_t n = ::read(in, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(errno, "read(%s)", in_name);
    if (n == 0) return absl::OkStatus();
    for (ssize_t off = 0; off < n;) {
      ssize_t w = ::write(out, buf.data() + off, n - off);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return ErrnoStatus(errno, "write(%s)", out_name);
      off += w;
    }
  }
}

absl::Status CopyFileAtomic(const std::string& from, const std::string& to,
                            int mode) {
  UniqueFd in(::open(from.c_str(), O_RDONLY | O_CLOEXEC));
  if (!in) return ErrnoStatus(errno, "open(%s)", from);
  std::string tmp = absl::StrCat(to, ".tmp.", getpid());
  UniqueFd out(
      ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
  if (!out) return ErrnoStatus(errno, "open(%s)", tmp);
  absl::Status s = CopyFdContents(in.get(), out.get(), from, tmp);
  if (s.ok() && ::fsync(out.get()) != 0)
    s = ErrnoStatus(errno, "fsync(%s)", tmp);
  out.reset();
  if (s.ok() && ::rename(tmp.c_str(), to.c_str()) != 0) {
    s = ErrnoStatus(errno, "rename(%s, %s)", tmp, to);
  }
  if (!s.ok()) ::unlink(tmp.c_str());
  return s;
}

absl::Status MakeDirs(const std::string& path, int mode) {
  if (path.empty()) return absl::OkStatus();
  std::string cur;
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = path.find('/', pos + 1);
    cur = path.substr(0, pos);
    if (cur.empty()) continue;
    if (::mkdir(cur.c_str(), mode) != 0 && errno != EEXIST) {
      return ErrnoStatus(errno, "mkdir(%s)", cur);
    }
  }
  struct stat st;
  if (::stat(path.c_str(), &st) != 0)
    return ErrnoStatus(errno, "stat(%s)", path);
  if (!S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, " exists and is not a directory"));
  }
  return absl::OkStatus();
}

namespace {

absl::Status RemoveAt(int dirfd, const std::string& name,
                      const std::string& display) {
  if (::unlinkat(dirfd, name.c_str(), 0) == 0) return absl::OkStatus();
  if (errno == ENOENT) return absl::OkStatus();
  if (errno != EISDIR && errno != EPERM) {
    return ErrnoStatus(errno, "unlink(%s)", display);
  }
  UniqueFd fd(::openat(dirfd, name.c_str(),
                       O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) return ErrnoStatus(errno, "open(%s)", display);
  // A directory we cannot list (mode 000) is still ours to remove.
  ::fchmod(fd.get(), 0700);
  auto names = ListDirSorted(fd.get(), display);
  if (!names.ok()) return names.status();
  absl::Status status;
  for (const std::string& n : *names) {
    absl::Status s = RemoveAt(fd.get(), n, display + "/" + n);
    if (!s.ok() && status.ok()) status = s;
  }
  fd.reset();
  if (!status.ok()) return status;
  if (::unlinkat(dirfd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) {
    return ErrnoStatus(errno, "rmdir(%s)", display);
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status RemoveTree(const std::string& path) {
  return RemoveAt(AT_FDCWD, path, path);
}

absl::StatusOr<std::string> MakeTempDir(const std::string& parent,
                                        const std::string& prefix) {
  std::string tmpl = absl::StrCat(parent, "/", prefix, "XXXXXX");
  if (::mkdtemp(tmpl.data()) == nullptr) {
    return ErrnoStatus(errno, "mkdtemp(%s)", tmpl);
  }
  return tmpl;
}

absl::StatusOr<std::vector<std::string>> ListDirSorted(
    int dirfd, const std::string& display) {
  // readdir consumes the descriptor it is given: work on a fresh one.
  int fd = ::openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, "open(%s)", display);
  DIR* dir = ::fdopendir(fd);
  if (dir == nullptr) {
    int err = errno;
    ::close(fd);
    return ErrnoStatus(err, "fdopendir(%s)", display);
  }
  std::vector<std::string> names;
  while (struct dirent* e = ::readdir(dir)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(std::move(n));
  }
  ::closedir(dir);
  std::sort(names.begin(), names.end());
  return names;
}

absl::StatusOr<std::vector<std::string>> ListDirSorted(
    const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return ErrnoStatus(errno, "open(%s)", path);
  return ListDirSorted(fd.get(), path);
}

bool PathExists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

}  // namespace longshore
