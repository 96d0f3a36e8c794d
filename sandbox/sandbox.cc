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
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
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
#include "sandbox/raw_syscall.h"
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

// Pid 1's stack (it runs in this process's memory), mapped lazily: only the
// pages it touches cost anything.
constexpr size_t kInitStackSize = 8 << 20;
constexpr size_t kGuardSize = 4096;

struct InitArgs {
  const StepConfig* config;
  // This process's ends of the pipes and its signalfd: pid 1 must not hold
  // them (EOF on the sync pipe is how pid 1 learns the parent died).
  int parent_fds[4];  // -1 for none
};

// Pid 1's entry, on its own stack. Until the parent releases it (sync pipe)
// it makes only errno-free calls: the parent is still using the memory.
int InitEntry(void* arg) {
  const InitArgs& a = *static_cast<const InitArgs*>(arg);
  for (int fd : a.parent_fds) {
    if (fd >= 0) RawSyscall(SYS_close, fd);
  }
  StepInitMain(*a.config);
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

// The empty directory pid 1 mounts the step's scratch tmpfs on, in the step's
// mount namespace only: seen from here it stays an empty directory.
struct ScratchDir {
  std::string path;
  bool remove = false;  // a per-step directory, removed at exit
};

// The uid this process's effective uid is in the parent user namespace (its
// own when not mapped).
uint32_t ParentNamespaceUid() {
  const uint32_t euid = ::geteuid();
  absl::StatusOr<std::string> text = ReadFile("/proc/self/uid_map");
  if (!text.ok()) return euid;
  absl::StatusOr<std::vector<IdMapExtent>> map = ParseIdMap(*text);
  if (!map.ok()) return euid;
  for (const IdMapExtent& e : *map) {
    if (euid >= e.inside && euid - e.inside < e.count) {
      return e.outside + (euid - e.inside);
    }
  }
  return euid;
}

// Concurrent steps share one mount point, $TMPDIR/longshore-sandbox.UID
// (UID as the parent user namespace sees it, so two workers running as
// different users do not collide): each mounts its tmpfs there in its own
// namespace. Creating and removing a directory per step cost two ext4
// directory updates, about half a millisecond here. The shared directory is
// used only when it is a real directory owned by this uid and closed to
// others; otherwise (another user made one first) each step makes its own.
absl::StatusOr<ScratchDir> PrepareScratchDir() {
  const char* tmp = ::getenv("TMPDIR");
  const std::string parent = tmp != nullptr && tmp[0] == '/' ? tmp : "/tmp";
  ScratchDir dir;
  dir.path = absl::StrCat(parent, "/longshore-sandbox.", ParentNamespaceUid());
  for (int attempt = 0; attempt < 2; ++attempt) {
    struct stat st;
    if (::lstat(dir.path.c_str(), &st) == 0) {
      if (S_ISDIR(st.st_mode) && st.st_uid == ::geteuid() &&
          (st.st_mode & 077) == 0) {
        return dir;
      }
      break;
    }
    if (errno != ENOENT) break;
    if (::mkdir(dir.path.c_str(), 0700) != 0 && errno != EEXIST) break;
  }
  ASSIGN_OR_RETURN(dir.path, MakeTempDir(parent, "longshore-sandbox."));
  dir.remove = true;
  return dir;
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
  for (const std::string& line : o.extra_hosts)
    absl::StrAppend(&out, line, "\n");
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
  config.insecure = o.insecure;
  if (o.insecure) {
    // Requested per step by a build granted security.insecure.
  } else if (!o.seccomp_bpf_path.empty()) {
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

  absl::StatusOr<ScratchDir> scratch = PrepareScratchDir();
  if (!scratch.ok()) return Failure(scratch.status());
  absl::Cleanup remove_scratch = [&scratch] {
    if (scratch->remove) ::rmdir(scratch->path.c_str());
  };

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
  for (const Ulimit& u : o.ulimits) {
    config.limits.ulimits[config.limits.ulimit_count++] = u;
  }
  config.rootfs.shm_bytes = o.shm_bytes;
  std::optional<StepCgroup> cgroup;
  if (!o.cgroup_parent.empty()) {
    absl::StatusOr<StepCgroup> cg = StepCgroup::Create(
        o.cgroup_parent, absl::StrCat("step-", ::getpid()), &config.limits);
    if (!cg.ok()) return Failure(cg.status());
    cgroup.emplace(std::move(*cg));
    config.rootfs.cgroup2 = true;
  }
  // In the worker's namespace pid 1 gets a user namespace of its own when
  // tasks are counted by RLIMIT_NPROC: the count is then the step's alone,
  // not shared with the worker and every other step (see limits.h).
  const bool own_userns = *mode == Mode::kStandalone ||
                          (o.pids > 0 && !config.limits.pids_in_cgroup);
  if (*mode == Mode::kInsideUserNamespace && own_userns) {
    config.become_root = true;
  }
  config.rootfs.scratch_dir = scratch->path;
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
  if (o.ready_fd >= 0) {
    // Close-on-exec, so that slirp4netns and the command never hold it: only
    // pid 1 (a clone) keeps it open past this process's close below.
    if (::fcntl(o.ready_fd, F_SETFD, FD_CLOEXEC) != 0) {
      return Failure(ErrnoStatus(errno, "--ready-fd %d", o.ready_fd));
    }
    config.ready_fd = o.ready_fd;
  }
  UniqueFd tap_r, tap_w;
  if (o.network == NetworkMode::kDefault) {
    int tap[2];
    if (::pipe2(tap, O_CLOEXEC) != 0) {
      return Failure(ErrnoStatus(errno, "pipe2"));
    }
    tap_r.reset(tap[0]);
    tap_w.reset(tap[1]);
    config.tap_ready_fd = tap_w.get();
  }

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
  // A clone rather than unshare: this process stays outside the new
  // namespaces, so the step's mounts vanish with the step.
  //
  // Pid 1 shares this process's memory (CLONE_VM, on a stack of its own):
  // no page tables are copied for it and none torn down when it exits, and
  // neither process takes copy-on-write faults, which on this class of
  // machine cost more than setting up all the namespaces. The rules that
  // keep this safe: pid 1 touches nothing of this process's but the
  // read-only `config` and blocks on the sync pipe until it is released;
  // from then until pid 1 is reaped this process makes only RawSyscall calls
  // (errno is shared) on stack buffers (the heap is pid 1's). File
  // descriptors, signal dispositions and credentials stay per process.
  //
  // With a cgroup, clone3 places pid 1 in the step's cgroup from birth, so
  // its cgroup namespace is rooted there; clone3 has no library wrapper that
  // switches stacks, so pid 1 is then a copy (fork semantics).
  InitArgs init_args{&config,
                     {sync_w.get(), status_r.get(), sigfd.get(), tap_r.get()}};
  void* init_stack = nullptr;
  long pid;
  if (cgroup) {
    struct clone_args args = {};
    args.flags = flags | CLONE_INTO_CGROUP;
    args.exit_signal = SIGCHLD;
    args.cgroup = static_cast<uint64_t>(cgroup->fd());
    pid = ::syscall(SYS_clone3, &args, sizeof(args));
    if (pid == 0) InitEntry(&init_args);
  } else {
    init_stack =
        ::mmap(nullptr, kInitStackSize, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (init_stack == MAP_FAILED) {
      return Failure(ErrnoStatus(errno, "mmap(pid 1 stack)"));
    }
    // A guard page: an overflow is a SIGSEGV, not a write into this heap.
    if (::mprotect(init_stack, kGuardSize, PROT_NONE) != 0) {
      int err = errno;
      ::munmap(init_stack, kInitStackSize);
      return Failure(ErrnoStatus(err, "mprotect(pid 1 stack guard)"));
    }
    pid = ::clone(InitEntry, static_cast<char*>(init_stack) + kInitStackSize,
                  static_cast<int>(flags) | CLONE_VM | SIGCHLD, &init_args);
  }
  if (pid < 0) {
    int err = errno;
    if (init_stack != nullptr) ::munmap(init_stack, kInitStackSize);
    return Failure(ErrnoStatus(err, "clone(namespaces)"));
  }
  const pid_t init = static_cast<pid_t>(pid);
  absl::Cleanup unmap_stack = [init_stack] {
    if (init_stack != nullptr) ::munmap(init_stack, kInitStackSize);
  };
  sync_r.reset();
  status_w.reset();
  tap_w.reset();
  // Pid 1 has its copy: EOF without a byte tells the reader setup failed.
  if (o.ready_fd >= 0) RawSyscall(SYS_close, o.ready_fd);

  // Reaps pid 1 after killing it (which kills the whole step): afterwards
  // nothing shares this process's memory any more.
  auto kill_and_reap = [init]() {
    RawSyscall(SYS_kill, init, SIGKILL);
    int ignored;
    while (RawSyscall(SYS_wait4, init, reinterpret_cast<long>(&ignored), 0,
                      0) == -EINTR) {
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
  const int64_t deadline =
      o.timeout_seconds > 0 ? NowMs() + int64_t{o.timeout_seconds} * 1000 : -1;
  char go = 'g';
  auto release_init = [&]() -> absl::Status {
    long wrote =
        RawSyscall(SYS_write, sync_w.get(), reinterpret_cast<long>(&go), 1);
    if (wrote == 1) return absl::OkStatus();
    kill_and_reap();
    return ErrnoStatus(wrote < 0 ? static_cast<int>(-wrote) : EIO,
                       "write(sync pipe)");
  };
  if (absl::Status s = release_init(); !s.ok()) return Failure(s);
  std::optional<SlirpProcess> slirp;
  if (tap_r) {
    // Pid 1 makes the tap and blocks on the sync pipe again: while it is
    // blocked this process may use the heap, to start slirp4netns. When pid 1
    // fails instead (EOF here), its message is read below.
    char t = 0;
    long r;
    do {
      r = RawSyscall(SYS_read, tap_r.get(), reinterpret_cast<long>(&t), 1);
    } while (r == -EINTR);
    if (r == 1) {
      absl::StatusOr<SlirpProcess> started = SlirpProcess::Start(
          o.slirp4netns, init,
          own_userns ? absl::StrCat("/proc/", init, "/ns/user") : "", 10000);
      if (!started.ok()) {
        kill_and_reap();
        return Failure(started.status());
      }
      slirp.emplace(std::move(*started));
      if (absl::Status s = release_init(); !s.ok()) return Failure(s);
    }
  }

  // Pid 1 runs: from here until it is reaped, RawSyscall only (see above).
  // Only the first line pid 1 or the command reports is used.
  char message[1024];
  size_t message_len = 0;
  auto read_status = [&]() {
    char buf[512];
    long r = RawSyscall(SYS_read, status_r.get(), reinterpret_cast<long>(buf),
                        sizeof(buf));
    if (r > 0) {
      size_t n =
          std::min(static_cast<size_t>(r), sizeof(message) - message_len);
      std::memcpy(message + message_len, buf, n);
      message_len += n;
    }
    return r;
  };
  int exit_code = -1;
  int poll_error = 0;
  bool status_open = true;
  bool timed_out = false;
  while (exit_code < 0) {
    struct pollfd fds[2] = {{sigfd.get(), POLLIN, 0},
                            {status_open ? status_r.get() : -1, POLLIN, 0}};
    struct timespec wait, *wait_ptr = nullptr;
    if (deadline >= 0) {
      const int64_t left = std::max<int64_t>(0, deadline - NowMs());
      wait.tv_sec = static_cast<time_t>(left / 1000);
      wait.tv_nsec = static_cast<long>(left % 1000) * 1000000;
      wait_ptr = &wait;
    }
    long n = RawSyscall(SYS_ppoll, reinterpret_cast<long>(fds), 2,
                        reinterpret_cast<long>(wait_ptr), 0, 0);
    if (n == -EINTR) continue;
    if (n < 0) {
      poll_error = static_cast<int>(-n);
      kill_and_reap();
      break;
    }
    if (n == 0) {
      // Killing pid 1 kills every process of the step's pid namespace.
      timed_out = true;
      kill_and_reap();
      break;
    }
    if (fds[1].revents != 0) {
      long r = read_status();
      if (r == 0 || (r < 0 && r != -EINTR)) status_open = false;
    }
    if (fds[0].revents & POLLIN) {
      struct signalfd_siginfo si;
      while (RawSyscall(SYS_read, sigfd.get(), reinterpret_cast<long>(&si),
                        sizeof(si)) == sizeof(si)) {
        if (si.ssi_signo == SIGCHLD) {
          int st = 0;
          if (RawSyscall(SYS_wait4, init, reinterpret_cast<long>(&st), WNOHANG,
                         0) == init) {
            exit_code = StatusToExitCode(st);
          }
        } else {
          RawSyscall(SYS_kill, init, static_cast<long>(si.ssi_signo));
        }
      }
    }
  }
  // Pid 1 is reaped: the memory is this process's alone again. Whatever pid
  // 1 or the command wrote before dying is complete now.
  if (status_open) {
    while (read_status() > 0) {
    }
  }
  if (poll_error != 0) return Failure(ErrnoStatus(poll_error, "poll"));
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
  if (message_len > 0) {
    absl::string_view text(message, message_len);
    PrintLine(text.substr(0, text.find('\n')));
    if (exit_code == 0) exit_code = kExitSandboxFailure;
  }
  return exit_code;
}

}  // namespace longshore::sandbox
