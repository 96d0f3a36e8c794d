// COPY and ADD: inline heredoc files, downloads of http(s) sources (once per
// build), then the local sources from the context, another stage or an image.
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/errno_status.h"
#include "common/file_util.h"
#include "common/status_macros.h"
#include "worker/build_run.h"
#include "worker/copy_files.h"
#include "worker/in_root.h"
#include "worker/passwd.h"

namespace longshore::worker {
namespace build_internal {

absl::Status BuildRun::ExecCopy(const dockerfile::CopyStep& c,
                                const StageResult& r,
                                const std::string& step_dir) {
  ASSIGN_OR_RETURN(StepRoot dst, MountStepRoot(r, step_dir));
  const UniqueFd& dst_fd = dst.fd;
  ASSIGN_OR_RETURN(auto owner, ResolveChown(c.chown, dst_fd.get()));
  std::optional<mode_t> mode;
  if (!c.chmod.empty()) {
    unsigned long m = 0;
    char* end = nullptr;
    m = strtoul(c.chmod.c_str(), &end, 8);
    if (end == nullptr || *end != '\0' || m > 07777) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--chmod=", c.chmod, ": expected an octal mode such as 0755"));
    }
    mode = static_cast<mode_t>(m);
  }
  for (const auto& f : c.inline_files) {
    std::string path = c.dest;
    if (path.empty() || path.back() == '/') path += f.name;
    auto [parent, name] = SplitParent(path);
    ASSIGN_OR_RETURN(
        UniqueFd ignored,
        MakeDirsInRoot(dst_fd.get(), parent, 0755, owner.first, owner.second));
    ASSIGN_OR_RETURN(
        UniqueFd fd,
        OpenInRoot(dst_fd.get(), path,
                   O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0644));
    if (write(fd.get(), f.content.data(), f.content.size()) !=
        static_cast<ssize_t>(f.content.size())) {
      return ErrnoStatus(errno, "write(%s)", path);
    }
    if (fchown(fd.get(), owner.first, owner.second) != 0) {
      return ErrnoStatus(errno, "chown(%s)", path);
    }
    if (fchmod(fd.get(), mode ? *mode : 0644) != 0) {
      return ErrnoStatus(errno, "chmod(%s)", path);
    }
  }
  ASSIGN_OR_RETURN(std::vector<std::string> local, LocalSources(c));
  const bool into_dir = !c.dest.empty() && c.dest.back() == '/';
  // (CopyFiles applies the same rule to local sources.)
  if (local.size() < c.sources.size() && c.sources.size() > 1 && !into_dir) {
    return absl::InvalidArgumentError(
        absl::StrCat(c.add ? "ADD" : "COPY",
                     " with more than one source needs a "
                     "destination ending in '/': ",
                     c.dest));
  }
  for (const auto& url : c.sources) {
    if (!c.add || !IsUrlSource(url)) continue;
    ASSIGN_OR_RETURN(FetchedUrl f, Fetch(url));
    RETURN_IF_ERROR(
        PlaceDownload(f, url, c.dest, into_dir, dst_fd.get(), owner, mode));
  }
  if (!local.empty()) {
    ASSIGN_OR_RETURN(SourceRoot src, OpenSource(c, step_dir + "/from"));
    CopyOptions o;
    o.src_root_fd = src.fd.get();
    o.sources = local;
    o.dest = c.dest;
    o.dst_root_fd = dst_fd.get();
    o.uid = owner.first;
    o.gid = owner.second;
    o.mode = mode;
    o.add = c.add && c.unpack;
    o.chown_given = !c.chown.empty();
    o.instruction = c.add ? "ADD" : "COPY";
    RETURN_IF_ERROR(CopyFiles(o));
  }
  return dst.Unmount();
}

absl::StatusOr<std::pair<uid_t, gid_t>> BuildRun::ResolveChown(
    const std::string& chown, int root_fd) {
  if (chown.empty()) return std::make_pair(uid_t{0}, gid_t{0});
  // Docker: a user without a group uses the user's number as the group.
  ASSIGN_OR_RETURN(sandbox::ResolvedUser u, ResolveUserInRoot(root_fd, chown));
  bool group_given = chown.find(':') != std::string::npos;
  return std::make_pair(u.uid, group_given ? u.gid : u.uid);
}

// The sources of a COPY/ADD read from the context or a stage (not URLs).
// Git sources are refused.
absl::StatusOr<std::vector<std::string>> BuildRun::LocalSources(
    const dockerfile::CopyStep& c) {
  std::vector<std::string> local;
  for (const auto& src : c.sources) {
    const std::string path = src.substr(0, src.find('#'));
    if (c.add && (absl::StartsWith(src, "git@") ||
                  (IsUrlSource(src) && absl::EndsWith(path, ".git")))) {
      return absl::UnimplementedError(absl::StrCat(
          "ADD ", src,
          ": git sources are not supported yet; clone in a RUN step or "
          "add an archive of the repository"));
    }
    if (c.add && IsUrlSource(src)) continue;
    if (!c.checksum.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "ADD --checksum applies to http(s) sources only, not ", src));
    }
    local.push_back(src);
  }
  return local;
}

