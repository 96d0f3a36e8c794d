#include "sandbox/limits.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <set>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/errno_status.h"
#include "common/file_util.h"
#include "common/status_macros.h"

namespace longshore::sandbox {
namespace {

int SetBoth(int resource, uint64_t value) {
  struct rlimit rl;
  rl.rlim_cur = rl.rlim_max = static_cast<rlim_t>(value);
  if (::setrlimit(resource, &rl) != 0) {
    // Lowering never needs privilege; EPERM means the value is above the
    // inherited hard limit, which then already is the stricter one.
    if (errno != EPERM) return errno;
    struct rlimit cur;
    if (::getrlimit(resource, &cur) != 0) return errno;
    cur.rlim_cur = cur.rlim_max;
    if (::setrlimit(resource, &cur) != 0) return errno;
  }
  return 0;
}

}  // namespace

int ApplyCommandRlimits(const StepLimits& limits) {
  // A crashing build tool would otherwise write a core file into the layer.
  if (int e = SetBoth(RLIMIT_CORE, 0); e != 0) return e;
  if (limits.nofile > 0) {
    if (int e = SetBoth(RLIMIT_NOFILE, limits.nofile); e != 0) return e;
  }
  if (limits.disk_bytes > 0) {
    // One file can never exceed the whole budget (SIGXFSZ/EFBIG), whatever
    // the polling interval of the upper-directory check.
    if (int e = SetBoth(RLIMIT_FSIZE, limits.disk_bytes); e != 0) return e;
  }
  if (limits.memory_bytes > 0 && !limits.memory_in_cgroup) {
    if (int e = SetBoth(RLIMIT_AS, limits.memory_bytes); e != 0) return e;
  }
  if (limits.pids > 0 && !limits.pids_in_cgroup) {
    if (int e = SetBoth(RLIMIT_NPROC, limits.pids); e != 0) return e;
  }
  for (int i = 0; i < limits.ulimit_count; ++i) {
    const Ulimit& u = limits.ulimits[i];
    struct rlimit cur;
    if (::getrlimit(u.resource, &cur) != 0) return errno;
    // Raising a hard limit needs CAP_SYS_RESOURCE in the initial namespace;
    // the worker's limits (set above) and its own bound the build's.
    rlim_t hard = std::min<rlim_t>(static_cast<rlim_t>(u.hard), cur.rlim_max);
    rlim_t soft = std::min<rlim_t>(static_cast<rlim_t>(u.soft), hard);
    struct rlimit rl;
    rl.rlim_cur = soft;
    rl.rlim_max = hard;
    if (::setrlimit(u.resource, &rl) != 0) return errno;
  }
  return 0;
}

int SetNamespaceTaskLimit(uint64_t pids) {
  return SetBoth(RLIMIT_NPROC, pids + 1);
}

absl::StatusOr<uint64_t> DiskUsage(int dir_fd, uint64_t stop_above) {
  struct Level {
    DIR* dir;
  };
  std::vector<Level> stack;
  auto close_all = [&stack] {
    for (Level& l : stack) ::closedir(l.dir);
    stack.clear();
  };
  uint64_t total = 0;
  std::set<std::pair<dev_t, ino_t>> linked;
  struct stat st;
  if (::fstat(dir_fd, &st) != 0) return ErrnoStatus(errno, "fstat(upper)");
  total += static_cast<uint64_t>(st.st_blocks) * 512;
  int first = ::openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (first < 0) return ErrnoStatus(errno, "open(upper)");
  DIR* d = ::fdopendir(first);
  if (d == nullptr) {
    ::close(first);
    return ErrnoStatus(errno, "fdopendir(upper)");
  }
  stack.push_back({d});
  while (!stack.empty()) {
    DIR* cur = stack.back().dir;
    errno = 0;
    struct dirent* e = ::readdir(cur);
    if (e == nullptr) {
      ::closedir(cur);
      stack.pop_back();
      continue;
    }
    if (e->d_name[0] == '.' &&
        (e->d_name[1] == '\0' ||
         (e->d_name[1] == '.' && e->d_name[2] == '\0'))) {
      continue;
    }
    // Entries may vanish while the step runs; that is not an error.
    if (::fstatat(::dirfd(cur), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      continue;
    }
    if (!S_ISDIR(st.st_mode) && st.st_nlink > 1 &&
        !linked.insert({st.st_dev, st.st_ino}).second) {
      continue;
    }
    total += static_cast<uint64_t>(st.st_blocks) * 512;
    if (stop_above > 0 && total > stop_above) {
      close_all();
      return total;
    }
    if (!S_ISDIR(st.st_mode)) continue;
    if (static_cast<int>(stack.size()) >= kMaxDiskWalkDepth) {
      close_all();
      return absl::ResourceExhaustedError(
          absl::StrCat("directories nested deeper than ", kMaxDiskWalkDepth,
                       " levels cannot be measured"));
    }
    int sub = ::openat(::dirfd(cur), e->d_name,
                       O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sub < 0) continue;
    DIR* sd = ::fdopendir(sub);
    if (sd == nullptr) {
      ::close(sub);
      continue;
    }
    stack.push_back({sd});
  }
  return total;
}

std::string Cgroup2MountPoint() {
  absl::StatusOr<std::string> info = ReadFile("/proc/self/mountinfo");
  if (!info.ok()) return "";
  // "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE ..."
  for (absl::string_view line : absl::StrSplit(*info, '\n')) {
    std::vector<absl::string_view> f = absl::StrSplit(line, ' ');
    auto dash = std::find(f.begin(), f.end(), "-");
    if (f.size() > 4 && dash != f.end() && dash + 1 != f.end() &&
        *(dash + 1) == "cgroup2") {
      return std::string(f[4]);
    }
  }
  return "";
}

absl::Status WriteCgroupFile(const std::string& path,
                             const std::string& value) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) return ErrnoStatus(errno, "open(%s)", path);
  if (::write(fd.get(), value.data(), value.size()) !=
      static_cast<ssize_t>(value.size())) {
    return ErrnoStatus(errno, "write(%s, %s)", path, value);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::set<std::string>> ReadControllers(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  std::set<std::string> out;
  for (absl::string_view c :
       absl::StrSplit(text, absl::ByAnyChar(" \n"), absl::SkipEmpty())) {
    out.insert(std::string(c));
  }
  return out;
}

absl::Status WriteCgroupLimits(const std::string& dir,
                               const std::set<std::string>& delegated,
                               StepLimits* limits) {
  limits->memory_in_cgroup = false;
  limits->pids_in_cgroup = false;
  if (limits->memory_bytes > 0 && delegated.count("memory") > 0) {
    RETURN_IF_ERROR(WriteCgroupFile(dir + "/memory.max",
                                    absl::StrCat(limits->memory_bytes)));
    // Swap would let the step go past the limit; a group OOM kill takes the
    // whole step down rather than one process of it.
    (void)WriteCgroupFile(dir + "/memory.swap.max", "0");
    RETURN_IF_ERROR(WriteCgroupFile(dir + "/memory.oom.group", "1"));
    limits->memory_in_cgroup = true;
  }
  if (limits->pids > 0 && delegated.count("pids") > 0) {
    RETURN_IF_ERROR(
        WriteCgroupFile(dir + "/pids.max", absl::StrCat(limits->pids + 1)));
    limits->pids_in_cgroup = true;
  }
  return absl::OkStatus();
}

absl::StatusOr<StepCgroup> StepCgroup::Create(const std::string& parent,
                                              const std::string& name,
                                              StepLimits* limits) {
  ASSIGN_OR_RETURN(std::set<std::string> enabled,
                   ReadControllers(parent + "/cgroup.subtree_control"));
  const std::string path = absl::StrCat(parent, "/", name);
  if (::mkdir(path.c_str(), 0755) != 0) {
    return ErrnoStatus(errno, "mkdir(%s)", path);
  }
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) {
    int err = errno;
    ::rmdir(path.c_str());
    return ErrnoStatus(err, "open(%s)", path);
  }
  StepCgroup cg(path, std::move(fd));
  RETURN_IF_ERROR(WriteCgroupLimits(path, enabled, limits));
  return cg;
}

StepCgroup::StepCgroup(StepCgroup&& other) noexcept
    : path_(std::move(other.path_)), fd_(std::move(other.fd_)) {
  other.path_.clear();
}

StepCgroup::~StepCgroup() {
  if (path_.empty()) return;
  fd_.reset();
  // The cgroup empties once the last task is reaped; rmdir races that by a
  // moment (EBUSY), so retry briefly.
  for (int i = 0; i < 100; ++i) {
    if (::rmdir(path_.c_str()) == 0 || errno != EBUSY) return;
    ::usleep(2000);
  }
}

bool StepCgroup::OomKilled() const {
  absl::StatusOr<std::string> events = ReadFile(path_ + "/memory.events");
  if (!events.ok()) return false;
  for (absl::string_view line : absl::StrSplit(*events, '\n')) {
    if (absl::ConsumePrefix(&line, "oom_kill ")) {
      uint64_t n = 0;
      return absl::SimpleAtoi(line, &n) && n > 0;
    }
  }
  return false;
}

}  // namespace longshore::sandbox
