#include "worker/copy_files.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/errno_status.h"
#include "common/file_util.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "worker/archive_extract.h"
#include "worker/in_root.h"

namespace longshore::worker {
namespace {

bool HasWildcard(absl::string_view s) {
  return s.find_first_of("*?[") != absl::string_view::npos;
}

absl::StatusOr<std::vector<std::string>> ListDir(int root_fd,
                                                 const std::string& rel) {
  ASSIGN_OR_RETURN(UniqueFd fd,
                   OpenInRoot(root_fd, rel.empty() ? "/" : "/" + rel,
                              O_RDONLY | O_DIRECTORY));
  return ListDirSorted(fd.get(), rel);
}

class Copier {
 public:
  explicit Copier(const CopyOptions& o) : o_(o) {}

  // Copies the entry `name` of the open source directory `src_dir` to the entry
  // `dst_name` of the open destination directory `dst_dir`.
  absl::Status CopyEntry(int src_dir, const std::string& name, int dst_dir,
                         const std::string& dst_name,
                         const std::string& display) {
    struct stat st;
    if (fstatat(src_dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      return ErrnoStatus(errno, "lstat(%s)", display);
    }
    if (S_ISDIR(st.st_mode)) {
      UniqueFd sub(openat(src_dir, name.c_str(),
                          O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!sub) return ErrnoStatus(errno, "open(%s)", display);
      ASSIGN_OR_RETURN(UniqueFd dst_sub,
                       EnsureDir(dst_dir, dst_name, st.st_mode, display));
      RETURN_IF_ERROR(CopyDirContents(sub.get(), dst_sub.get(), display));
      return SetMeta(dst_sub.get(), st, display);
    }
    RETURN_IF_ERROR(RemoveNonDir(dst_dir, dst_name, display));
    if (S_ISLNK(st.st_mode)) {
      std::string target(st.st_size + 1, '\0');
      ssize_t n =
          readlinkat(src_dir, name.c_str(), target.data(), target.size());
      if (n < 0) return ErrnoStatus(errno, "readlink(%s)", display);
      target.resize(n);
      if (symlinkat(target.c_str(), dst_dir, dst_name.c_str()) != 0) {
        return ErrnoStatus(errno, "symlink(%s)", display);
      }
      if (fchownat(dst_dir, dst_name.c_str(), o_.uid, o_.gid,
                   AT_SYMLINK_NOFOLLOW) != 0) {
        return ErrnoStatus(errno, "lchown(%s)", display);
      }
      struct timespec ts[2] = {st.st_mtim, st.st_mtim};
      utimensat(dst_dir, dst_name.c_str(), ts, AT_SYMLINK_NOFOLLOW);
      return absl::OkStatus();
    }
    if (!S_ISREG(st.st_mode)) {
      return absl::InvalidArgumentError(
          absl::StrCat(o_.instruction, ": ", display,
                       " is not a regular file, directory or symlink"));
    }
    UniqueFd in(
        openat(src_dir, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!in) return ErrnoStatus(errno, "open(%s)", display);
    UniqueFd out(openat(dst_dir, dst_name.c_str(),
                        O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                        0600));
    if (!out) return ErrnoStatus(errno, "create(%s)", display);
    RETURN_IF_ERROR(CopyFdContents(in.get(), out.get(), display, display));
    return SetMeta(out.get(), st, display);
  }

  absl::Status CopyDirContents(int src_dir, int dst_dir,
                               const std::string& display) {
    ASSIGN_OR_RETURN(std::vector<std::string> names,
                     ListDirSorted(src_dir, display));
    for (const std::string& n : names) {
      RETURN_IF_ERROR(
          CopyEntry(src_dir, n, dst_dir, n, absl::StrCat(display, "/", n)));
    }
    return absl::OkStatus();
  }

  // Opens (creating when missing) the directory `name` under `parent`. An
  // existing directory keeps its owner and mode, as Docker merges into it.
  absl::StatusOr<UniqueFd> EnsureDir(int parent, const std::string& name,
                                     mode_t mode, const std::string& display) {
    struct stat st;
    if (fstatat(parent, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
      if (!S_ISDIR(st.st_mode)) {
        RETURN_IF_ERROR(RemoveNonDir(parent, name, display));
      } else {
        UniqueFd fd(openat(parent, name.c_str(),
                           O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!fd) return ErrnoStatus(errno, "open(%s)", display);
        return fd;
      }
    }
    if (mkdirat(parent, name.c_str(), 0700) != 0) {
      return ErrnoStatus(errno, "mkdir(%s)", display);
    }
    UniqueFd fd(openat(parent, name.c_str(),
                       O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd) return ErrnoStatus(errno, "open(%s)", display);
    (void)mode;
    return fd;
  }

  absl::Status RemoveNonDir(int parent, const std::string& name,
                            const std::string& display) {
    struct stat st;
    if (fstatat(parent, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      return absl::OkStatus();
    }
    if (S_ISDIR(st.st_mode)) {
      return absl::FailedPreconditionError(
          absl::StrCat(o_.instruction, ": cannot copy ", display,
                       " over the existing directory ", name));
    }
    if (unlinkat(parent, name.c_str(), 0) != 0) {
      return ErrnoStatus(errno, "unlink(%s)", display);
    }
    return absl::OkStatus();
  }

  absl::Status SetMeta(int fd, const struct stat& st,
                       const std::string& display) {
    if (fchown(fd, o_.uid, o_.gid) != 0) {
      return ErrnoStatus(errno, "chown(%s)", display);
    }
    mode_t mode = o_.mode ? *o_.mode : (st.st_mode & 07777);
    // chown clears set-id bits, so the mode goes last.
    if (fchmod(fd, mode) != 0) return ErrnoStatus(errno, "chmod(%s)", display);
    struct timespec ts[2] = {st.st_mtim, st.st_mtim};
    if (futimens(fd, ts) != 0) {
      return ErrnoStatus(errno, "utimens(%s)", display);
    }
    return absl::OkStatus();
  }

 private:
  const CopyOptions& o_;
};

absl::Status ChecksumEntry(int dir, const std::string& name,
                           const std::string& rel, Sha256* h) {
  // An empty name means `dir` itself (an O_PATH fd of a resolved source).
  const bool self = name.empty();
  const char* at = self ? "." : name.c_str();
  struct stat st;
  if (fstatat(dir, self ? "" : name.c_str(), &st,
              self ? AT_EMPTY_PATH : AT_SYMLINK_NOFOLLOW) != 0) {
    return ErrnoStatus(errno, "lstat(%s)", rel);
  }
  std::string header = rel;
  header.push_back('\0');
  header += std::to_string(st.st_mode & (S_IFMT | 07777));
  header.push_back('\0');
  h->Update(header);
  if (S_ISLNK(st.st_mode)) {
    std::string target(st.st_size + 1, '\0');
    ssize_t n = readlinkat(dir, name.c_str(), target.data(), target.size());
    if (n < 0) return ErrnoStatus(errno, "readlink(%s)", rel);
    target.resize(n);
    h->Update(target);
  } else if (S_ISREG(st.st_mode)) {
    UniqueFd fd(self ? openat(dir, ".", O_RDONLY | O_CLOEXEC) : -1);
    if (self) {
      // `.` of a non-directory O_PATH fd fails; reopen through /proc instead.
      fd.reset(open(absl::StrCat("/proc/self/fd/", dir).c_str(),
                    O_RDONLY | O_CLOEXEC));
    } else {
      fd.reset(openat(dir, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    }
    if (!fd) return ErrnoStatus(errno, "open(%s)", rel);
    char buf[1 << 16];
    for (;;) {
      ssize_t n = read(fd.get(), buf, sizeof(buf));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return ErrnoStatus(errno, "read(%s)", rel);
      if (n == 0) break;
      h->Update(buf, n);
    }
  } else if (S_ISDIR(st.st_mode)) {
    UniqueFd sub(
        openat(dir, at, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!sub) return ErrnoStatus(errno, "open(%s)", rel);
    ASSIGN_OR_RETURN(std::vector<std::string> names,
                     ListDirSorted(sub.get(), rel));
    for (const std::string& n : names) {
      RETURN_IF_ERROR(
          ChecksumEntry(sub.get(), n, absl::StrCat(rel, "/", n), h));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ExpandSource(int src_root_fd,
                                                      const std::string& src) {
  std::string clean = CleanPath("/" + src);
  if (!HasWildcard(clean)) {
    auto fd = OpenInRoot(src_root_fd, clean, O_PATH);
    if (!fd.ok()) {
      if (fd.status().code() == absl::StatusCode::kNotFound) {
        return absl::NotFoundError(absl::StrCat("\"", clean, "\": not found"));
      }
      return fd.status();
    }
    return std::vector<std::string>{clean == "/" ? "" : clean.substr(1)};
  }
  std::vector<std::string> matches{""};
  for (absl::string_view part : absl::StrSplit(clean, '/')) {
    if (part.empty()) continue;
    std::vector<std::string> next;
    std::string pattern(part);
    for (const std::string& base : matches) {
      if (!HasWildcard(pattern)) {
        std::string cand = base.empty() ? pattern : base + "/" + pattern;
        if (OpenInRoot(src_root_fd, "/" + cand, O_PATH).ok()) {
          next.push_back(cand);
        }
        continue;
      }
      auto names = ListDir(src_root_fd, base);
      if (!names.ok()) continue;  // not a directory: no match below it
      for (const std::string& n : *names) {
        if (fnmatch(pattern.c_str(), n.c_str(), FNM_PERIOD) == 0) {
          next.push_back(base.empty() ? n : base + "/" + n);
        }
      }
    }
    matches = std::move(next);
  }
  if (matches.empty()) {
    return absl::NotFoundError(
        absl::StrCat("\"", clean, "\": no source files match"));
  }
  std::sort(matches.begin(), matches.end());
  return matches;
}

absl::StatusOr<std::string> ChecksumSources(
    int src_root_fd, const std::vector<std::string>& sources) {
  Sha256 h;
  for (const std::string& src : sources) {
    ASSIGN_OR_RETURN(std::vector<std::string> matches,
                     ExpandSource(src_root_fd, src));
    for (const std::string& m : matches) {
      auto [parent, name] = SplitParent("/" + m);
      ASSIGN_OR_RETURN(UniqueFd dir,
                       OpenInRoot(src_root_fd, parent, O_RDONLY | O_DIRECTORY));
      if (name.empty()) {
        // The whole root: checksum its entries.
        RETURN_IF_ERROR(ChecksumEntry(dir.get(), "", ".", &h));
      } else {
        // Follow a top-level symlink the way the copy does.
        ASSIGN_OR_RETURN(UniqueFd target,
                         OpenInRoot(src_root_fd, "/" + m, O_PATH));
        RETURN_IF_ERROR(ChecksumEntry(target.get(), "", m, &h));
      }
    }
  }
  return h.Digest();
}

absl::Status CopyFiles(const CopyOptions& o) {
  std::vector<std::string> all;
  bool wildcard = false;
  for (const std::string& src : o.sources) {
    if (HasWildcard(src)) wildcard = true;
    auto matches = ExpandSource(o.src_root_fd, src);
    if (!matches.ok()) {
      return absl::Status(matches.status().code(),
                          absl::StrCat(o.instruction, " ", src, ": ",
                                       matches.status().message()));
    }
    all.insert(all.end(), matches->begin(), matches->end());
  }
  bool dest_is_dir_syntax = absl::EndsWith(o.dest, "/") ||
                            absl::EndsWith(o.dest, "/.") || o.dest == ".";
  if ((all.size() > 1 || (wildcard && all.size() > 1)) && !dest_is_dir_syntax) {
    return absl::InvalidArgumentError(absl::StrCat(
        "When using ", o.instruction,
        " with more than one source file, the destination must be a "
        "directory and end with a /"));
  }
  std::string dest = CleanPath(o.dest);
  Copier copier(o);
  for (const std::string& rel : all) {
    ASSIGN_OR_RETURN(UniqueFd src,
                     OpenInRoot(o.src_root_fd, "/" + rel, O_RDONLY | O_NOCTTY));
    struct stat st;
    if (fstat(src.get(), &st) != 0) return ErrnoStatus(errno, "stat(%s)", rel);
    std::string display = rel.empty() ? "." : rel;
    if (S_ISDIR(st.st_mode)) {
      ASSIGN_OR_RETURN(UniqueFd dst,
                       MakeDirsInRoot(o.dst_root_fd, dest, 0755, o.uid, o.gid));
      // MakeDirsInRoot returns an O_PATH fd for existing dirs; reopen for I/O.
      ASSIGN_OR_RETURN(UniqueFd dst_dir,
                       OpenInRoot(o.dst_root_fd, dest, O_RDONLY | O_DIRECTORY));
      RETURN_IF_ERROR(
          copier.CopyDirContents(src.get(), dst_dir.get(), display));
      continue;
    }
    if (o.add && S_ISREG(st.st_mode) && LooksLikeArchive(src.get())) {
      // ADD unpacks a local archive into the destination directory.
      ArchiveExtractOptions xo;
      if (o.chown_given) {
        xo.uid = o.uid;
        xo.gid = o.gid;
      }
      RETURN_IF_ERROR(
          ExtractArchiveInRoot(src.get(), display, o.dst_root_fd, dest, xo));
      continue;
    }
    // Where does the file go: into dest (a directory) or at dest itself?
    std::string target = dest;
    bool into = dest_is_dir_syntax;
    if (!into) {
      auto existing = OpenInRoot(o.dst_root_fd, dest, O_PATH);
      if (existing.ok()) {
        struct stat dst_st;
        if (fstat(existing->get(), &dst_st) == 0 && S_ISDIR(dst_st.st_mode)) {
          into = true;
        }
      }
    }
    std::string base = rel.substr(rel.rfind('/') + 1);
    if (into) target = dest == "/" ? "/" + base : dest + "/" + base;
    auto [parent, name] = SplitParent(target);
    ASSIGN_OR_RETURN(UniqueFd ignored,
                     MakeDirsInRoot(o.dst_root_fd, parent, 0755, o.uid, o.gid));
    ASSIGN_OR_RETURN(UniqueFd parent_fd,
                     OpenInRoot(o.dst_root_fd, parent, O_RDONLY | O_DIRECTORY));
    // The source may be a symlink at top level: copy what it points to.
    auto [src_parent, src_name] = SplitParent("/" + rel);
    ASSIGN_OR_RETURN(
        UniqueFd src_parent_fd,
        OpenInRoot(o.src_root_fd, src_parent, O_RDONLY | O_DIRECTORY));
    struct stat lst;
    if (fstatat(src_parent_fd.get(), src_name.c_str(), &lst,
                AT_SYMLINK_NOFOLLOW) == 0 &&
        S_ISLNK(lst.st_mode)) {
      // Copy the resolved file's bytes under the requested name.
      UniqueFd out(openat(parent_fd.get(), name.c_str(),
                          O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
                          0600));
      if (!out) return ErrnoStatus(errno, "create(%s)", target);
      RETURN_IF_ERROR(CopyFdContents(src.get(), out.get(), display, display));
      RETURN_IF_ERROR(copier.SetMeta(out.get(), st, display));
      continue;
    }
    RETURN_IF_ERROR(copier.CopyEntry(src_parent_fd.get(), src_name,
                                     parent_fd.get(), name, display));
  }
  return absl::OkStatus();
}

}  // namespace longshore::worker
