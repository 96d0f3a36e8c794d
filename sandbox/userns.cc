#include "sandbox/userns.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/errno_status.h"
#include "common/file_util.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "common/unique_fd.h"

extern char** environ;

namespace longshore::sandbox {
namespace {

// Written to from signal handlers only through kill(2), which is
// async-signal-safe.
volatile sig_atomic_t g_forward_pid = 0;

constexpr int kForwardedSignals[] = {SIGTERM, SIGINT,  SIGHUP,
                                     SIGQUIT, SIGUSR1, SIGUSR2};

void ForwardSignal(int sig) {
  pid_t pid = g_forward_pid;
  if (pid > 0) ::kill(pid, sig);
}

absl::Status WriteProcFile(const std::string& path, const std::string& data) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) return ErrnoStatus(errno, "open(%s)", path);
  // Id map files must be written with a single write(2).
  ssize_t n = ::write(fd.get(), data.data(), data.size());
  if (n < 0) return ErrnoStatus(errno, "write(%s)", path);
  if (static_cast<size_t>(n) != data.size()) {
    return absl::InternalError(absl::StrCat("short write to ", path));
  }
  return absl::OkStatus();
}

bool FindExecutable(const std::string& name) {
  if (name.find('/') != std::string::npos) {
    return ::access(name.c_str(), X_OK) == 0;
  }
  const char* path = ::getenv("PATH");
  std::string dirs = path != nullptr && *path != '\0'
                         ? path
                         : "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin";
  for (absl::string_view dir : absl::StrSplit(dirs, ':', absl::SkipEmpty())) {
    std::string candidate = absl::StrCat(dir, "/", name);
    if (::access(candidate.c_str(), X_OK) == 0) return true;
  }
  return false;
}

// Runs `argv` with an empty environment and waits for it; its stderr is ours.
absl::Status RunHelper(const std::vector<std::string>& argv) {
  std::vector<char*> cargv;
  for (const std::string& a : argv)
    cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  char* empty_env[] = {nullptr};
  pid_t pid;
  int rc =
      ::posix_spawnp(&pid, cargv[0], nullptr, nullptr, cargv.data(), empty_env);
  if (rc != 0) return ErrnoStatus(rc, "posix_spawnp(%s)", argv[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return ErrnoStatus(errno, "waitpid(%s)", argv[0]);
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        absl::StrJoin(argv, " "), ": failed with status ", status));
  }
  return absl::OkStatus();
}

std::vector<std::string> HelperArgs(const std::string& helper, pid_t pid,
                                    const std::vector<IdMapExtent>& map) {
  std::vector<std::string> args = {helper, absl::StrCat(pid)};
  for (const IdMapExtent& e : map) {
    args.push_back(absl::StrCat(e.inside));
    args.push_back(absl::StrCat(e.outside));
    args.push_back(absl::StrCat(e.count));
  }
  return args;
}

// The name of `uid` from /etc/passwd. Read directly rather than through NSS:
// longshore-sandbox is linked statically, where NSS modules cannot load. A
// user known only to another NSS source is still matched by uid in
// /etc/subuid.
std::string UserName(uid_t uid) {
  absl::StatusOr<std::string> passwd = ReadFile("/etc/passwd");
  if (!passwd.ok()) return "";
  for (absl::string_view line : absl::StrSplit(*passwd, '\n')) {
    std::vector<absl::string_view> f = absl::StrSplit(line, ':');
    uint32_t id = 0;
    if (f.size() >= 3 && absl::SimpleAtoi(f[2], &id) && id == uid) {
      return std::string(f[0]);
    }
  }
  return "";
}

absl::StatusOr<std::vector<std::string>> ReadCmdline() {
  ASSIGN_OR_RETURN(std::string raw, ReadFile("/proc/self/cmdline"));
  std::vector<std::string> argv;
  size_t start = 0;
  while (start < raw.size()) {
    size_t end = raw.find('\0', start);
    if (end == std::string::npos) end = raw.size();
    argv.push_back(raw.substr(start, end - start));
    start = end + 1;
  }
  if (argv.empty()) return absl::InternalError("empty /proc/self/cmdline");
  return argv;
}

