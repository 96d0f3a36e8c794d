#include "sandbox/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/sched.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "common/errno_status.h"
#include "common/file_util.h"
#include "common/status_macros.h"
#include "common/unique_fd.h"
#include "sandbox/caps.h"
#include "sandbox/id_mapping.h"
#include "sandbox/limits.h"
#include "sandbox/network.h"
#include "sandbox/seccomp_policy.h"
#include "sandbox/step.h"
#include "sandbox/userns.h"

namespace longshore::sandbox {
namespace {

constexpr char kProgram[] = "longshore-sandbox";
constexpr int kForwardedSignals[] = {SIGTERM, SIGINT,  SIGHUP,
                                     SIGQUIT, SIGUSR1, SIGUSR2};

void PrintLine(absl::string_view message) {
  std::string line = absl::StrCat(kProgram, ": ", message);
  for (char& ch : line) {
    if (ch == '\n') ch = ' ';
  }
  line.push_back('\n');
  (void)!::write(STDERR_FILENO, line.data(), line.size());
}

int Failure(const absl::Status& status) {
  PrintLine(status.message());
  return kExitSandboxFailure;
}

int64_t NowMs() {
  struct timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1000000;
}

// How this process relates to user namespaces.
enum class Mode {
  // Root with full capabilities in a non-initial user namespace (the worker's):
  // the step's namespaces are created in it directly.
  kInsideUserNamespace,
  // Anything else but real root: the sandbox makes the user namespace itself.
  kStandalone,
};

absl::StatusOr<Mode> DetectMode() {
  const bool initial = InInitialUserNamespace();
  if (::geteuid() == 0 && initial) {
    return absl::FailedPreconditionError(
        "user: refusing to run as real root (uid 0 in the initial user "
        "namespace); run as an unprivileged user");
  }
  constexpr uint64_t kSysAdmin = uint64_t{1} << CAP_SYS_ADMIN;
  if (!initial && ::geteuid() == 0 && (EffectiveCapabilities() & kSysAdmin)) {
    return Mode::kInsideUserNamespace;
  }
  return Mode::kStandalone;
}

std::string HostsFile(const SandboxOptions& o) {
  std::string out;
  if (o.network == NetworkMode::kHost) {
    absl::StatusOr<std::string> host = ReadFile("/etc/hosts");
    if (host.ok()) {
      out = *host;
      if (!out.empty() && out.back() != '\n') out.push_back('\n');
    }
  } else {
    out =
        "127.0.0.1\tlocalhost\n"
        "::1\tlocalhost ip6-localhost ip6-loopback\n";
  }
  absl::StrAppend(&out, "127.0.1.1\t", o.hostname, "\n");
  return out;
}

std::string ResolvConf(const SandboxOptions& o) {
  if (o.network == NetworkMode::kNone) return "";
  if (o.network == NetworkMode::kDefault) {
    return absl::StrCat("nameserver ", kSlirpDns, "\n");
  }
  absl::StatusOr<std::string> host = ReadFile("/etc/resolv.conf");
  return host.ok() ? *host : "";
}

absl::Status WriteMapFile(const std::string& path, const std::string& data) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) return ErrnoStatus(errno, "open(%s)", path);
  if (::write(fd.get(), data.data(), data.size()) !=
      static_cast<ssize_t>(data.size())) {
    return ErrnoStatus(errno, "write(%s)", path);
  }
  return absl::OkStatus();
}

uint32_t MappedIdsFromZero(const char* file) {
  absl::StatusOr<std::string> text = ReadFile(file);
  if (!text.ok()) return 0;
  absl::StatusOr<std::vector<IdMapExtent>> map = ParseIdMap(*text);
  if (!map.ok()) return 0;
  return std::min<uint32_t>(ContiguousIdsFromZero(*map), 65536);
}

absl::Status MapSameIds(pid_t pid) {
  const uint32_t uids = MappedIdsFromZero("/proc/self/uid_map");
  const uint32_t gids = MappedIdsFromZero("/proc/self/gid_map");
  if (uids == 0 || gids == 0) {
    return absl::FailedPreconditionError("id map: uid/gid 0 is not mapped");
  }
  const std::string proc = absl::StrCat("/proc/", pid);
  RETURN_IF_ERROR(
      WriteMapFile(proc + "/uid_map", absl::StrCat("0 0 ", uids, "\n")));
  return WriteMapFile(proc + "/gid_map", absl::StrCat("0 0 ", gids, "\n"));
}

}  // namespace

