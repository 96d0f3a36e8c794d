#include "sandbox/test_support.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "common/errno_status.h"
#include "common/file_util.h"
#include "common/status_macros.h"

namespace longshore::sandbox::testing {
namespace {

uid_t g_chown_uid;
gid_t g_chown_gid;
int ChownOne(const char* path, const struct stat*, int, struct FTW*) {
  return ::lchown(path, g_chown_uid, g_chown_gid) == 0 ? 0 : -1;
}

double Now() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

}  // namespace

absl::StatusOr<UnprivilegedUser> FindUnprivilegedUser() {
  if (::geteuid() != 0) {
    return absl::FailedPreconditionError(
        "this test must run as root, to switch to the unprivileged user "
        "'longshore' (created by ops/bootstrap.sh)");
  }
  struct passwd* pw = ::getpwnam(kUnprivilegedUser);
  if (pw == nullptr) {
    return absl::FailedPreconditionError(
        "user 'longshore' is missing: run ops/bootstrap.sh");
  }
  return UnprivilegedUser{pw->pw_uid, pw->pw_gid};
}

absl::StatusOr<std::string> RunfilePath(const std::string& name) {
  const char* srcdir = ::getenv("TEST_SRCDIR");
  const char* workspace = ::getenv("TEST_WORKSPACE");
  if (srcdir == nullptr) {
    return absl::FailedPreconditionError(
        "TEST_SRCDIR is unset (run under bazel test)");
  }
  std::string path =
      absl::StrCat(srcdir, "/", workspace != nullptr ? workspace : "longshore",
                   "/sandbox/", name);
  if (!PathExists(path)) {
    return absl::NotFoundError(absl::StrCat("runfile missing: ", path));
  }
  return path;
}

absl::StatusOr<ScratchDir> ScratchDir::Create(const std::string& prefix) {
  ASSIGN_OR_RETURN(std::string path, MakeTempDir("/tmp", prefix));
  if (::chmod(path.c_str(), 0755) != 0) {
    return ErrnoStatus(errno, "chmod(%s)", path);
  }
  return ScratchDir(path);
}

ScratchDir::ScratchDir(ScratchDir&& other) noexcept
    : path_(std::move(other.path_)) {
  other.path_.clear();
}

ScratchDir::~ScratchDir() {
  if (!path_.empty()) (void)RemoveTree(path_);
}

absl::Status CopyExecutable(const std::string& source,
                            const std::string& dest) {
  ASSIGN_OR_RETURN(std::string bytes, ReadFile(source));
  RETURN_IF_ERROR(WriteFileAtomic(dest, bytes, 0755));
  if (::chmod(dest.c_str(), 0755) != 0)
    return ErrnoStatus(errno, "chmod(%s)", dest);
  return absl::OkStatus();
}

absl::Status ChownTree(const std::string& path, uid_t uid, gid_t gid) {
  g_chown_uid = uid;
  g_chown_gid = gid;
  if (::nftw(path.c_str(), ChownOne, 32, FTW_PHYS) != 0) {
    return ErrnoStatus(errno, "chown -R %s", path);
  }
  return absl::OkStatus();
}

absl::StatusOr<RunResult> Run(const std::vector<std::string>& argv,
                              const RunOptions& opts) {
  UnprivilegedUser user;
  if (!opts.as_root) {
    ASSIGN_OR_RETURN(user, FindUnprivilegedUser());
  }
  int out[2], err[2];
  if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) {
    return ErrnoStatus(errno, "pipe2");
  }
  int leak = -1;
  if (opts.leak_fd >= 0) {
    leak = ::open("/etc/hostname", O_RDONLY | O_CLOEXEC);
    if (leak < 0) return ErrnoStatus(errno, "open(/etc/hostname)");
  }
  std::vector<char*> cargv, cenv;
  for (const std::string& a : argv)
    cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  for (const std::string& e : opts.env)
    cenv.push_back(const_cast<char*>(e.c_str()));
  cenv.push_back(nullptr);
  const std::string cgroup_procs =
      opts.cgroup.empty() ? "" : opts.cgroup + "/cgroup.procs";
  const double start = Now();
  pid_t pid = ::fork();
  if (pid < 0) return ErrnoStatus(errno, "fork");
  if (pid == 0) {
    ::setpgid(0, 0);
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    int devnull = ::open("/dev/null", O_RDONLY);
    ::dup2(devnull, 0);
    if (leak >= 0) ::dup2(leak, opts.leak_fd);  // dup2 clears close-on-exec.
    if (!cgroup_procs.empty()) {
      int fd = ::open(cgroup_procs.c_str(), O_WRONLY | O_CLOEXEC);
      if (fd < 0 || ::write(fd, "0", 1) != 1) ::_exit(120);
      ::close(fd);
    }
    if (!opts.as_root) {
      if (::setgroups(0, nullptr) != 0 || ::setgid(user.gid) != 0 ||
          ::setuid(user.uid) != 0) {
        ::_exit(121);
      }
    }
    if (::chdir("/tmp") != 0) ::_exit(122);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execve(cargv[0], cargv.data(), cenv.data());
    ::_exit(123);
  }
  ::close(out[1]);
  ::close(err[1]);
  if (leak >= 0) ::close(leak);
  RunResult result;
  bool out_open = true, err_open = true, notified = false, killed = false;
  while (out_open || err_open) {
    struct pollfd fds[2] = {{out_open ? out[0] : -1, POLLIN, 0},
                            {err_open ? err[0] : -1, POLLIN, 0}};
    const double left = start + opts.timeout_seconds - Now();
    if (left <= 0 && !killed) {
      ::kill(-pid, SIGKILL);
      ::kill(pid, SIGKILL);
      killed = true;
    }
    int n = ::poll(fds, 2, killed ? 1000 : static_cast<int>(left * 1000) + 1);
    if (n < 0 && errno == EINTR) continue;
    if (n == 0 && killed) break;
    char buf[4096];
    if (fds[0].revents) {
      ssize_t r = ::read(out[0], buf, sizeof(buf));
      if (r > 0) {
        result.out.append(buf, r);
        if (!notified && opts.on_first_line &&
            result.out.find('\n') != std::string::npos) {
          notified = true;
          opts.on_first_line(pid);
        }
      } else {
        out_open = false;
      }
    }
    if (fds[1].revents) {
      ssize_t r = ::read(err[0], buf, sizeof(buf));
      if (r > 0) {
        result.err.append(buf, r);
      } else {
        err_open = false;
      }
    }
  }
  ::close(out[0]);
  ::close(err[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return ErrnoStatus(errno, "waitpid");
  }
  result.seconds = Now() - start;
  result.exit_code =
      WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  if (killed) {
    return absl::DeadlineExceededError(
        absl::StrCat(argv[0], " did not finish within ", opts.timeout_seconds,
                     " s; stderr: ", result.err));
  }
  return result;
}

}  // namespace longshore::sandbox::testing