// Fails fast in the child: one line to `fd`, then _exit.
[[noreturn]] void ChildFail(int fd, const absl::Status& status) {
  std::string line = absl::StrCat(status.message(), "\n");
  (void)!::write(fd, line.data(), line.size());
  ::_exit(125);
}

[[noreturn]] void WaitAndMirror(pid_t child) {
  int status = 0;
  while (::waitpid(child, &status, 0) < 0) {
    if (errno != EINTR) ::_exit(125);
  }
  if (WIFEXITED(status)) ::_exit(WEXITSTATUS(status));
  int sig = WTERMSIG(status);
  // Die the way the child died, so our parent sees the same status.
  ::signal(sig, SIG_DFL);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, sig);
  ::sigprocmask(SIG_UNBLOCK, &set, nullptr);
  ::raise(sig);
  ::_exit(128 + sig);
}

}  // namespace

bool InInitialUserNamespace() {
  absl::StatusOr<std::string> text = ReadFile("/proc/self/uid_map");
  if (!text.ok()) return true;
  absl::StatusOr<std::vector<IdMapExtent>> map = ParseIdMap(*text);
  return !map.ok() || IsInitialIdMap(*map);
}

bool InWorkerUserNamespace() {
  const char* marker = ::getenv(kUserNamespaceMarkerEnv);
  return marker != nullptr && std::string(marker) == "1" &&
         !InInitialUserNamespace();
}

absl::Status CheckSingleThreaded() {
  ASSIGN_OR_RETURN(std::string status, ReadFile("/proc/self/status"));
  for (absl::string_view line : absl::StrSplit(status, '\n')) {
    if (!absl::ConsumePrefix(&line, "Threads:")) continue;
    int threads = 0;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(line), &threads)) break;
    if (threads != 1) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the process has ", threads,
          " threads; a user namespace must be entered before any thread "
          "starts"));
    }
    return absl::OkStatus();
  }
  return absl::InternalError("no Threads: line in /proc/self/status");
}

absl::StatusOr<UserNamespacePlan> PlanUserNamespace(
    const UserNamespaceOptions& opts) {
  const uid_t uid = ::geteuid();
  const gid_t gid = ::getegid();
  const std::string name = UserName(uid);
  UserNamespacePlan plan;
  std::string why_not;
  absl::StatusOr<SubordinateIdFile> subuid =
      SubordinateIdFile::Load(opts.subuid_path);
  absl::StatusOr<SubordinateIdFile> subgid =
      SubordinateIdFile::Load(opts.subgid_path);
  if (!subuid.ok() || !subgid.ok()) {
    why_not = !subuid.ok() ? std::string(subuid.status().message())
                           : std::string(subgid.status().message());
  } else {
    absl::StatusOr<SubordinateRange> ur =
        subuid->FirstRangeFor(name, uid, opts.range_size);
    absl::StatusOr<SubordinateRange> gr =
        subgid->FirstRangeFor(name, gid, opts.range_size);
    // A user's group range is listed under the user's name (shadow's
    // convention), so look it up by name and uid as well.
    if (!gr.ok()) gr = subgid->FirstRangeFor(name, uid, opts.range_size);
    if (!ur.ok() || !gr.ok()) {
      why_not = absl::StrCat("user ", name.empty() ? absl::StrCat(uid) : name,
                             " has no subordinate range of ", opts.range_size,
                             " ids in ",
                             !ur.ok() ? opts.subuid_path : opts.subgid_path);
    } else if (!FindExecutable(opts.newuidmap) ||
               !FindExecutable(opts.newgidmap)) {
      why_not = absl::StrCat(opts.newuidmap, "/", opts.newgidmap,
                             " not found (install the uidmap package)");
    } else {
      plan.use_helpers = true;
      plan.uid_map.push_back({0, ur->start, opts.range_size});
      plan.gid_map.push_back({0, gr->start, opts.range_size});
      if (opts.map_own_ids) {
        plan.uid_map.push_back({opts.range_size, uid, 1});
        plan.gid_map.push_back({opts.range_size, gid, 1});
      }
      return plan;
    }
  }
  plan.use_helpers = false;
  plan.uid_map.push_back({0, uid, 1});
  plan.gid_map.push_back({0, gid, 1});
  plan.warning = absl::StrCat(
      why_not, "; mapping only uid ", uid, " and gid ", gid,
      " to root: steps that use other ids (apt's _apt, USER 1000) will fail");
  return plan;
}

