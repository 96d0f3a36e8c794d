// The pid-1 side of a step and the command process it starts.
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/errno_status.h"
#include "common/file_util.h"
#include "common/unique_fd.h"
#include "sandbox/caps.h"
#include "sandbox/id_mapping.h"
#include "sandbox/in_root.h"
#include "sandbox/network.h"
#include "sandbox/seccomp_policy.h"
#include "sandbox/step.h"
#include "sandbox/user_spec.h"

namespace longshore::sandbox {
namespace {

constexpr char kDefaultPath[] =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
constexpr uint32_t kStepIdCount = 65536;
constexpr off_t kMaxAccountFileSize = 8 << 20;
// The command's stack until its execve (it runs in pid 1's memory), mapped
// lazily: only the pages it touches cost anything.
constexpr size_t kCommandStackSize = 1 << 20;
constexpr size_t kGuardSize = 4096;

constexpr int kForwardedSignals[] = {SIGTERM, SIGINT,  SIGHUP,
                                     SIGQUIT, SIGUSR1, SIGUSR2};

[[noreturn]] void Fail(int fd, const absl::Status& status,
                       int code = kExitSandboxFailure) {
  FailFast(fd, std::string(status.message()), code);
}

bool ReadByte(int fd) {
  char c;
  ssize_t n;
  do {
    n = ::read(fd, &c, 1);
  } while (n < 0 && errno == EINTR);
  return n == 1;
}

absl::Status WriteFile(const std::string& path, const std::string& data) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) return ErrnoStatus(errno, "open(%s)", path);
  if (::write(fd.get(), data.data(), data.size()) !=
      static_cast<ssize_t>(data.size())) {
    return ErrnoStatus(errno, "write(%s)", path);
  }
  return absl::OkStatus();
}

// Reads /etc/passwd or /etc/group of the (hostile) root: no symlink out of it,
// no FIFO to block on, bounded size. A missing file reads as empty.
absl::StatusOr<std::string> ReadAccountFile(int root_fd,
                                            const std::string& path) {
  int err = 0;
  absl::StatusOr<UniqueFd> fd =
      OpenInRoot(root_fd, path, O_RDONLY | O_NONBLOCK | O_NOCTTY, 0, &err);
  if (!fd.ok()) {
    if (err == ENOENT) return std::string();
    return fd.status();
  }
  struct stat st;
  if (::fstat(fd->get(), &st) != 0)
    return ErrnoStatus(errno, "fstat(%s)", path);
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not a regular file"));
  }
  if (st.st_size > kMaxAccountFileSize) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": too large"));
  }
  std::string out(static_cast<size_t>(st.st_size), '\0');
  size_t off = 0;
  while (off < out.size()) {
    ssize_t n = ::read(fd->get(), out.data() + off, out.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(errno, "read(%s)", path);
    if (n == 0) break;
    off += static_cast<size_t>(n);
  }
  out.resize(off);
  return out;
}

uint32_t MappedIdsFromZero(const char* file) {
  absl::StatusOr<std::string> text = ReadFile(file);
  if (!text.ok()) return 0;
  absl::StatusOr<std::vector<IdMapExtent>> map = ParseIdMap(*text);
  if (!map.ok()) return 0;
  return std::min(ContiguousIdsFromZero(*map), kStepIdCount);
}

std::vector<std::string> ExecCandidates(const std::string& command,
                                        const std::vector<std::string>& env) {
  if (command.find('/') != std::string::npos) return {command};
  std::string path = kDefaultPath;
  for (const std::string& e : env) {
    if (absl::StartsWith(e, "PATH=")) path = e.substr(5);
  }
  std::vector<std::string> out;
  for (absl::string_view dir : absl::StrSplit(path, ':')) {
    // An empty element means the current directory, as for execvp.
    out.push_back(dir.empty() ? command : absl::StrCat(dir, "/", command));
  }
  return out;
}

