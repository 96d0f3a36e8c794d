#include "worker/worker_setup.h"

#include <limits.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/errno_status.h"
#include "common/file_util.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "sandbox/limits.h"
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

}  // namespace

absl::StatusOr<std::string> PrepareStepCgroups(const std::vector<pid_t>& own,
                                               std::string* report) {
  const std::string mount = sandbox::Cgroup2MountPoint();
  std::string self_cgroup;
  if (absl::StatusOr<std::string> self = ReadFile("/proc/self/cgroup");
      self.ok()) {
    for (absl::string_view line : absl::StrSplit(*self, '\n')) {
      if (absl::ConsumePrefix(&line, "0::")) self_cgroup = std::string(line);
    }
  }
  const std::string dir = mount + (self_cgroup == "/" ? "" : self_cgroup);
  if (mount.empty() || self_cgroup.empty() || self_cgroup == "/" ||
      access(dir.c_str(), W_OK) != 0 ||
      access((dir + "/cgroup.procs").c_str(), W_OK) != 0 ||
      access((dir + "/cgroup.subtree_control").c_str(), W_OK) != 0) {
    *report = absl::StrCat(
        "cgroup v2 is not delegated to this worker (",
        mount.empty() ? "no unified hierarchy"
                      : absl::StrCat(dir.empty() ? mount : dir,
                                     self_cgroup == "/" ? " is the root cgroup"
                                                        : " is not writable"),
        "): steps get no cgroup; memory and pids limits fall back to "
        "rlimits");
    return std::string();
  }
  // Cgroup v2 lets a cgroup hand controllers to its children only while it
  // holds no process itself: the worker's own processes (`own`: this one and
  // the one the operator started, waiting outside the user namespace) move to
  // a leaf, and steps get cgroups beside it. Other processes sharing the
  // cgroup (a shell's scope) stay where they are; controllers then cannot be
  // enabled and rlimits stand in.
  const std::string leaf = dir + "/worker";
  if (mkdir(leaf.c_str(), 0755) != 0 && errno != EEXIST) {
    return ErrnoStatus(errno, "mkdir(%s)", leaf);
  }
  for (pid_t pid : own) {
    // A process that exited meanwhile (ESRCH, NOT_FOUND) is no reason to
    // stop.
    absl::Status moved =
        sandbox::WriteCgroupFile(leaf + "/cgroup.procs", std::to_string(pid));
    if (!moved.ok() && !absl::IsNotFound(moved)) return moved;
  }
  ASSIGN_OR_RETURN(std::string others, ReadFile(dir + "/cgroup.procs"));
  const bool shared = !others.empty();
  ASSIGN_OR_RETURN(std::set<std::string> have,
                   sandbox::ReadControllers(dir + "/cgroup.controllers"));
  struct Limit {
    const char* controller;
    const char* file;
    const char* fallback;
  };
  std::vector<std::string> enforced;
  for (const Limit& l : {Limit{"memory", "memory.max", "RLIMIT_AS"},
                         Limit{"pids", "pids.max", "RLIMIT_NPROC"}}) {
    const bool enabled =
        !shared && have.count(l.controller) > 0 &&
        sandbox::WriteCgroupFile(dir + "/cgroup.subtree_control",
                                 absl::StrCat("+", l.controller))
            .ok();
    enforced.push_back(
        enabled ? absl::StrCat(l.controller, " by ", l.file)
                : absl::StrCat(l.controller, " by ", l.fallback, " (",
                               shared ? "other processes share the cgroup"
                                      : absl::StrCat("no ", l.controller,
                                                     " controller delegated"),
                               ")"));
  }
  *report = absl::StrCat("steps run in cgroups under ", dir,
                         "; limits: ", absl::StrJoin(enforced, ", "));
  return dir;
}

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
  std::string report;
  ASSIGN_OR_RETURN(env.cgroup_parent,
                   PrepareStepCgroups({getpid(), env.original_pid}, &report));
  if (env.cgroup_parent.empty()) {
    LS_LOG(WARNING) << report;
  } else {
    LS_LOG(INFO) << report;
  }
  return env;
}

}  // namespace longshore::worker
