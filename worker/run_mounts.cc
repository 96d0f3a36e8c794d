#include "worker/run_mounts.h"

#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/errno_status.h"
#include "common/file_util.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "worker/in_root.h"

namespace longshore::worker {
namespace {

std::string Describe(const dockerfile::MountSpec& m) {
  return absl::StrCat("RUN --mount=type=", m.type, ",target=", m.target);
}

// Cache ids name directories: hash them so any id is a safe file name.
std::string CacheDirName(const std::string& id) {
  return Sha256Digest(id).substr(7, 32);
}

absl::StatusOr<uint32_t> NumericOption(const dockerfile::MountSpec& m,
                                       const char* key, uint32_t fallback,
                                       int base = 10) {
  auto it = m.options.find(key);
  if (it == m.options.end()) return fallback;
  char* end = nullptr;
  unsigned long v = strtoul(it->second.c_str(), &end, base);
  if (it->second.empty() || *end != '\0' || v > 0xffffffffUL) {
    return absl::InvalidArgumentError(absl::StrCat(
        Describe(m), ": ", key, "=", it->second, " is not a number"));
  }
  return static_cast<uint32_t>(v);
}

}  // namespace

absl::StatusOr<std::string> ResolveInside(const std::string& root,
                                          const std::string& source) {
  UniqueFd root_fd(open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root_fd) return ErrnoStatus(errno, "open(%s)", root);
  ASSIGN_OR_RETURN(UniqueFd fd,
                   OpenInRoot(root_fd.get(), "/" + source, O_PATH));
  // The kernel's name for what openat2 found, which RESOLVE_IN_ROOT kept
  // under the root.
  char buf[PATH_MAX];
  std::string link = absl::StrCat("/proc/self/fd/", fd.get());
  ssize_t n = readlink(link.c_str(), buf, sizeof(buf) - 1);
  if (n < 0) return ErrnoStatus(errno, "readlink(%s)", link);
  buf[n] = '\0';
  std::string resolved = buf;
  char root_real[PATH_MAX];
  if (realpath(root.c_str(), root_real) == nullptr) {
    return ErrnoStatus(errno, "realpath(%s)", root);
  }
  std::string prefix = root_real;
  if (resolved != prefix && resolved.rfind(prefix + "/", 0) != 0) {
    return absl::PermissionDeniedError(
        absl::StrCat(source, " resolves outside its root"));
  }
  return resolved;
}

absl::StatusOr<PreparedMounts> PrepareRunMounts(
    const std::vector<dockerfile::MountSpec>& mounts, const MountContext& ctx) {
  PreparedMounts out;
  for (const dockerfile::MountSpec& m : mounts) {
    if (m.target.empty() && m.type != "secret") {
      return absl::InvalidArgumentError(
          absl::StrCat("RUN --mount=type=", m.type, ": target is required"));
    }
    if (m.type == "cache") {
      std::string id = m.id.empty() ? m.target : m.id;
      std::string dir = absl::StrCat(ctx.cache_root, "/", CacheDirName(id));
      std::string sharing = m.sharing.empty() ? "shared" : m.sharing;
      if (sharing != "shared" && sharing != "private" && sharing != "locked") {
        return absl::InvalidArgumentError(
            absl::StrCat(Describe(m), ": sharing=", sharing,
                         " (want shared, private or locked)"));
      }
      RETURN_IF_ERROR(MakeDirs(ctx.cache_root, 0700));
      std::string lock_path = dir + ".lock";
      UniqueFd lock(
          open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
      if (!lock) return ErrnoStatus(errno, "open(%s)", lock_path);
      if (sharing == "locked") {
        // Steps of concurrent builds wait their turn for the directory.
        while (flock(lock.get(), LOCK_EX) != 0) {
          if (errno != EINTR) return ErrnoStatus(errno, "flock(%s)", lock_path);
        }
      } else if (sharing == "private") {
        // BuildKit: a private cache in use elsewhere gets a fresh instance.
        if (flock(lock.get(), LOCK_EX | LOCK_NB) != 0) {
          ASSIGN_OR_RETURN(dir, MakeTempDir(ctx.scratch_dir, "cache-"));
          out.temp_dirs.push_back(dir);
        }
      } else {
        flock(lock.get(), LOCK_SH);
      }
      if (!PathExists(dir)) {
        ASSIGN_OR_RETURN(uint32_t uid, NumericOption(m, "uid", 0));
        ASSIGN_OR_RETURN(uint32_t gid, NumericOption(m, "gid", 0));
        ASSIGN_OR_RETURN(uint32_t mode, NumericOption(m, "mode", 0755, 8));
        std::string tmp = absl::StrCat(dir, ".new-", getpid(), "-", gettid());
        if (mkdir(tmp.c_str(), 0700) != 0)
          return ErrnoStatus(errno, "mkdir(%s)", tmp);
        if (chown(tmp.c_str(), uid, gid) != 0 ||
            chmod(tmp.c_str(), mode) != 0) {
          int err = errno;
          rmdir(tmp.c_str());
          return ErrnoStatus(err, "chown/chmod(%s)", tmp);
        }
        if (rename(tmp.c_str(), dir.c_str()) != 0) rmdir(tmp.c_str());
      }
      out.locks.push_back(std::move(lock));
      out.sandbox_args.push_back("--bind");
      out.sandbox_args.push_back(absl::StrCat(dir, ":", m.target, ":rw"));
    } else if (m.type == "bind") {
      std::string root;
      if (m.from.empty()) {
        root = ctx.context_dir;
      } else if (m.from_stage >= 0) {
        ASSIGN_OR_RETURN(root, ctx.stage_root(m.from_stage));
      } else {
        return absl::UnimplementedError(
            absl::StrCat(Describe(m), ": from=", m.from,
                         " names an image; bind mounts from images are not "
                         "supported yet (COPY --from works)"));
      }
      auto src = ResolveInside(root, m.source.empty() ? "." : m.source);
      if (!src.ok()) {
        return absl::Status(src.status().code(),
                            absl::StrCat(Describe(m), ": source ", m.source,
                                         ": ", src.status().message()));
      }
      out.sandbox_args.push_back("--bind");
      out.sandbox_args.push_back(
          absl::StrCat(*src, ":", m.target, m.readonly ? ":ro" : ":rw"));
    } else if (m.type == "secret") {
      // BuildKit: the id defaults to the target's base name, the target to
      // /run/secrets/<id>; a missing secret is an error only when required.
      std::string id = m.id;
      if (id.empty()) id = m.target.substr(m.target.rfind('/') + 1);
      auto secret = ctx.secrets.find(id);
      auto required = m.options.find("required");
      if (secret == ctx.secrets.end()) {
        if (required != m.options.end() && required->second == "true") {
          return absl::NotFoundError(absl::StrCat(
              Describe(m), ": secret ", id,
              " was not provided (pass --secret id=", id, ",src=FILE)"));
        }
        continue;
      }
      ASSIGN_OR_RETURN(uint32_t uid, NumericOption(m, "uid", 0));
      ASSIGN_OR_RETURN(uint32_t gid, NumericOption(m, "gid", 0));
      ASSIGN_OR_RETURN(uint32_t mode, NumericOption(m, "mode", 0400, 8));
      std::string path =
          absl::StrCat(ctx.scratch_dir, "/secret-", out.sandbox_args.size());
      RETURN_IF_ERROR(WriteFileAtomic(path, secret->second, 0600));
      if (chown(path.c_str(), uid, gid) != 0 ||
          chmod(path.c_str(), mode) != 0) {
        return ErrnoStatus(errno, "chown/chmod(%s)", path);
      }
      out.sandbox_args.push_back("--bind");
      out.sandbox_args.push_back(absl::StrCat(path, ":", m.target, ":ro"));
    } else if (m.type == "tmpfs") {
      std::string arg = m.target;
      auto size = m.options.find("size");
      if (size != m.options.end()) {
        int64_t bytes = 0;
        if (!absl::SimpleAtoi(size->second, &bytes) || bytes <= 0) {
          return absl::InvalidArgumentError(absl::StrCat(
              Describe(m), ": size=", size->second, " is not a byte count"));
        }
        absl::StrAppend(&arg, ":", bytes);
      }
      out.sandbox_args.push_back("--tmpfs");
      out.sandbox_args.push_back(arg);
    } else {
      return absl::UnimplementedError(absl::StrCat(
          Describe(m), ": type=", m.type,
          " is not supported yet (bind, cache, secret and tmpfs are)"));
    }
  }
  return out;
}

}  // namespace longshore::worker