// The step's command, in its own user namespace (ids 0..N-1 mapped one to one
// onto pid 1's) and a mount namespace owned by it, so every mount set up by
// pid 1 is locked: the step cannot unmount a mask or remount a read-only bind
// even if it ever gained CAP_SYS_ADMIN in its namespace.
[[noreturn]] void CommandMain(const StepConfig& c, int go_fd) {
  const int err_fd = c.status_fd;
  if (!ReadByte(go_fd)) ::_exit(kExitSandboxFailure);
  ::close(go_fd);
  // The command starts with default dispositions and nothing blocked; an
  // ignored SIGPIPE inherited from the worker would otherwise survive execve.
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) ::signal(sig, SIG_DFL);
  }
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  if (::setsid() < 0) Fail(err_fd, ErrnoStatus(errno, "setsid"));

  UniqueFd root(::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root) Fail(err_fd, ErrnoStatus(errno, "open(/)"));
  absl::StatusOr<std::string> passwd =
      ReadAccountFile(root.get(), "/etc/passwd");
  if (!passwd.ok()) Fail(err_fd, passwd.status());
  absl::StatusOr<std::string> group = ReadAccountFile(root.get(), "/etc/group");
  if (!group.ok()) Fail(err_fd, group.status());
  absl::StatusOr<ResolvedUser> user = ResolveUser(c.user, *passwd, *group);
  if (!user.ok()) {
    Fail(err_fd, absl::InvalidArgumentError(absl::StrCat(
                     "user(", c.user, "): ", user.status().message())));
  }
  // Like BuildKit, a missing working directory is created for the user.
  absl::StatusOr<UniqueFd> cwd =
      MakeDirsInRoot(root.get(), c.cwd, 0755, user->uid, user->gid, nullptr);
  if (!cwd.ok()) Fail(err_fd, cwd.status());
  if (::fchdir(cwd->get()) != 0) {
    Fail(err_fd, ErrnoStatus(errno, "chdir(%s)", c.cwd));
  }
  cwd->reset();
  root.reset();

  std::vector<std::string> candidates = ExecCandidates(c.command[0], c.env);
  std::vector<char*> argv, envp;
  for (const std::string& a : c.command)
    argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const std::string& e : c.env)
    envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  // Every inherited descriptor but 0-2 closes at execve; the status pipe stays
  // open until then so a failure below still reaches the parent.
  if (::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
    Fail(err_fd, ErrnoStatus(errno, "close_range"));
  }
  if (int e = c.insecure ? 0 : DropBoundingSet(); e != 0) {
    Fail(err_fd, ErrnoStatus(e, "prctl(PR_CAPBSET_DROP)"));
  }
  // A namespace with setgroups denied (single-id map) keeps the group list it
  // started with; supplementary groups are then not applied.
  if (c.setgroups_allowed &&
      ::setgroups(user->groups.size(), user->groups.data()) != 0) {
    Fail(err_fd, ErrnoStatus(errno, "setgroups"));
  }
  if (::setresgid(user->gid, user->gid, user->gid) != 0) {
    Fail(err_fd, ErrnoStatus(errno, "setresgid(%d)", user->gid));
  }
  if (::setresuid(user->uid, user->uid, user->uid) != 0) {
    Fail(err_fd, ErrnoStatus(errno, "setresuid(%d)", user->uid));
  }
  if (int e = SetFinalCapabilities(user->uid == 0, c.insecure); e != 0) {
    Fail(err_fd, ErrnoStatus(e, "capset"));
  }
  ::umask(022);
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    Fail(err_fd, ErrnoStatus(errno, "prctl(PR_SET_NO_NEW_PRIVS)"));
  }
  if (int e = ApplyCommandRlimits(c.limits); e != 0) {
    Fail(err_fd, ErrnoStatus(e, "setrlimit"));
  }
  if (!c.seccomp_program.empty()) {
    if (int e = InstallSeccompBpf(c.seccomp_program); e != 0) {
      Fail(err_fd, ErrnoStatus(e, "seccomp(SECCOMP_SET_MODE_FILTER)"));
    }
  }
  int exec_errno = ENOENT;
  for (const std::string& candidate : candidates) {
    ::execve(candidate.c_str(), argv.data(), envp.data());
    // As execvp: keep looking past missing entries, remember EACCES.
    if (errno == EACCES) {
      exec_errno = EACCES;
    } else if (errno != ENOENT && errno != ENOTDIR) {
      exec_errno = errno;
      break;
    }
  }
  Fail(err_fd, ErrnoStatus(exec_errno, "execve(%s)", c.command[0]),
       exec_errno == ENOENT ? kExitNotFound : kExitNotExecutable);
}

