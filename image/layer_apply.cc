#include "image/layer_apply.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/errno_status.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "common/unique_fd.h"
#include "image/compression.h"

namespace longshore::image {
namespace {

constexpr char kWhiteoutPrefix[] = ".wh.";
constexpr char kWhiteoutMetaPrefix[] = ".wh..wh.";
constexpr char kOpaqueMarker[] = ".wh..wh..opq";
constexpr int64_t kStreamSlack = 64 << 20;

struct ArchiveReadDeleter {
  void operator()(archive* a) const { archive_read_free(a); }
};
using ArchivePtr = std::unique_ptr<archive, ArchiveReadDeleter>;

using Components = std::vector<std::string>;

// Splits a tar name into clean components: "./a//b/" -> {a, b}. Refuses
// absolute names and "..".
absl::StatusOr<Components> CleanName(absl::string_view name,
                                     absl::string_view what) {
  if (name.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(what, " is empty"));
  }
  if (name[0] == '/') {
    return absl::PermissionDeniedError(absl::StrCat(
        what, " \"", name, "\" is absolute; layer paths must be relative"));
  }
  Components out;
  for (absl::string_view c : absl::StrSplit(name, '/')) {
    if (c.empty() || c == ".") continue;
    if (c == "..") {
      return absl::PermissionDeniedError(absl::StrCat(
          what, " \"", name, "\" contains \"..\"; refusing to leave the root"));
    }
    out.emplace_back(c);
  }
  return out;
}

bool IsWhiteoutDevice(const struct stat& st) {
  return S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0);
}