absl::Status ApplyUserNamespacePlan(pid_t pid, const UserNamespacePlan& plan,
                                    const UserNamespaceOptions& opts) {
  if (plan.use_helpers) {
    RETURN_IF_ERROR(RunHelper(HelperArgs(opts.newuidmap, pid, plan.uid_map)));
    return RunHelper(HelperArgs(opts.newgidmap, pid, plan.gid_map));
  }
  const std::string proc = absl::StrCat("/proc/", pid);
  // Without CAP_SETGID in the parent namespace the kernel accepts a gid map
  // only once setgroups(2) is denied for good.
  RETURN_IF_ERROR(WriteProcFile(proc + "/setgroups", "deny"));
  RETURN_IF_ERROR(WriteProcFile(proc + "/uid_map", FormatIdMap(plan.uid_map)));
  return WriteProcFile(proc + "/gid_map", FormatIdMap(plan.gid_map));
}

absl::Status EnterUserNamespace(const UserNamespaceOptions& opts) {
  if (InWorkerUserNamespace()) return absl::OkStatus();
  auto warn = [&opts](const std::string& message) {
    if (opts.warn) {
      opts.warn(message);
    } else {
      LS_LOG(WARNING) << message;
    }
  };
  const bool real_root = ::geteuid() == 0 && InInitialUserNamespace();
  if (real_root && !opts.allow_real_root) {
    return absl::FailedPreconditionError(
        "refusing to run as real root (uid 0 in the initial user namespace): "
        "run as an unprivileged user with a subordinate id range, or pass the "
        "explicit allow-real-root option");
  }
  RETURN_IF_ERROR(CheckSingleThreaded());
  ASSIGN_OR_RETURN(UserNamespacePlan plan, PlanUserNamespace(opts));
  if (real_root && !plan.use_helpers) {
    warn(
        "running as real root without a user namespace: root has no "
        "subordinate id range");
    return absl::OkStatus();
  }
  if (!plan.warning.empty()) warn(plan.warning);
  ASSIGN_OR_RETURN(std::vector<std::string> argv, ReadCmdline());

  // to_child: the parent says the maps are written (or closes on failure).
  // from_child: the child says it has unshared, then reports errors as text.
  int to_child[2], from_child[2];
  if (::pipe2(to_child, O_CLOEXEC) != 0) return ErrnoStatus(errno, "pipe2");
  UniqueFd to_child_r(to_child[0]), to_child_w(to_child[1]);
  if (::pipe2(from_child, O_CLOEXEC) != 0) return ErrnoStatus(errno, "pipe2");
  UniqueFd from_child_r(from_child[0]), from_child_w(from_child[1]);

  // Handlers are installed before fork so no signal is lost in between.
  struct sigaction sa = {};
  sa.sa_handler = ForwardSignal;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  struct sigaction old_actions[sizeof(kForwardedSignals) / sizeof(int)];
  for (size_t i = 0; i < sizeof(kForwardedSignals) / sizeof(int); ++i) {
    ::sigaction(kForwardedSignals[i], &sa, &old_actions[i]);
  }
  auto restore_signals = [&old_actions] {
    for (size_t i = 0; i < sizeof(kForwardedSignals) / sizeof(int); ++i) {
      ::sigaction(kForwardedSignals[i], &old_actions[i], nullptr);
    }
  };
  const pid_t parent = ::getpid();
  pid_t child = ::fork();
  if (child < 0) {
    int err = errno;
    restore_signals();
    return ErrnoStatus(err, "fork");
  }
  if (child == 0) {
    restore_signals();
    to_child_w.reset();
    from_child_r.reset();
    const int err_fd = from_child_w.get();
    if (::unshare(CLONE_NEWUSER) != 0) {
      ChildFail(err_fd, ErrnoStatus(errno, "unshare(CLONE_NEWUSER)"));
    }
    char c = 'u';
    if (::write(err_fd, &c, 1) != 1) ::_exit(125);
    ssize_t n;
    do {
      n = ::read(to_child_r.get(), &c, 1);
    } while (n < 0 && errno == EINTR);
    if (n != 1) ::_exit(125);  // The parent reports what went wrong.
    // Until now the process ran as the unmapped (or own-id) user; become root
    // of the namespace so execve keeps the full capability set.
    if (plan.use_helpers && ::setgroups(0, nullptr) != 0) {
      ChildFail(err_fd, ErrnoStatus(errno, "setgroups(0)"));
    }
    if (::setresgid(0, 0, 0) != 0) {
      ChildFail(err_fd, ErrnoStatus(errno, "setresgid(0)"));
    }
    if (::setresuid(0, 0, 0) != 0) {
      ChildFail(err_fd, ErrnoStatus(errno, "setresuid(0)"));
    }
    // Set after the credential change, which clears it.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(125);
    std::vector<std::string> env;
    for (char** e = environ; *e != nullptr; ++e) {
      if (absl::StartsWith(*e, absl::StrCat(kUserNamespaceMarkerEnv, "="))) {
        continue;
      }
      env.push_back(*e);
    }
    env.push_back(absl::StrCat(kUserNamespaceMarkerEnv, "=1"));
    std::vector<char*> cargv, cenv;
    for (std::string& a : argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    for (std::string& e : env) cenv.push_back(e.data());
    cenv.push_back(nullptr);
    ::execve("/proc/self/exe", cargv.data(), cenv.data());
    ChildFail(err_fd, ErrnoStatus(errno, "execve(/proc/self/exe)"));
  }
  g_forward_pid = child;
  to_child_r.reset();
  from_child_w.reset();
  auto fail = [&](const absl::Status& status) {
    ::kill(child, SIGKILL);
    int ignored;
    while (::waitpid(child, &ignored, 0) < 0 && errno == EINTR) {
    }
    g_forward_pid = 0;
    restore_signals();
    return status;
  };
  char c = 0;
  ssize_t n;
  do {
    n = ::read(from_child_r.get(), &c, 1);
  } while (n < 0 && errno == EINTR);
  if (n != 1 || c != 'u') {
    std::string message = n == 1 ? std::string(1, c) : std::string();
    char buf[512];
    while ((n = ::read(from_child_r.get(), buf, sizeof(buf))) > 0) {
      message.append(buf, n);
    }
    while (!message.empty() && message.back() == '\n') message.pop_back();
    return fail(absl::InternalError(
        message.empty() ? "the child exited before entering a user namespace"
                        : message));
  }
  absl::Status applied = ApplyUserNamespacePlan(child, plan, opts);
  if (!applied.ok()) return fail(applied);
  c = 'g';
  if (::write(to_child_w.get(), &c, 1) != 1) {
    return fail(ErrnoStatus(errno, "write(sync pipe)"));
  }
  // From here the parent only mirrors the child. Errors the child reports
  // before execve are printed the way the child would have logged them.
  std::string message;
  char buf[512];
  while ((n = ::read(from_child_r.get(), buf, sizeof(buf))) != 0) {
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    message.append(buf, n);
  }
  if (!message.empty()) {
    LS_LOG(ERROR) << "entering the user namespace failed: " << message;
  }
  WaitAndMirror(child);
}

}  // namespace longshore::sandbox