struct CommandArgs {
  const StepConfig* config;
  int go_read;
  int go_write;
  int exec_done_read;
};

// Runs on its own stack in pid 1's memory (CLONE_VM); never returns.
int CommandEntry(void* arg) {
  const CommandArgs& a = *static_cast<const CommandArgs*>(arg);
  // Only the write end of `exec_done` may stay open here: its close at
  // execve is what pid 1 waits for.
  ::close(a.go_write);
  ::close(a.exec_done_read);
  CommandMain(*a.config, a.go_read);
}

int64_t NowNs() {
  struct timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

// Measures the upper directory against the disk limit, at an interval that
// keeps the walk under about 5% of one CPU (at least every 250 ms, at most
// every 5 s). Between checks a step can overshoot by what it writes in that
// time; RLIMIT_FSIZE caps any single file at the limit.
class DiskCheck {
 public:
  DiskCheck(int upper_fd, uint64_t limit) : fd_(upper_fd), limit_(limit) {}

  struct timespec NextWait() const {
    struct timespec ts;
    ts.tv_sec = static_cast<time_t>(interval_ns_ / 1000000000);
    ts.tv_nsec = static_cast<long>(interval_ns_ % 1000000000);
    return ts;
  }

  // Empty when under the limit, else the line explaining the stop.
  std::string Check() {
    const int64_t start = NowNs();
    absl::StatusOr<uint64_t> used = DiskUsage(fd_, limit_);
    const int64_t took = NowNs() - start;
    interval_ns_ = std::clamp<int64_t>(took * 20, 250000000, 5000000000);
    if (!used.ok()) {
      return absl::StrCat("disk limit: ", used.status().message(),
                          "; the step was stopped");
    }
    if (*used <= limit_) return "";
    return absl::StrCat("disk limit: the step wrote more than ", limit_,
                        " bytes to its layer and was stopped");
  }

 private:
  int fd_;
  uint64_t limit_;
  int64_t interval_ns_ = 250000000;
};

// Kills every process of the step, reports `message` and exits kExitLimit.
[[noreturn]] void StopForLimit(int err_fd, const std::string& message,
                               const std::vector<std::string>& stubs) {
  ::kill(-1, SIGKILL);
  while (::waitpid(-1, nullptr, 0) > 0 || errno == EINTR) {
  }
  RemoveStubs(stubs);
  FailFast(err_fd, message, kExitLimit);
}

}  // namespace

void FailFast(int fd, const std::string& message, int code) {
  std::string line = message;
  std::replace(line.begin(), line.end(), '\n', ' ');
  line.push_back('\n');
  (void)!::write(fd, line.data(), line.size());
  ::_exit(code);
}

