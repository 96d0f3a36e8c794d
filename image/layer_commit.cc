#include "image/layer_commit.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/errno_status.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "common/unique_fd.h"
#include "image/compression.h"

namespace longshore::image {
namespace {

constexpr char kWhiteoutPrefix[] = ".wh.";
constexpr char kOpaqueMarker[] = ".wh..wh..opq";
constexpr int64_t kSequentialHintBytes = 4 << 20;

struct ArchiveWriteDeleter {
  void operator()(archive* a) const { archive_write_free(a); }
};
struct EntryDeleter {
  void operator()(archive_entry* e) const { archive_entry_free(e); }
};
using ArchivePtr = std::unique_ptr<archive, ArchiveWriteDeleter>;
using EntryPtr = std::unique_ptr<archive_entry, EntryDeleter>;

// Xattrs that describe the overlay, not the image, or the host's labelling.
bool SkipXattr(absl::string_view name) {
  return absl::StartsWith(name, "user.overlay.") ||
         absl::StartsWith(name, "trusted.overlay.") ||
         name == "security.selinux";
}

using Xattrs = std::vector<std::pair<std::string, std::string>>;

// Reads all xattrs through `list`/`get` (the f*, l* variants), sorted by name.
template <typename ListFn, typename GetFn>
absl::StatusOr<Xattrs> ReadXattrs(const std::string& what, ListFn list,
                                  GetFn get) {
  Xattrs out;
  // One call into a stack buffer answers for almost every file (most have no
  // xattrs at all); only longer lists take the size query and a second call.
  char small[1024];
  ssize_t listed = list(small, sizeof(small));
  const int list_errno = listed < 0 ? errno : 0;
  if (listed == 0 || list_errno == ENOTSUP) return out;
  std::string names;
  if (listed > 0) {
    names.assign(small, static_cast<size_t>(listed));
  } else if (list_errno != ERANGE) {
    return ErrnoStatus(list_errno, "listxattr(%s)", what);
  } else {
    for (;;) {
      ssize_t n = list(nullptr, 0);
      if (n < 0) return ErrnoStatus(errno, "listxattr(%s)", what);
      names.resize(static_cast<size_t>(n));
      n = list(names.data(), names.size());
      if (n < 0) {
        if (errno == ERANGE) continue;  // grew between the two calls
        return ErrnoStatus(errno, "listxattr(%s)", what);
      }
      names.resize(static_cast<size_t>(n));
      break;
    }
  }
  size_t pos = 0;
  while (pos < names.size()) {
    size_t end = names.find('\0', pos);
    if (end == std::string::npos) end = names.size();
    std::string name = names.substr(pos, end - pos);
    pos = end + 1;
    if (name.empty()) continue;
    std::string value;
    for (;;) {
      ssize_t n = get(name.c_str(), nullptr, 0);
      if (n < 0) {
        if (errno == ENODATA) break;
        return ErrnoStatus(errno, "getxattr(%s, %s)", what, name);
      }
      value.resize(static_cast<size_t>(n));
      n = get(name.c_str(), value.data(), value.size());
      if (n < 0) {
        if (errno == ERANGE) continue;
        return ErrnoStatus(errno, "getxattr(%s, %s)", what, name);
      }
      value.resize(static_cast<size_t>(n));
      out.emplace_back(std::move(name), std::move(value));
      break;
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

absl::StatusOr<Xattrs> FdXattrs(int fd, const std::string& what) {
  return ReadXattrs(
      what, [fd](char* buf, size_t n) { return flistxattr(fd, buf, n); },
      [fd](const char* name, void* buf, size_t n) {
        return fgetxattr(fd, name, buf, n);
      });
}

absl::StatusOr<Xattrs> PathXattrs(const std::string& path) {
  return ReadXattrs(
      path,
      [&path](char* buf, size_t n) { return llistxattr(path.c_str(), buf, n); },
      [&path](const char* name, void* buf, size_t n) {
        return lgetxattr(path.c_str(), name, buf, n);
      });
}

bool IsOpaque(const Xattrs& xattrs) {
  for (const auto& [name, value] : xattrs) {
    if ((name == "user.overlay.opaque" || name == "trusted.overlay.opaque") &&
        value == "y") {
      return true;
    }
  }
  return false;
}

absl::StatusOr<std::vector<std::string>> SortedNames(int dirfd,
                                                     const std::string& what) {
  int dupfd = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
  if (dupfd < 0) return ErrnoStatus(errno, "dup(%s)", what);
  DIR* d = fdopendir(dupfd);
  if (d == nullptr) {
    int err = errno;
    close(dupfd);
    return ErrnoStatus(err, "fdopendir(%s)", what);
  }
  std::vector<std::string> names;
  errno = 0;
  while (dirent* de = readdir(d)) {
    absl::string_view n = de->d_name;
    if (n == "." || n == "..") continue;
    names.emplace_back(n);
  }
  int err = errno;
  closedir(d);
  if (err != 0) return ErrnoStatus(err, "readdir(%s)", what);
  std::sort(names.begin(), names.end());
  return names;
}

class LayerWriter {
 public:
  LayerWriter(const CommitOptions& opts, Compressor* compressor)
      : opts_(opts), compressor_(compressor) {}

  absl::Status Open() {
    a_.reset(archive_write_new());
    if (!a_) return absl::ResourceExhaustedError("archive_write_new");
    if (archive_write_set_format_pax_restricted(a_.get()) != ARCHIVE_OK ||
        archive_write_set_format_option(a_.get(), "pax", "xattrheader",
                                        "SCHILY") != ARCHIVE_OK ||
        // No blocking: bytes reach the callback as written, and the archive
        // ends with the two zero records and no padding to a 10 KiB record.
        archive_write_set_bytes_per_block(a_.get(), 0) != ARCHIVE_OK) {
      return ArchiveError("configure tar writer");
    }
    if (archive_write_open2(a_.get(), this, nullptr, &LayerWriter::WriteCb,
                            nullptr, nullptr) != ARCHIVE_OK) {
      return ArchiveError("open tar writer");
    }
    return absl::OkStatus();
  }

  absl::Status Close() {
    if (archive_write_close(a_.get()) != ARCHIVE_OK) {
      return ArchiveError("close tar writer");
    }
    return absl::OkStatus();
  }

  // Writes the entries below `dirfd` (host path `host`), named `prefix` + name.
  absl::Status WalkDir(int dirfd, const std::string& host,
                       const std::string& prefix) {
    ASSIGN_OR_RETURN(std::vector<std::string> names, SortedNames(dirfd, host));
    for (const std::string& name : names) {
      RETURN_IF_ERROR(WriteChild(dirfd, host, prefix, name));
    }
    return absl::OkStatus();
  }

  int64_t uncompressed_bytes() const { return uncompressed_bytes_; }

 private:
  static la_ssize_t WriteCb(archive*, void* client, const void* buf, size_t n) {
    auto* self = static_cast<LayerWriter*>(client);
    self->uncompressed_bytes_ += static_cast<int64_t>(n);
    absl::Status s = self->compressor_->Write(buf, n);
    if (!s.ok()) {
      self->sink_status_ = s;
      return -1;
    }
    return static_cast<la_ssize_t>(n);
  }

  absl::Status ArchiveError(const std::string& what) {
    if (!sink_status_.ok()) return sink_status_;
    const char* msg = archive_error_string(a_.get());
    return absl::InternalError(
        absl::StrCat(what, ": ", msg ? msg : "libarchive error"));
  }

  int64_t Clamp(int64_t t) const {
    if (opts_.source_date_epoch && t > *opts_.source_date_epoch) {
      return *opts_.source_date_epoch;
    }
    return t;
  }

  EntryPtr NewEntry(const std::string& path, const struct stat& st) {
    EntryPtr e(archive_entry_new());
    archive_entry_set_pathname(e.get(), path.c_str());
    archive_entry_set_uid(e.get(), st.st_uid);
    archive_entry_set_gid(e.get(), st.st_gid);
    archive_entry_set_perm(e.get(), st.st_mode & 07777);
    archive_entry_set_mtime(e.get(), Clamp(st.st_mtim.tv_sec), 0);
    return e;
  }

  absl::Status WriteHeader(archive_entry* e, const Xattrs& xattrs) {
    for (const auto& [name, value] : xattrs) {
      if (SkipXattr(name)) continue;
      archive_entry_xattr_add_entry(e, name.c_str(), value.data(),
                                    value.size());
    }
    if (archive_write_header(a_.get(), e) < ARCHIVE_WARN) {
      return ArchiveError(
          absl::StrCat("write tar header for ", archive_entry_pathname(e)));
    }
    return absl::OkStatus();
  }

  // An empty regular file with mode 0, owned by 0:0: the form BuildKit and
  // containerd write for whiteouts and opaque markers.
  absl::Status WriteMarker(const std::string& path, const struct stat& st) {
    EntryPtr e(archive_entry_new());
    archive_entry_set_pathname(e.get(), path.c_str());
    archive_entry_set_filetype(e.get(), AE_IFREG);
    archive_entry_set_perm(e.get(), 0);
    archive_entry_set_size(e.get(), 0);
    archive_entry_set_mtime(e.get(), Clamp(st.st_mtim.tv_sec), 0);
    return WriteHeader(e.get(), {});
  }

  absl::Status WriteChild(int dirfd, const std::string& host_dir,
                          const std::string& prefix, const std::string& name) {
    const std::string host = absl::StrCat(host_dir, "/", name);
    const std::string rel = prefix + name;
    struct stat st;
    if (fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      return ErrnoStatus(errno, "fstatat(%s)", host);
    }
    switch (st.st_mode & S_IFMT) {
      case S_IFDIR: {
        UniqueFd fd(openat(dirfd, name.c_str(),
                           O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!fd) return ErrnoStatus(errno, "openat(%s)", host);
        ASSIGN_OR_RETURN(Xattrs xattrs, FdXattrs(fd.get(), host));
        EntryPtr e = NewEntry(rel + "/", st);
        archive_entry_set_filetype(e.get(), AE_IFDIR);
        RETURN_IF_ERROR(WriteHeader(e.get(), xattrs));
        if (IsOpaque(xattrs)) {
          RETURN_IF_ERROR(
              WriteMarker(absl::StrCat(rel, "/", kOpaqueMarker), st));
        }
        return WalkDir(fd.get(), host, rel + "/");
      }
      case S_IFREG:
        return WriteRegular(dirfd, host, rel, name, st);
      case S_IFLNK: {
        std::string target(PATH_MAX + 1, '\0');
        ssize_t n =
            readlinkat(dirfd, name.c_str(), target.data(), target.size());
        if (n < 0) return ErrnoStatus(errno, "readlinkat(%s)", host);
        target.resize(static_cast<size_t>(n));
        ASSIGN_OR_RETURN(Xattrs xattrs, PathXattrs(host));
        EntryPtr e = NewEntry(rel, st);
        archive_entry_set_filetype(e.get(), AE_IFLNK);
        archive_entry_set_symlink(e.get(), target.c_str());
        return WriteHeader(e.get(), xattrs);
      }
      case S_IFCHR:
        if (st.st_rdev == makedev(0, 0)) {
          // Overlay's record of a deletion.
          return WriteMarker(prefix + kWhiteoutPrefix + name, st);
        }
        [[fallthrough]];
      case S_IFBLK:
      case S_IFIFO: {
        ASSIGN_OR_RETURN(Xattrs xattrs, PathXattrs(host));
        EntryPtr e = NewEntry(rel, st);
        archive_entry_set_filetype(e.get(), st.st_mode & S_IFMT);
        if (!S_ISFIFO(st.st_mode)) {
          archive_entry_set_rdevmajor(e.get(), major(st.st_rdev));
          archive_entry_set_rdevminor(e.get(), minor(st.st_rdev));
        }
        return WriteHeader(e.get(), xattrs);
      }
      default:
        // Sockets have no tar form; Docker and BuildKit leave them out as well.
        return absl::OkStatus();
    }
  }

  absl::Status WriteRegular(int dirfd, const std::string& host,
                            const std::string& rel, const std::string& name,
                            const struct stat& st) {
    std::pair<dev_t, ino_t> key{st.st_dev, st.st_ino};
    if (st.st_nlink > 1) {
      auto it = links_.find(key);
      if (it != links_.end()) {
        EntryPtr e = NewEntry(rel, st);
        archive_entry_set_filetype(e.get(), AE_IFREG);
        archive_entry_set_hardlink(e.get(), it->second.c_str());
        archive_entry_set_size(e.get(), 0);
        return WriteHeader(e.get(), {});
      }
      links_.emplace(key, rel);
    }
    UniqueFd fd(openat(dirfd, name.c_str(),
                       O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY));
    if (!fd) return ErrnoStatus(errno, "openat(%s)", host);
    ASSIGN_OR_RETURN(Xattrs xattrs, FdXattrs(fd.get(), host));
    EntryPtr e = NewEntry(rel, st);
    archive_entry_set_filetype(e.get(), AE_IFREG);
    archive_entry_set_size(e.get(), st.st_size);
    RETURN_IF_ERROR(WriteHeader(e.get(), xattrs));
    if (st.st_size >= kSequentialHintBytes) {
      // Advice only (a larger read-ahead window when the file is not cached);
      // failure changes nothing.
      (void)posix_fadvise(fd.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
    }
    // Holes read back as zeros: a sparse file becomes an ordinary one.
    int64_t left = st.st_size;
    buf_.resize(1 << 20);
    while (left > 0) {
      ssize_t n =
          read(fd.get(), buf_.data(),
               static_cast<size_t>(std::min<int64_t>(left, buf_.size())));
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus(errno, "read(%s)", host);
      }
      if (n == 0) {
        return absl::FailedPreconditionError(
            absl::StrCat(host, ": file shrank while being committed"));
      }
      if (archive_write_data(a_.get(), buf_.data(), static_cast<size_t>(n)) !=
          n) {
        return ArchiveError(absl::StrCat("write tar data for ", rel));
      }
      left -= n;
    }
    return absl::OkStatus();
  }

  const CommitOptions& opts_;
  Compressor* compressor_;
  ArchivePtr a_;
  int64_t uncompressed_bytes_ = 0;
  absl::Status sink_status_;
  std::map<std::pair<dev_t, ino_t>, std::string> links_;
  std::vector<char> buf_;
};

absl::StatusOr<CommittedLayer> CommitInto(const std::string& dir, int out_fd,
                                          const std::string& out_path,
                                          const CommitOptions& opts) {
  UniqueFd root(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root) return ErrnoStatus(errno, "open(%s)", dir);
  ASSIGN_OR_RETURN(std::string media_type, LayerMediaType(opts));
  DigestingFdSink sink(out_fd, out_path);
  CompressorOptions copts;
  copts.compression = opts.compression;
  copts.level = opts.level;
  copts.threads = opts.threads;
  ASSIGN_OR_RETURN(std::unique_ptr<Compressor> inner,
                   NewCompressor(copts, &sink));
  // Two stages: this thread walks the tree and writes the tar; a second one
  // hashes the tar (the diffID) and compresses it (with its own workers), then
  // hashes and writes the blob. Neither waits for the other except when the
  // queue between them is full or empty, so the walk's syscalls overlap the
  // compression. The bytes are the same as in one thread.
  Sha256 diff_sha;
  std::unique_ptr<Compressor> compressor =
      NewPipelinedCompressor(std::move(inner), &diff_sha);
  LayerWriter writer(opts, compressor.get());
  RETURN_IF_ERROR(writer.Open());
  RETURN_IF_ERROR(writer.WalkDir(root.get(), dir, ""));
  RETURN_IF_ERROR(writer.Close());
  RETURN_IF_ERROR(compressor->Finish());
  CommittedLayer out;
  out.diff_id = diff_sha.Digest();
  out.uncompressed_size = writer.uncompressed_bytes();
  out.digest = sink.Digest();
  out.size = sink.bytes();
  out.media_type = media_type;
  return out;
}

}  // namespace

absl::StatusOr<std::string> LayerMediaType(const CommitOptions& opts) {
  switch (opts.compression) {
    case Compression::kGzip:
      return std::string(opts.docker_media_types ? kMediaTypeDockerLayerGzip
                                                 : kMediaTypeOciLayerGzip);
    case Compression::kZstd:
      if (opts.docker_media_types) {
        return absl::InvalidArgumentError(
            "Docker media types have no zstd layer; use OCI media types");
      }
      return std::string(kMediaTypeOciLayerZstd);
    case Compression::kNone:
      if (opts.docker_media_types) {
        return std::string("application/vnd.docker.image.rootfs.diff.tar");
      }
      return std::string(kMediaTypeOciLayer);
  }
  return absl::InvalidArgumentError("unknown compression");
}

absl::StatusOr<CommittedLayer> CommitLayer(const std::string& dir,
                                           const std::string& out_blob_path,
                                           const CommitOptions& opts) {
  UniqueFd out(open(out_blob_path.c_str(),
                    O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!out) return ErrnoStatus(errno, "open(%s)", out_blob_path);
  absl::StatusOr<CommittedLayer> result =
      CommitInto(dir, out.get(), out_blob_path, opts);
  if (result.ok() && close(out.release()) != 0) {
    result = ErrnoStatus(errno, "close(%s)", out_blob_path);
  }
  if (!result.ok()) {
    unlink(out_blob_path.c_str());
    return absl::Status(result.status().code(),
                        absl::StrCat("commit layer from ", dir, ": ",
                                     result.status().message()));
  }
  return result;
}

}  // namespace longshore::image
