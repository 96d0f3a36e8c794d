#include "worker/worker_setup.h"

#include <limits.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "common/errno_status.h"
#include "common/file_util.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "sandbox/userns.h"

namespace longshore::worker {
namespace {

bool IsExecutable(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
         access(path.c_str(), X_OK) == 0;
}

std::string Dirname(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

absl::Status CompileSeccomp(const std::string& sandbox,
                            const std::string& out) {
  pid_t pid = fork();
  if (pid < 0) return ErrnoStatus(errno, "fork");
  if (pid == 0) {
    execl(sandbox.c_str(), sandbox.c_str(), "--write-seccomp-bpf", out.c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return ErrnoStatus(errno, "waitpid");
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return absl::InternalError(absl::StrCat(sandbox, " --write-seccomp-bpf ",
                                            out, " failed (status ", status,
                                            ")"));
  }
  return absl::OkStatus();
}

// cgroup v2 delegation: the worker may create child cgroups only when its own
// cgroup (unified hierarchy) is writable to it.
void ReportCgroups() {
  auto self = ReadFile("/proc/self/cgroup");
  std::string unified;
  if (self.ok()) {
    size_t pos = self->find("0::");
    if (pos != std::string::npos) {
      unified = self->substr(pos + 3);
      unified = unified.substr(0, unified.find('\n'));
    }
  }
  struct stat st;
  bool v2 = stat("/sys/fs/cgroup/cgroup.controllers", &st) == 0;
  std::string dir = absl::StrCat("/sys/fs/cgroup", unified);
  if (!v2 || unified.empty() || access(dir.c_str(), W_OK) != 0) {
    LS_LOG(WARNING) << "cgroup v2 is not delegated to this worker ("
                    << (v2 ? dir + " not writable" : "no unified hierarchy")
                    << "): step memory and pids limits fall back to rlimits";
  }
}

}  // namespace

absl::StatusOr<std::string> FindSandboxBinary(const std::string& flag,
                                              const std::string& self_exe) {
  std::vector<std::string> candidates;
  if (!flag.empty()) {
    candidates.push_back(flag);
  } else {
    if (const char* env = getenv("LONGSHORE_SANDBOX"))
      candidates.push_back(env);
    std::string dir = Dirname(self_exe);
    candidates.push_back(dir + "/longshore-sandbox");
    candidates.push_back(dir + "/../sandbox/longshore-sandbox");
  }
  for (const auto& c : candidates) {
    if (IsExecutable(c)) {
      // A descriptor path (the one-machine farm's) must stay one: the file
      // behind it may be unreachable by name to this user.
      if (c.rfind("/proc/self/fd/", 0) == 0) return c;
      char resolved[PATH_MAX];
      if (realpath(c.c_str(), resolved) != nullptr)
        return std::string(resolved);
      return c;
    }
  }
  return absl::NotFoundError(absl::StrCat(
      "longshore-sandbox not found (looked at ", candidates.front(),
      flag.empty() ? " and beside the worker binary" : "",
      "); pass --sandbox PATH"));
}

absl::StatusOr<WorkerEnvironment> PrepareWorkerProcess(
    const WorkerSetupOptions& opts) {
  WorkerEnvironment env;
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n < 0) return ErrnoStatus(errno, "readlink(/proc/self/exe)");
  self[n] = '\0';
  ASSIGN_OR_RETURN(env.sandbox_binary,
                   FindSandboxBinary(opts.sandbox_flag, self));
  RETURN_IF_ERROR(MakeDirs(opts.work_dir, 0700));
  char abs[PATH_MAX];
  if (realpath(opts.work_dir.c_str(), abs) == nullptr) {
    return ErrnoStatus(errno, "realpath(%s)", opts.work_dir);
  }
  env.work_dir = abs;
  // The marker survives the re-exec, so the child can report the pid the
  // operator knows.
  if (getenv("LONGSHORE_WORKER_PID") == nullptr) {
    setenv("LONGSHORE_WORKER_PID", std::to_string(getpid()).c_str(), 1);
  }
  env.original_pid = atoi(getenv("LONGSHORE_WORKER_PID"));

  sandbox::UserNamespaceOptions uopts;
  uopts.allow_real_root = opts.allow_root;
  RETURN_IF_ERROR(sandbox::EnterUserNamespace(uopts));

  // A mount namespace of our own, owned by our user namespace, for the overlays
  // COPY and WORKDIR mount; private so nothing propagates back to the host.
  if (unshare(CLONE_NEWNS) != 0)
    return ErrnoStatus(errno, "unshare(CLONE_NEWNS)");
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    return ErrnoStatus(errno, "mount(/, MS_REC|MS_PRIVATE)");
  }
  // Scratch space of an earlier run (its mounts died with its namespace).
  RETURN_IF_ERROR(RemoveTree(env.work_dir + "/tmp"));
  RETURN_IF_ERROR(RemoveTree(env.work_dir + "/outputs"));
  RETURN_IF_ERROR(MakeDirs(env.work_dir + "/tmp", 0700));
  if (!opts.no_seccomp) {
    env.seccomp_bpf = env.work_dir + "/seccomp.bpf";
    RETURN_IF_ERROR(CompileSeccomp(env.sandbox_binary, env.seccomp_bpf));
  } else {
    LS_LOG(WARNING) << "--no-seccomp: steps run without a seccomp filter";
  }
  ReportCgroups();
  return env;
}

}  // namespace longshore::worker