// rm -rf of `name` below `dirfd`, never following symlinks.
absl::Status RemoveAt(int dirfd, const std::string& name,
                      const std::string& what) {
  struct stat st;
  if (fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return ErrnoStatus(errno, "fstatat(%s)", what);
  }
  if (!S_ISDIR(st.st_mode)) {
    if (unlinkat(dirfd, name.c_str(), 0) != 0) {
      return ErrnoStatus(errno, "unlinkat(%s)", what);
    }
    return absl::OkStatus();
  }
  UniqueFd fd(openat(dirfd, name.c_str(),
                     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) return ErrnoStatus(errno, "openat(%s)", what);
  int dupfd = fcntl(fd.get(), F_DUPFD_CLOEXEC, 0);
  if (dupfd < 0) return ErrnoStatus(errno, "dup(%s)", what);
  DIR* d = fdopendir(dupfd);
  if (d == nullptr) {
    close(dupfd);
    return ErrnoStatus(errno, "fdopendir(%s)", what);
  }
  std::vector<std::string> names;
  while (dirent* de = readdir(d)) {
    absl::string_view n = de->d_name;
    if (n != "." && n != "..") names.emplace_back(n);
  }
  closedir(d);
  for (const auto& n : names) {
    RETURN_IF_ERROR(RemoveAt(fd.get(), n, what + "/" + n));
  }
  if (unlinkat(dirfd, name.c_str(), AT_REMOVEDIR) != 0) {
    return ErrnoStatus(errno, "rmdir(%s)", what);
  }
  return absl::OkStatus();
}

class Extractor {
 public:
  Extractor(const std::string& blob_path, const std::string& media_type,
            const std::string& dir, const ApplyOptions& opts)
      : blob_path_(blob_path),
        media_type_(media_type),
        dir_(dir),
        opts_(opts),
        opaque_xattr_(opts.overlay_xattr_prefix + "opaque") {}

  absl::StatusOr<AppliedLayer> Run() {
    root_.reset(open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!root_) return ErrnoStatus(errno, "open(%s)", dir_);
    blob_.reset(open(blob_path_.c_str(), O_RDONLY | O_CLOEXEC));
    if (!blob_) return ErrnoStatus(errno, "open(%s)", blob_path_);
    ASSIGN_OR_RETURN(reader_,
                     DecompressingReader::Open(blob_.get(), blob_path_));

    a_.reset(archive_read_new());
    if (!a_) return absl::ResourceExhaustedError("archive_read_new");
    archive_read_support_format_tar(a_.get());
    if (archive_read_open(a_.get(), this, nullptr, &Extractor::ReadCb,
                          nullptr) != ARCHIVE_OK) {
      return ArchiveError("open tar reader");
    }
    for (;;) {
      archive_entry* e = nullptr;
      int rc = archive_read_next_header(a_.get(), &e);
      if (rc == ARCHIVE_EOF) break;
      if (rc < ARCHIVE_WARN) return ArchiveError("read tar header");
      ++result_.entries;
      if (opts_.max_entries > 0 && result_.entries > opts_.max_entries) {
        return absl::ResourceExhaustedError(absl::StrCat(
            "entry \"", archive_entry_pathname(e), "\" exceeds the limit of ",
            opts_.max_entries, " entries"));
      }
      RETURN_IF_ERROR(ApplyEntry(e));
    }
    // Directory times last: creating children changes them.
    for (auto it = dir_times_.rbegin(); it != dir_times_.rend(); ++it) {
      ASSIGN_OR_RETURN(UniqueFd fd, Resolve(it->first, /*create=*/false,
                                            absl::StrJoin(it->first, "/")));
      struct timespec ts[2] = {{it->second, 0}, {it->second, 0}};
      if (futimens(fd.get(), ts) != 0) {
        return ErrnoStatus(errno, "futimens(%s)",
                           absl::StrJoin(it->first, "/"));
      }
    }
    // The diffID covers the whole stream, padding after the end records
    // included.
    ASSIGN_OR_RETURN(result_.diff_id, reader_->FinishUncompressedDigest());
    RETURN_IF_ERROR(sink_status_);
    result_.digest = reader_->CompressedDigest();
    result_.compressed_size = reader_->compressed_bytes();
    result_.uncompressed_size = reader_->uncompressed_bytes();
    return result_;
  }

 private:
  static la_ssize_t ReadCb(archive*, void* client, const void** buf) {
    auto* self = static_cast<Extractor*>(client);
    self->buf_.resize(1 << 16);
    absl::StatusOr<size_t> n =
        self->reader_->Read(self->buf_.data(), self->buf_.size());
    if (!n.ok()) {
      self->sink_status_ = n.status();
      return -1;
    }
    if (self->opts_.max_bytes > 0 &&
        self->reader_->uncompressed_bytes() >
            2 * self->opts_.max_bytes + kStreamSlack) {
      self->sink_status_ = absl::ResourceExhaustedError(absl::StrCat(
          "decompressed stream exceeds ",
          2 * self->opts_.max_bytes + kStreamSlack,
          " bytes (limit derived from max_bytes ", self->opts_.max_bytes, ")"));
      return -1;
    }
    *buf = self->buf_.data();
    return static_cast<la_ssize_t>(*n);
  }

  absl::Status ArchiveError(const std::string& what) {
    if (!sink_status_.ok()) return sink_status_;
    const char* msg = archive_error_string(a_.get());
    return absl::DataLossError(
        absl::StrCat(what, ": ", msg ? msg : "libarchive error"));
  }

  // Opens the directory `comps` below the root, one component at a time without
  // following symlinks. With `create`, missing directories are made (0755, as
  // Docker does for parents a layer does not list) and whiteout devices in the
  // way become opaque directories.
  absl::StatusOr<UniqueFd> Resolve(const Components& comps, bool create,
                                   const std::string& entry) {
    UniqueFd cur(fcntl(root_.get(), F_DUPFD_CLOEXEC, 0));
    if (!cur) return ErrnoStatus(errno, "dup(%s)", dir_);
    std::string walked;
    for (const std::string& c : comps) {
      walked = walked.empty() ? c : absl::StrCat(walked, "/", c);
      struct stat st;
      if (fstatat(cur.get(), c.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno != ENOENT || !create) {
          return ErrnoStatus(errno, "entry \"%s\": fstatat(%s)", entry, walked);
        }
        if (mkdirat(cur.get(), c.c_str(), 0755) != 0) {
          return ErrnoStatus(errno, "entry \"%s\": mkdirat(%s)", entry, walked);
        }
      } else if (S_ISLNK(st.st_mode)) {
        return absl::PermissionDeniedError(
            absl::StrCat("entry \"", entry, "\": parent \"", walked,
                         "\" is a symlink; refusing to write through it"));
      } else if (create && IsWhiteoutDevice(st)) {
        RETURN_IF_ERROR(RemoveAt(cur.get(), c, walked));
        if (mkdirat(cur.get(), c.c_str(), 0755) != 0) {
          return ErrnoStatus(errno, "entry \"%s\": mkdirat(%s)", entry, walked);
        }
        UniqueFd d(openat(cur.get(), c.c_str(),
                          O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!d) return ErrnoStatus(errno, "openat(%s)", walked);
        RETURN_IF_ERROR(SetOpaque(d.get(), walked));
      } else if (!S_ISDIR(st.st_mode)) {
        return absl::FailedPreconditionError(
            absl::StrCat("entry \"", entry, "\": parent \"", walked,
                         "\" is not a directory"));
      }
      UniqueFd next(openat(cur.get(), c.c_str(),
                           O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!next) {
        return ErrnoStatus(errno, "entry \"%s\": openat(%s)", entry, walked);
      }
      cur = std::move(next);
    }
    return cur;
  }

  absl::Status SetOpaque(int dirfd, const std::string& what) {
    if (fsetxattr(dirfd, opaque_xattr_.c_str(), "y", 1, 0) != 0) {
      return ErrnoStatus(errno, "fsetxattr(%s, %s)", what, opaque_xattr_);
    }
    return absl::OkStatus();
  }

  absl::Status CheckBudget(int64_t size, const std::string& entry) {
    if (opts_.max_bytes > 0 &&
        result_.extracted_bytes + size > opts_.max_bytes) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "entry \"", entry, "\" (", size, " bytes) would exceed the layer ",
          "extraction limit of ", opts_.max_bytes, " bytes (",
          result_.extracted_bytes, " already extracted)"));
    }
    result_.extracted_bytes += size;
    return absl::OkStatus();
  }

  absl::Status ApplyEntry(archive_entry* e) {
    const char* raw = archive_entry_pathname(e);
    std::string entry = raw ? raw : "";
    ASSIGN_OR_RETURN(Components comps, CleanName(entry, "entry name"));
    if (comps.empty()) return absl::OkStatus();  // the root itself ("./")
    std::string base = comps.back();
    comps.pop_back();
    std::string where = entry;

    if (absl::StartsWith(base, kWhiteoutPrefix)) {
      ASSIGN_OR_RETURN(UniqueFd parent, Resolve(comps, true, where));
      if (base == kOpaqueMarker) return SetOpaque(parent.get(), where);
      if (absl::StartsWith(base, kWhiteoutMetaPrefix)) return absl::OkStatus();
      std::string name = base.substr(strlen(kWhiteoutPrefix));
      if (name.empty() || name == "." || name == "..") {
        return absl::InvalidArgumentError(
            absl::StrCat("entry \"", entry, "\": malformed whiteout"));
      }
      return Whiteout(e, parent.get(), name, where);
    }

    ASSIGN_OR_RETURN(UniqueFd parent, Resolve(comps, true, where));
    const char* hardlink = archive_entry_hardlink(e);
    if (hardlink != nullptr)
      return HardLink(e, parent.get(), base, hardlink, where);

    switch (archive_entry_filetype(e)) {
      case AE_IFDIR: {
        comps.push_back(base);
        return Directory(e, parent.get(), base, comps, where);
      }
      case AE_IFREG:
      case 0:  // old tars mark regular files with '\0'
        return Regular(e, parent.get(), base, where);
      case AE_IFLNK:
        return Symlink(e, parent.get(), base, comps, where);
      case AE_IFCHR:
      case AE_IFBLK:
      case AE_IFIFO:
        return Special(e, parent.get(), base, where);
      default:
        LS_LOG(WARNING) << "layer " << blob_path_ << ": skipping entry \""
                        << entry << "\" of unsupported type";
        return absl::OkStatus();
    }
  }

  // An existing name is replaced, except that a directory stays when a
  // directory is wanted (its metadata is updated). Returns true when a whiteout
  // was there.
  absl::StatusOr<bool> ClearFor(int parent, const std::string& name,
                                bool want_dir, const std::string& where) {
    struct stat st;
    if (fstatat(parent, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) return false;
      return ErrnoStatus(errno, "fstatat(%s)", where);
    }
    if (want_dir && S_ISDIR(st.st_mode)) return false;
    bool whiteout = IsWhiteoutDevice(st);
    RETURN_IF_ERROR(RemoveAt(parent, name, where));
    return whiteout;
  }

  absl::Status Whiteout(archive_entry* e, int parent, const std::string& name,
                        const std::string& where) {
    struct stat st;
    if (fstatat(parent, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
      // The layer also adds NAME: its own entry already hides the lower one; a
      // directory must additionally hide the lower directory's children.
      if (S_ISDIR(st.st_mode)) {
        UniqueFd d(openat(parent, name.c_str(),
                          O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!d) return ErrnoStatus(errno, "openat(%s)", where);
        return SetOpaque(d.get(), where);
      }
      return absl::OkStatus();
    }
    if (mknodat(parent, name.c_str(), S_IFCHR | 0, makedev(0, 0)) != 0) {
      return ErrnoStatus(errno, "mknod whiteout for \"%s\"", where);
    }
    // The marker's time, so that committing the snapshot again gives the same
    // tar.
    return SetTimesAt(parent, name, e, where);
  }

  absl::Status SetOwner(int fd, archive_entry* e, const std::string& where) {
    if (!opts_.preserve_owner) return absl::OkStatus();
    if (fchown(fd, archive_entry_uid(e), archive_entry_gid(e)) != 0) {
      return ErrnoStatus(errno, "fchown(%s, %d:%d)", where,
                         static_cast<int>(archive_entry_uid(e)),
                         static_cast<int>(archive_entry_gid(e)));
    }
    return absl::OkStatus();
  }

  absl::Status SetXattrs(int fd, archive_entry* e, const std::string& where) {
    archive_entry_xattr_reset(e);
    const char* name;
    const void* value;
    size_t size;
    while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
      absl::string_view n = name;
      if (absl::StartsWith(n, "user.overlay.") ||
          absl::StartsWith(n, "trusted.overlay.")) {
        LS_LOG(WARNING) << "layer " << blob_path_ << ": entry \"" << where
                        << "\" carries overlay xattr " << n << "; dropped";
        continue;
      }
      if (fsetxattr(fd, name, value, size, 0) != 0) {
        int err = errno;
        if ((err == EPERM || err == ENOTSUP) && !absl::StartsWith(n, "user.")) {
          LS_LOG(WARNING) << "layer " << blob_path_ << ": entry \"" << where
                          << "\": cannot set xattr " << n << ": "
                          << strerror(err);
          continue;
        }
        return ErrnoStatus(err, "fsetxattr(%s, %s)", where, n);
      }
    }
    return absl::OkStatus();
  }

  absl::Status SetTimesAt(int parent, const std::string& name, archive_entry* e,
                          const std::string& where) {
    time_t t = archive_entry_mtime(e);
    struct timespec ts[2] = {{t, 0}, {t, 0}};
    if (utimensat(parent, name.c_str(), ts, AT_SYMLINK_NOFOLLOW) != 0) {
      return ErrnoStatus(errno, "utimensat(%s)", where);
    }
    return absl::OkStatus();
  }

  absl::Status Directory(archive_entry* e, int parent, const std::string& name,
                         const Components& comps, const std::string& where) {
    ASSIGN_OR_RETURN(bool was_whiteout, ClearFor(parent, name, true, where));
    if (mkdirat(parent, name.c_str(), 0700) != 0 && errno != EEXIST) {
      return ErrnoStatus(errno, "mkdirat(%s)", where);
    }
    UniqueFd fd(openat(parent, name.c_str(),
                       O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd) return ErrnoStatus(errno, "openat(%s)", where);
    RETURN_IF_ERROR(SetOwner(fd.get(), e, where));
    if (fchmod(fd.get(), archive_entry_perm(e)) != 0) {
      return ErrnoStatus(errno, "fchmod(%s)", where);
    }
    RETURN_IF_ERROR(SetXattrs(fd.get(), e, where));
    // Deleted and re-created in this layer: the lower directory's children stay
    // hidden.
    if (was_whiteout) RETURN_IF_ERROR(SetOpaque(fd.get(), where));
    dir_times_.emplace_back(comps, archive_entry_mtime(e));
    return absl::OkStatus();
  }

  absl::Status Regular(archive_entry* e, int parent, const std::string& name,
                       const std::string& where) {
    int64_t size = archive_entry_size(e);
    RETURN_IF_ERROR(CheckBudget(size, where));
    RETURN_IF_ERROR(ClearFor(parent, name, false, where).status());
    UniqueFd fd(openat(parent, name.c_str(),
                       O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                       0600));
    if (!fd) return ErrnoStatus(errno, "openat(%s)", where);
    for (;;) {
      const void* buf;
      size_t n;
      la_int64_t offset;
      int rc = archive_read_data_block(a_.get(), &buf, &n, &offset);
      if (rc == ARCHIVE_EOF) break;
      if (rc < ARCHIVE_WARN) {
        return ArchiveError(absl::StrCat("read data of \"", where, "\""));
      }
      const char* p = static_cast<const char*>(buf);
      while (n > 0) {
        ssize_t w = pwrite(fd.get(), p, n, offset);
        if (w < 0) {
          if (errno == EINTR) continue;
          return ErrnoStatus(errno, "write(%s)", where);
        }
        p += w;
        n -= static_cast<size_t>(w);
        offset += w;
      }
    }
    // Sparse entries may end in a hole.
    if (ftruncate(fd.get(), size) != 0) {
      return ErrnoStatus(errno, "ftruncate(%s)", where);
    }
    RETURN_IF_ERROR(SetOwner(fd.get(), e, where));
    if (fchmod(fd.get(), archive_entry_perm(e)) != 0) {
      return ErrnoStatus(errno, "fchmod(%s)", where);
    }
    RETURN_IF_ERROR(SetXattrs(fd.get(), e, where));
    time_t t = archive_entry_mtime(e);
    struct timespec ts[2] = {{t, 0}, {t, 0}};
    if (futimens(fd.get(), ts) != 0) {
      return ErrnoStatus(errno, "futimens(%s)", where);
    }
    return absl::OkStatus();
  }

  absl::Status Symlink(archive_entry* e, int parent, const std::string& name,
                       const Components& parent_comps,
                       const std::string& where) {
    const char* t = archive_entry_symlink(e);
    std::string target = t ? t : "";
    if (target.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("entry \"", where, "\": symlink with an empty target"));
    }
    if (opts_.reject_escaping_symlinks && target[0] != '/') {
      int64_t depth = static_cast<int64_t>(parent_comps.size());
      for (absl::string_view c : absl::StrSplit(target, '/')) {
        if (c.empty() || c == ".") continue;
        depth += c == ".." ? -1 : 1;
        if (depth < 0) {
          return absl::PermissionDeniedError(
              absl::StrCat("entry \"", where, "\": symlink target \"", target,
                           "\" leads outside the root"));
        }
      }
    }
    RETURN_IF_ERROR(ClearFor(parent, name, false, where).status());
    if (symlinkat(target.c_str(), parent, name.c_str()) != 0) {
      return ErrnoStatus(errno, "symlinkat(%s)", where);
    }
    if (opts_.preserve_owner &&
        fchownat(parent, name.c_str(), archive_entry_uid(e),
                 archive_entry_gid(e), AT_SYMLINK_NOFOLLOW) != 0) {
      return ErrnoStatus(errno, "lchown(%s)", where);
    }
    return SetTimesAt(parent, name, e, where);
  }

  absl::Status HardLink(archive_entry* e, int parent, const std::string& name,
                        const char* target, const std::string& where) {
    ASSIGN_OR_RETURN(Components tcomps,
                     CleanName(target, absl::StrCat("entry \"", where,
                                                    "\": hard link target")));
    if (tcomps.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("entry \"", where, "\": hard link to the root"));
    }
    std::string tbase = tcomps.back();
    tcomps.pop_back();
    std::string tpath = absl::StrJoin(tcomps, "/");
    absl::StatusOr<UniqueFd> tparent = Resolve(tcomps, false, where);
    if (!tparent.ok() && absl::IsNotFound(tparent.status())) {
      return absl::NotFoundError(
          absl::StrCat("entry \"", where, "\": hard link target \"", target,
                       "\" is not an earlier entry of the layer"));
    }
    if (!tparent.ok()) {
      return absl::Status(
          tparent.status().code(),
          absl::StrCat("entry \"", where, "\": hard link target \"", target,
                       "\": ", tparent.status().message()));
    }
    struct stat st;
    if (fstatat(tparent->get(), tbase.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      return ErrnoStatus(errno,
                         "entry \"%s\": hard link target \"%s\" is not an "
                         "earlier entry of the layer",
                         where, target);
    }
    if (S_ISDIR(st.st_mode)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "entry \"", where, "\": hard link to directory \"", target, "\""));
    }
    // Linking a name to itself would remove the target first.
    struct stat self;
    if (fstatat(parent, name.c_str(), &self, AT_SYMLINK_NOFOLLOW) == 0 &&
        self.st_dev == st.st_dev && self.st_ino == st.st_ino) {
      return absl::OkStatus();
    }
    RETURN_IF_ERROR(ClearFor(parent, name, false, where).status());
    if (linkat(tparent->get(), tbase.c_str(), parent, name.c_str(), 0) != 0) {
      return ErrnoStatus(errno, "linkat(%s -> %s)", where, target);
    }
    return absl::OkStatus();
  }

  absl::Status Special(archive_entry* e, int parent, const std::string& name,
                       const std::string& where) {
    RETURN_IF_ERROR(ClearFor(parent, name, false, where).status());
    mode_t type = archive_entry_filetype(e);
    dev_t dev = type == AE_IFIFO ? 0
                                 : makedev(archive_entry_rdevmajor(e),
                                           archive_entry_rdevminor(e));
    if (mknodat(parent, name.c_str(), type | archive_entry_perm(e), dev) != 0) {
      if (errno == EPERM && type != AE_IFIFO) {
        LS_LOG(WARNING) << "layer " << blob_path_ << ": skipping device \""
                        << where << "\": mknod not permitted here";
        return absl::OkStatus();
      }
      return ErrnoStatus(errno, "mknodat(%s)", where);
    }
    if (opts_.preserve_owner &&
        fchownat(parent, name.c_str(), archive_entry_uid(e),
                 archive_entry_gid(e), AT_SYMLINK_NOFOLLOW) != 0) {
      return ErrnoStatus(errno, "lchown(%s)", where);
    }
    // mknod applied the umask; set the exact mode.
    if (fchmodat(parent, name.c_str(), archive_entry_perm(e), 0) != 0) {
      return ErrnoStatus(errno, "fchmodat(%s)", where);
    }
    return SetTimesAt(parent, name, e, where);
  }

  const std::string& blob_path_;
  const std::string& media_type_;
  const std::string& dir_;
  const ApplyOptions& opts_;
  const std::string opaque_xattr_;
  UniqueFd root_;
  UniqueFd blob_;
  std::unique_ptr<DecompressingReader> reader_;
  ArchivePtr a_;
  std::vector<char> buf_;
  absl::Status sink_status_;
  AppliedLayer result_;
  std::vector<std::pair<Components, time_t>> dir_times_;
};

}  // namespace

absl::StatusOr<AppliedLayer> ApplyLayer(const std::string& blob_path,
                                        const std::string& media_type,
                                        const std::string& snapshot_dir,
                                        const ApplyOptions& opts) {
  Extractor x(blob_path, media_type, snapshot_dir, opts);
  absl::StatusOr<AppliedLayer> r = x.Run();
  if (!r.ok()) {
    return absl::Status(
        r.status().code(),
        absl::StrCat(
            "apply layer ", blob_path,
            media_type.empty() ? "" : absl::StrCat(" (", media_type, ")"),
            " to ", snapshot_dir, ": ", r.status().message()));
  }
  return r;
}

}  // namespace longshore::image