absl::StatusOr<BuildRun::SourceRoot> BuildRun::OpenSource(
    const dockerfile::CopyStep& c, const std::string& mount_dir) {
  SourceRoot src;
  if (c.from.empty()) {
    src.fd.reset(
        open(req_.context_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!src.fd) return ErrnoStatus(errno, "open(%s)", req_.context_dir);
    return src;
  }
  const StageResult* from = nullptr;
  StageResult pulled;
  if (c.from_stage < 0) {
    auto base = BaseImage(c.from, plan_.options.target_platform);
    if (!base.ok()) {
      return absl::Status(
          base.status().code(),
          absl::StrCat("COPY --from=", c.from, ": no stage or image named ",
                       c.from, ": ", base.status().message()));
    }
    pulled = std::move(*base);
    from = &pulled;
  } else {
    absl::MutexLock l(&mu_);
    auto it = results_.find(c.from_stage);
    if (it == results_.end()) {
      return absl::FailedPreconditionError(
          absl::StrCat("COPY --from=", c.from, ": stage was not built"));
    }
    pulled = it->second;
    from = &pulled;
  }
  RETURN_IF_ERROR(MakeDirs(mount_dir, 0755));
  ASSIGN_OR_RETURN(OverlayMount m, OverlayMount::Mount(Lowers(*from), "", "",
                                                       mount_dir, EmptyDir()));
  src.mount.emplace(std::move(m));
  src.fd.reset(open(mount_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!src.fd) return ErrnoStatus(errno, "open(%s)", mount_dir);
  return src;
}

// ADD <url>: downloaded once per build, from the worker's network.
absl::StatusOr<FetchedUrl> BuildRun::Fetch(const std::string& url) {
  {
    absl::MutexLock l(&mu_);
    auto it = fetched_.find(url);
    if (it != fetched_.end()) return it->second;
  }
  absl::StatusOr<FetchedUrl> f = FetchUrl(url, tmp_);
  if (!f.ok()) {
    return absl::Status(f.status().code(),
                        absl::StrCat("ADD failed: ", f.status().message()));
  }
  absl::MutexLock l(&mu_);
  return fetched_.emplace(url, *f).first->second;
}

// Writes a downloaded ADD source into the step's root: at `dest`, or inside
// it under the URL's file name when it ends in '/' or is a directory. Mode
// 0600 unless --chmod (Docker's rule for URLs), the --chown owner, the
// server's Last-Modified as mtime; archives are not unpacked.
absl::Status BuildRun::PlaceDownload(const FetchedUrl& f,
                                     const std::string& url,
                                     const std::string& dest, bool into_dir,
                                     int dst_fd, std::pair<uid_t, gid_t> owner,
                                     std::optional<mode_t> mode) {
  std::string path = dest;
  if (!into_dir) {
    absl::StatusOr<UniqueFd> existing =
        OpenInRoot(dst_fd, dest, O_PATH | O_DIRECTORY);
    into_dir = existing.ok();
  }
  if (into_dir) {
    if (f.file_name.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("ADD ", url,
                       ": the URL names no file; give a destination file "
                       "name instead of ",
                       dest));
    }
    path = absl::StrCat(dest, dest.back() == '/' ? "" : "/", f.file_name);
  }
  auto [parent, name] = SplitParent(path);
  ASSIGN_OR_RETURN(UniqueFd ignored, MakeDirsInRoot(dst_fd, parent, 0755,
                                                    owner.first, owner.second));
  ASSIGN_OR_RETURN(UniqueFd out,
                   OpenInRoot(dst_fd, path,
                              O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0600));
  UniqueFd in(open(f.path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!in) return ErrnoStatus(errno, "open(%s)", f.path);
  RETURN_IF_ERROR(CopyFdContents(in.get(), out.get(), url, path));
  if (fchown(out.get(), owner.first, owner.second) != 0) {
    return ErrnoStatus(errno, "chown(%s)", path);
  }
  if (fchmod(out.get(), mode ? *mode : 0600) != 0) {
    return ErrnoStatus(errno, "chmod(%s)", path);
  }
  if (f.last_modified) {
    struct timespec times[2] = {{*f.last_modified, 0}, {*f.last_modified, 0}};
    if (futimens(out.get(), times) != 0) {
      return ErrnoStatus(errno, "utimes(%s)", path);
    }
  }
  return absl::OkStatus();
}

}  // namespace build_internal
}  // namespace longshore::worker