void StepInitMain(const StepConfig& c) {
  const int err_fd = c.status_fd;
  if (!ReadByte(c.sync_fd)) ::_exit(kExitSandboxFailure);
  if (c.become_root) {
    if (c.setgroups_allowed && ::setgroups(0, nullptr) != 0) {
      Fail(err_fd, ErrnoStatus(errno, "setgroups(0)"));
    }
    if (::setresgid(0, 0, 0) != 0)
      Fail(err_fd, ErrnoStatus(errno, "setresgid(0)"));
    if (::setresuid(0, 0, 0) != 0)
      Fail(err_fd, ErrnoStatus(errno, "setresuid(0)"));
    // The uid change made the process non-dumpable, which would give its
    // /proc files, and those of the command forked below, to the initial
    // namespace's root: pid 1 could not write the command's id maps.
    ::prctl(PR_SET_DUMPABLE, 1);
  }
  // Die with the parent. Set after the credential change (which clears it),
  // then check the parent did not die before: it holds the sync pipe's write
  // end for its whole life.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  struct pollfd pfd = {c.sync_fd, POLLIN, 0};
  if (::poll(&pfd, 1, 0) > 0 && (pfd.revents & (POLLHUP | POLLERR))) {
    ::_exit(kExitSandboxFailure);
  }
  if (c.tap_ready_fd >= 0) {
    // The parent is blocked on this pipe meanwhile, then starts slirp4netns
    // while pid 1 is blocked on the sync pipe: the two never run at once
    // before the second byte.
    if (absl::Status s = CreatePersistentTap(); !s.ok()) Fail(err_fd, s);
    char t = 't';
    if (::write(c.tap_ready_fd, &t, 1) != 1) ::_exit(kExitSandboxFailure);
    ::close(c.tap_ready_fd);
    if (!ReadByte(c.sync_fd)) ::_exit(kExitSandboxFailure);
  }
  ::close(c.sync_fd);

  if (::sethostname(c.hostname.data(), c.hostname.size()) != 0) {
    Fail(err_fd, ErrnoStatus(errno, "sethostname(%s)", c.hostname));
  }
  // The upper directory, measured for the disk limit: opened before
  // pivot_root hides the host path.
  UniqueFd upper;
  if (c.limits.disk_bytes > 0) {
    upper.reset(
        ::open(c.rootfs.upper.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!upper) Fail(err_fd, ErrnoStatus(errno, "open(%s)", c.rootfs.upper));
  }
  std::vector<std::string> stubs;
  if (absl::Status s = SetUpRootfs(c.rootfs, &stubs); !s.ok()) Fail(err_fd, s);
  if (c.limits.pids > 0 && !c.limits.pids_in_cgroup) {
    if (int e = SetNamespaceTaskLimit(c.limits.pids); e != 0) {
      Fail(err_fd, ErrnoStatus(e, "setrlimit(RLIMIT_NPROC)"));
    }
  }

  // The step's ids: 0..N-1 of this namespace, at most 65536. A worker that
  // also mapped its own uid above that range keeps it out of the step.
  const uint32_t uids = MappedIdsFromZero("/proc/self/uid_map");
  const uint32_t gids = MappedIdsFromZero("/proc/self/gid_map");
  if (uids == 0 || gids == 0) {
    Fail(err_fd, absl::FailedPreconditionError(
                     "id map: uid/gid 0 is not mapped in the sandbox's "
                     "user namespace"));
  }
  // The command shares pid 1's memory until its execve (as posix_spawn does
  // with vfork): no page tables are copied for it and none torn down at its
  // execve, which on this class of machine cost more than all the mounts.
  // The rules that keep this safe: the command waits on `go` before touching
  // anything but its own stack, and from the moment pid 1 writes `go` it only
  // blocks on `exec_done` until the command's execve (or exit) closes the
  // write end. Signal dispositions and the fd table stay per process (no
  // CLONE_SIGHAND or CLONE_FILES).
  int go[2], exec_done[2];
  if (::pipe2(go, O_CLOEXEC) != 0) Fail(err_fd, ErrnoStatus(errno, "pipe2"));
  if (::pipe2(exec_done, O_CLOEXEC) != 0) {
    Fail(err_fd, ErrnoStatus(errno, "pipe2"));
  }
  void* stack = ::mmap(nullptr, kCommandStackSize, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) Fail(err_fd, ErrnoStatus(errno, "mmap(stack)"));
  // A guard page below the stack turns an overflow into SIGSEGV rather than
  // a write into pid 1's memory.
  if (::mprotect(stack, kGuardSize, PROT_NONE) != 0) {
    Fail(err_fd, ErrnoStatus(errno, "mprotect(stack guard)"));
  }
  CommandArgs args{&c, go[0], go[1], exec_done[0]};
  const int pid =
      ::clone(CommandEntry, static_cast<char*>(stack) + kCommandStackSize,
              CLONE_VM | CLONE_NEWUSER | CLONE_NEWNS | SIGCHLD, &args);
  if (pid < 0) {
    Fail(err_fd, ErrnoStatus(errno, "clone(CLONE_NEWUSER|CLONE_NEWNS)"));
  }
  ::close(go[0]);
  ::close(exec_done[1]);
  const pid_t command = static_cast<pid_t>(pid);
  // The command is blocked on `go`: pid 1 may still use the heap here.
  const std::string proc = absl::StrCat("/proc/", command);
  absl::Status mapped =
      WriteFile(proc + "/uid_map", absl::StrCat("0 0 ", uids, "\n"));
  if (mapped.ok()) {
    mapped = WriteFile(proc + "/gid_map", absl::StrCat("0 0 ", gids, "\n"));
  }
  if (!mapped.ok()) {
    ::kill(command, SIGKILL);
    Fail(err_fd, mapped);
  }
  char byte = 'g';
  if (::write(go[1], &byte, 1) != 1) {
    ::kill(command, SIGKILL);
    Fail(err_fd, ErrnoStatus(errno, "write(sync pipe)"));
  }
  // From here until EOF on `exec_done` the command owns the shared memory
  // (heap, globals, errno): pid 1 makes plain system calls only.
  ::close(go[1]);
  // Retried without looking at errno (shared with the command): a pipe read
  // fails only when a handler interrupts it, and pid 1 has none.
  while (::read(exec_done[0], &byte, 1) < 0) {
  }
  ::close(exec_done[0]);
  if (c.ready_fd >= 0) {
    const char ready = 'r';
    // Best effort: a reader that went away changes nothing for the step.
    if (::write(c.ready_fd, &ready, 1) < 0) {
    }
    ::close(c.ready_fd);
  }
  // Only pid 1 uses the mapping now (the command has its own image or is
  // gone).
  ::munmap(stack, kCommandStackSize);
  // Nothing in the step may ptrace pid 1 or read its /proc entries. Not
  // earlier: a non-dumpable pid 1 would have handed the command's /proc files
  // (uid_map included) to the initial namespace's root.
  ::prctl(PR_SET_DUMPABLE, 0);
  // The command holds the status pipe until its execve; pid 1 keeps it only
  // to report a disk-limit stop.
  if (!upper) ::close(err_fd);

  // The parent blocked these before clone; pid 1 takes them synchronously.
  sigset_t waited;
  sigemptyset(&waited);
  sigaddset(&waited, SIGCHLD);
  for (int sig : kForwardedSignals) sigaddset(&waited, sig);
  int command_status = 0;
  bool done = false;
  DiskCheck disk(upper.get(), c.limits.disk_bytes);
  while (!done) {
    siginfo_t info;
    int sig;
    if (upper) {
      struct timespec wait = disk.NextWait();
      sig = ::sigtimedwait(&waited, &info, &wait);
      if (sig < 0 && errno == EAGAIN) {
        if (std::string over = disk.Check(); !over.empty()) {
          StopForLimit(err_fd, over, stubs);
        }
        continue;
      }
    } else {
      sig = ::sigwaitinfo(&waited, &info);
    }
    if (sig < 0) continue;  // EINTR
    if (sig != SIGCHLD) {
      ::kill(command, sig);
      continue;
    }
    // Reap everything: orphans re-parented to pid 1 included.
    for (;;) {
      int status = 0;
      pid_t reaped = ::waitpid(-1, &status, WNOHANG);
      if (reaped <= 0) break;
      if (reaped == command) {
        command_status = status;
        done = true;
      }
    }
  }
  // What the step left in the upper directory becomes the layer: measure it
  // once more, however recently the last check ran.
  if (upper) {
    if (std::string over = disk.Check(); !over.empty()) {
      StopForLimit(err_fd, over, stubs);
    }
  }
  if (!stubs.empty()) {
    // Stubs can be removed only once nothing in the step can use or replace
    // them. (When pid 1 exits the kernel kills the namespace anyway.)
    ::kill(-1, SIGKILL);
    while (::waitpid(-1, nullptr, 0) > 0 || errno == EINTR) {
    }
    RemoveStubs(stubs);
  }
  ::_exit(StatusToExitCode(command_status));
}

}  // namespace longshore::sandbox