int RunSandbox(const SandboxOptions& o) {
  absl::StatusOr<Mode> mode = DetectMode();
  if (!mode.ok()) return Failure(mode.status());

  StepConfig config;
  if (!o.seccomp_bpf_path.empty()) {
    absl::StatusOr<std::string> program =
        ReadSeccompBpfFile(o.seccomp_bpf_path);
    if (!program.ok()) {
      return Failure(absl::InvalidArgumentError(absl::StrCat(
          "seccomp(", o.seccomp_bpf_path, "): ", program.status().message())));
    }
    config.seccomp_program = std::move(*program);
  } else if (!o.no_seccomp) {
    // Standalone convenience; the worker compiles once and passes the file.
    absl::StatusOr<std::string> program = CompileSeccompBpf();
    if (!program.ok()) return Failure(program.status());
    config.seccomp_program = std::move(*program);
  } else {
    PrintLine("warning: --no-seccomp: the step runs without a seccomp filter");
  }

  UserNamespaceOptions userns_opts;
  UserNamespacePlan plan;
  if (*mode == Mode::kStandalone) {
    absl::StatusOr<UserNamespacePlan> p = PlanUserNamespace(userns_opts);
    if (!p.ok()) return Failure(p.status());
    plan = std::move(*p);
    if (!plan.warning.empty())
      PrintLine(absl::StrCat("warning: ", plan.warning));
    config.become_root = true;
    config.setgroups_allowed = plan.use_helpers;
  } else {
    absl::StatusOr<std::string> setgroups = ReadFile("/proc/self/setgroups");
    config.setgroups_allowed =
        !setgroups.ok() || setgroups->find("allow") != std::string::npos;
  }

  const char* tmp = ::getenv("TMPDIR");
  const std::string tmp_parent = tmp != nullptr && tmp[0] == '/' ? tmp : "/tmp";
  absl::StatusOr<std::string> scratch =
      MakeTempDir(tmp_parent, "longshore-sandbox.");
  if (!scratch.ok()) return Failure(scratch.status());
  // Pid 1 mounts a tmpfs on it in the step's mount namespace only, gone with
  // the step's last process: here it is an empty directory again.
  absl::Cleanup remove_scratch = [&scratch] { ::rmdir(scratch->c_str()); };

  config.rootfs.lowers = o.lowers;
  config.rootfs.upper = o.upper;
  config.rootfs.work = o.work;
  config.rootfs.rootfs_dir = o.rootfs;
  config.rootfs.own_network = o.network != NetworkMode::kHost;
  config.rootfs.block_private_destinations = o.network == NetworkMode::kDefault;
  config.rootfs.binds = o.binds;
  config.rootfs.tmpfs = o.tmpfs;
  config.limits.memory_bytes = o.memory_bytes;
  config.limits.pids = o.pids;
  config.limits.disk_bytes = o.disk_bytes;
  config.limits.nofile = o.nofile;
  std::optional<StepCgroup> cgroup;
  if (!o.cgroup_parent.empty() && (o.memory_bytes > 0 || o.pids > 0)) {
    absl::StatusOr<StepCgroup> cg = StepCgroup::Create(
        o.cgroup_parent, absl::StrCat("step-", ::getpid()), config.limits);
    if (!cg.ok()) return Failure(cg.status());
    cgroup.emplace(std::move(*cg));
    config.limits.in_cgroup = true;
  }
  // In the worker's namespace pid 1 gets a user namespace of its own when
  // tasks are counted by RLIMIT_NPROC: the count is then the step's alone,
  // not shared with the worker and every other step (see limits.h).
  const bool own_userns =
      *mode == Mode::kStandalone || (o.pids > 0 && !config.limits.in_cgroup);
  if (*mode == Mode::kInsideUserNamespace && own_userns) {
    config.become_root = true;
  }
  config.rootfs.scratch_dir = *scratch;
  config.rootfs.hosts = HostsFile(o);
  config.rootfs.resolv_conf = ResolvConf(o);
  config.rootfs.hostname = o.hostname + "\n";
  config.hostname = o.hostname;
  config.cwd = o.cwd;
  config.env = o.env;
  config.user = o.user;
  config.command = o.command;

  int sync[2], status[2];
  if (::pipe2(sync, O_CLOEXEC) != 0)
    return Failure(ErrnoStatus(errno, "pipe2"));
  UniqueFd sync_r(sync[0]), sync_w(sync[1]);
  if (::pipe2(status, O_CLOEXEC) != 0) {
    return Failure(ErrnoStatus(errno, "pipe2"));
  }
  UniqueFd status_r(status[0]), status_w(status[1]);
  config.sync_fd = sync_r.get();
  config.status_fd = status_w.get();

  // Blocked before clone so none is lost; pid 1 inherits the mask and takes
  // them with sigwaitinfo, the command unblocks everything.
  sigset_t handled;
  sigemptyset(&handled);
  sigaddset(&handled, SIGCHLD);
  for (int sig : kForwardedSignals) sigaddset(&handled, sig);
  sigset_t old_mask;
  ::sigprocmask(SIG_BLOCK, &handled, &old_mask);
  absl::Cleanup restore_mask = [&old_mask] {
    ::sigprocmask(SIG_SETMASK, &old_mask, nullptr);
  };
  UniqueFd sigfd(::signalfd(-1, &handled, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!sigfd) return Failure(ErrnoStatus(errno, "signalfd"));

  uint64_t flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS |
                   CLONE_NEWCGROUP;
  if (o.network != NetworkMode::kHost) flags |= CLONE_NEWNET;
  if (own_userns) flags |= CLONE_NEWUSER;
  // A raw clone (fork semantics, no shared memory) rather than unshare: this
  // process stays outside the new namespaces, so the step's mounts vanish with
  // the step. clone3 places pid 1 in the step's cgroup from birth, so its
  // cgroup namespace is rooted there.
  long pid;
  if (cgroup) {
    struct clone_args args = {};
    args.flags = flags | CLONE_INTO_CGROUP;
    args.exit_signal = SIGCHLD;
    args.cgroup = static_cast<uint64_t>(cgroup->fd());
    pid = ::syscall(SYS_clone3, &args, sizeof(args));
  } else {
    pid = ::syscall(SYS_clone, flags | SIGCHLD, nullptr, nullptr, nullptr,
                    nullptr);
  }
  if (pid < 0) {
    return Failure(ErrnoStatus(errno, "clone(namespaces)"));
  }
  if (pid == 0) {
    sync_w.release();
    status_r.release();
    sigfd.release();
    StepInitMain(config);
  }
  const pid_t init = static_cast<pid_t>(pid);
  sync_r.reset();
  status_w.reset();

  int exit_code = -1;
  auto kill_and_reap = [init]() {
    ::kill(init, SIGKILL);
    int ignored;
    while (::waitpid(init, &ignored, 0) < 0 && errno == EINTR) {
    }
  };
  if (*mode == Mode::kStandalone) {
    absl::Status applied = ApplyUserNamespacePlan(init, plan, userns_opts);
    if (!applied.ok()) {
      kill_and_reap();
      return Failure(applied);
    }
  } else if (own_userns) {
    // Root of the worker's namespace holds CAP_SETUID/CAP_SETGID over it and
    // writes the child's maps directly: the same ids, 0..N-1.
    absl::Status mapped = MapSameIds(init);
    if (!mapped.ok()) {
      kill_and_reap();
      return Failure(mapped);
    }
  }
  std::optional<SlirpProcess> slirp;
  if (o.network == NetworkMode::kDefault) {
    absl::StatusOr<SlirpProcess> started = SlirpProcess::Start(
        o.slirp4netns, init,
        own_userns ? absl::StrCat("/proc/", init, "/ns/user") : "", 10000);
    if (!started.ok()) {
      kill_and_reap();
      return Failure(started.status());
    }
    slirp.emplace(std::move(*started));
  }
  char go = 'g';
  if (::write(sync_w.get(), &go, 1) != 1) {
    int err = errno;
    kill_and_reap();
    return Failure(ErrnoStatus(err, "write(sync pipe)"));
  }

  const int64_t deadline =
      o.timeout_seconds > 0 ? NowMs() + int64_t{o.timeout_seconds} * 1000 : -1;
  std::string message;
  bool status_open = true;
  bool timed_out = false;
  while (exit_code < 0) {
    struct pollfd fds[2] = {{sigfd.get(), POLLIN, 0},
                            {status_open ? status_r.get() : -1, POLLIN, 0}};
    int wait_ms = -1;
    if (deadline >= 0)
      wait_ms = static_cast<int>(std::max<int64_t>(0, deadline - NowMs()));
    int n = ::poll(fds, 2, wait_ms);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      kill_and_reap();
      return Failure(ErrnoStatus(err, "poll"));
    }
    if (n == 0) {
      // Killing pid 1 kills every process of the step's pid namespace.
      timed_out = true;
      kill_and_reap();
      break;
    }
    if (fds[1].revents != 0) {
      char buf[1024];
      ssize_t r = ::read(status_r.get(), buf, sizeof(buf));
      if (r > 0) {
        message.append(buf, static_cast<size_t>(r));
      } else if (r == 0 || errno != EINTR) {
        status_open = false;
      }
    }
    if (fds[0].revents & POLLIN) {
      struct signalfd_siginfo si;
      while (::read(sigfd.get(), &si, sizeof(si)) == sizeof(si)) {
        if (si.ssi_signo == SIGCHLD) {
          int st = 0;
          pid_t r = ::waitpid(init, &st, WNOHANG);
          if (r == init) {
            exit_code = WIFEXITED(st)     ? WEXITSTATUS(st)
                        : WIFSIGNALED(st) ? 128 + WTERMSIG(st)
                                          : kExitSandboxFailure;
          }
        } else {
          ::kill(init, static_cast<int>(si.ssi_signo));
        }
      }
    }
  }
  // Whatever pid 1 or the command wrote before dying is complete now.
  if (status_open) {
    char buf[1024];
    ssize_t r;
    while ((r = ::read(status_r.get(), buf, sizeof(buf))) > 0) {
      message.append(buf, static_cast<size_t>(r));
    }
  }
  if (slirp) slirp->Stop();
  if (cgroup && cgroup->OomKilled()) {
    PrintLine(absl::StrCat("memory limit: the step used more than ",
                           o.memory_bytes, " bytes and was killed"));
    return kExitLimit;
  }
  if (timed_out) {
    PrintLine(absl::StrCat("timeout: the step ran longer than ",
                           o.timeout_seconds, " s and was killed"));
    return kExitTimeout;
  }
  if (!message.empty()) {
    PrintLine(message.substr(0, message.find('\n')));
    if (exit_code == 0) exit_code = kExitSandboxFailure;
  }
  return exit_code;
}

}  // namespace longshore::sandbox
