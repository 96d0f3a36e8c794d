#include "worker/archive_extract.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <memory>

#include "absl/strings/str_cat.h"
#include "common/errno_status.h"
#include "common/status_macros.h"
#include "common/unique_fd.h"
#include "worker/in_root.h"

namespace longshore::worker {
namespace {

struct ReadDeleter {
  void operator()(archive* a) const { archive_read_free(a); }
};

std::string Join(const std::string& dir, const std::string& rel) {
  std::string clean = CleanPath("/" + rel);  // ".." cannot climb above dest
  if (clean == "/") return CleanPath(dir);
  return CleanPath(dir + clean);
}

// Removes what is at `name` unless it is a directory and `keep_dir`.
absl::Status ClearEntry(int parent, const std::string& name, bool keep_dir,
                        const std::string& display) {
  struct stat st;
  if (fstatat(parent, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    return absl::OkStatus();
  }
  if (S_ISDIR(st.st_mode)) {
    if (keep_dir) return absl::OkStatus();
    if (unlinkat(parent, name.c_str(), AT_REMOVEDIR) != 0) {
      return ErrnoStatus(errno, "replace directory %s", display);
    }
    return absl::OkStatus();
  }
  if (unlinkat(parent, name.c_str(), 0) != 0) {
    return ErrnoStatus(errno, "unlink(%s)", display);
  }
  return absl::OkStatus();
}

}  // namespace

bool LooksLikeArchive(int fd) {
  unsigned char m[262] = {};
  ssize_t n = pread(fd, m, sizeof(m), 0);
  if (n >= 2 && m[0] == 0x1f && m[1] == 0x8b) return true;  // gzip
  if (n >= 3 && m[0] == 'B' && m[1] == 'Z' && m[2] == 'h')
    return true;  // bzip2
  if (n >= 6 && memcmp(m,
                       "\xfd"
                       "7zXZ\0",
                       6) == 0)
    return true;                                                     // xz
  if (n >= 4 && memcmp(m, "\x28\xb5\x2f\xfd", 4) == 0) return true;  // zstd
  if (n >= 262 && memcmp(m + 257, "ustar", 5) == 0) return true;     // tar
  return false;
}

absl::Status ExtractArchiveInRoot(int archive_fd, const std::string& display,
                                  int root_fd, const std::string& dest_dir,
                                  const ArchiveExtractOptions& opts) {
  if (lseek(archive_fd, 0, SEEK_SET) < 0) {
    return ErrnoStatus(errno, "lseek(%s)", display);
  }
  std::unique_ptr<archive, ReadDeleter> in(archive_read_new());
  archive_read_support_filter_all(in.get());
  archive_read_support_format_tar(in.get());
  archive_read_support_format_gnutar(in.get());
  if (archive_read_open_fd(in.get(), archive_fd, 1 << 16) != ARCHIVE_OK) {
    return absl::InvalidArgumentError(
        absl::StrCat("ADD ", display, ": ", archive_error_string(in.get())));
  }
  ASSIGN_OR_RETURN(UniqueFd ignored,
                   MakeDirsInRoot(root_fd, dest_dir, 0755, 0, 0));
  int64_t total = 0;
  for (;;) {
    archive_entry* e = nullptr;
    int r = archive_read_next_header(in.get(), &e);
    if (r == ARCHIVE_EOF) break;
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
      return absl::DataLossError(
          absl::StrCat("ADD ", display, ": ", archive_error_string(in.get())));
    }
    std::string name =
        archive_entry_pathname(e) ? archive_entry_pathname(e) : "";
    std::string path = Join(dest_dir, name);
    std::string shown = absl::StrCat(display, ": ", name);
    auto [parent, base] = SplitParent(path);
    if (base.empty()) continue;  // the destination itself
    mode_t mode = archive_entry_perm(e);
    uid_t uid = opts.uid ? *opts.uid : archive_entry_uid(e);
    gid_t gid = opts.gid ? *opts.gid : archive_entry_gid(e);
    ASSIGN_OR_RETURN(UniqueFd pdir_path,
                     MakeDirsInRoot(root_fd, parent, 0755, 0, 0));
    ASSIGN_OR_RETURN(UniqueFd pdir,
                     OpenInRoot(root_fd, parent, O_RDONLY | O_DIRECTORY));
    struct timespec ts[2] = {{archive_entry_mtime(e), 0},
                             {archive_entry_mtime(e), 0}};
    const char* hardlink = archive_entry_hardlink(e);
    mode_t type = archive_entry_filetype(e);
    if (hardlink != nullptr) {
      ASSIGN_OR_RETURN(UniqueFd target,
                       OpenInRoot(root_fd, Join(dest_dir, hardlink), O_PATH));
      RETURN_IF_ERROR(ClearEntry(pdir.get(), base, false, shown));
      std::string proc = absl::StrCat("/proc/self/fd/", target.get());
      if (linkat(AT_FDCWD, proc.c_str(), pdir.get(), base.c_str(),
                 AT_SYMLINK_FOLLOW) != 0) {
        return ErrnoStatus(errno, "link(%s)", shown);
      }
      continue;
    }
    if (type == AE_IFDIR) {
      RETURN_IF_ERROR(ClearEntry(pdir.get(), base, true, shown));
      if (mkdirat(pdir.get(), base.c_str(), 0700) != 0 && errno != EEXIST) {
        return ErrnoStatus(errno, "mkdir(%s)", shown);
      }
      UniqueFd d(openat(pdir.get(), base.c_str(),
                        O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!d) return ErrnoStatus(errno, "open(%s)", shown);
      if (fchown(d.get(), uid, gid) != 0 || fchmod(d.get(), mode) != 0) {
        return ErrnoStatus(errno, "chown/chmod(%s)", shown);
      }
      futimens(d.get(), ts);
    } else if (type == AE_IFLNK) {
      RETURN_IF_ERROR(ClearEntry(pdir.get(), base, false, shown));
      const char* target = archive_entry_symlink(e);
      if (symlinkat(target ? target : "", pdir.get(), base.c_str()) != 0) {
        return ErrnoStatus(errno, "symlink(%s)", shown);
      }
      if (fchownat(pdir.get(), base.c_str(), uid, gid, AT_SYMLINK_NOFOLLOW) !=
          0) {
        return ErrnoStatus(errno, "lchown(%s)", shown);
      }
      utimensat(pdir.get(), base.c_str(), ts, AT_SYMLINK_NOFOLLOW);
    } else if (type == AE_IFREG) {
      RETURN_IF_ERROR(ClearEntry(pdir.get(), base, false, shown));
      UniqueFd f(openat(pdir.get(), base.c_str(),
                        O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                        0600));
      if (!f) return ErrnoStatus(errno, "create(%s)", shown);
      const void* buf;
      size_t size;
      la_int64_t offset;
      while ((r = archive_read_data_block(in.get(), &buf, &size, &offset)) ==
             ARCHIVE_OK) {
        total += static_cast<int64_t>(size);
        if (opts.max_bytes > 0 && total > opts.max_bytes) {
          return absl::ResourceExhaustedError(
              absl::StrCat("ADD ", display, ": more than ", opts.max_bytes,
                           " bytes when extracted (at ", name, ")"));
        }
        if (pwrite(f.get(), buf, size, offset) != static_cast<ssize_t>(size)) {
          return ErrnoStatus(errno, "write(%s)", shown);
        }
      }
      if (r != ARCHIVE_EOF) {
        return absl::DataLossError(
            absl::StrCat("ADD ", shown, ": ", archive_error_string(in.get())));
      }
      if (fchown(f.get(), uid, gid) != 0 || fchmod(f.get(), mode) != 0) {
        return ErrnoStatus(errno, "chown/chmod(%s)", shown);
      }
      futimens(f.get(), ts);
    } else {
      // Devices, fifos: not meaningful in a build's ADD; skipped as rootless
      // extractors do.
      continue;
    }
  }
  return absl::OkStatus();
}

}  // namespace longshore::worker
