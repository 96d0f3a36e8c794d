#include "client/embedded_farm.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/errno_status.h"
#include "common/file_util.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "common/unique_fd.h"
#include "scheduler/scheduler.h"
#include "worker/worker_process.h"
#include "worker/worker_setup.h"

namespace longshore::client {
namespace {

std::string SelfExe() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n < 0) return "";
  buf[n] = '\0';
  return buf;
}

// In the forked child, as root: become the unprivileged farm user. The
// binaries may sit where that user cannot reach them (under /root): they stay
// reachable through descriptors opened before the switch.
absl::Status DropToFarmUser(const std::string& state_dir) {
  const char* name = getenv("LONGSHORE_USER");
  if (name == nullptr || *name == '\0') name = "longshore";
  struct passwd* pw = getpwnam(name);
  if (pw == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        "running as root: the one-machine farm runs its worker as the "
        "unprivileged user ",
        name,
        ", which does not exist (ops/bootstrap.sh creates it; set "
        "LONGSHORE_USER to use another, or pass --scheduler)"));
  }
  RETURN_IF_ERROR(MakeDirs(state_dir, 0700));
  if (chown(state_dir.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
    return ErrnoStatus(errno, "chown(%s)", state_dir);
  }
  auto sandbox = worker::FindSandboxBinary("", SelfExe());
  if (!sandbox.ok()) return sandbox.status();
  int fd = open(sandbox->c_str(), O_RDONLY);  // kept across exec on purpose
  if (fd < 0) return ErrnoStatus(errno, "open(%s)", *sandbox);
  setenv("LONGSHORE_SANDBOX", absl::StrCat("/proc/self/fd/", fd).c_str(), 1);
  if (initgroups(name, pw->pw_gid) != 0)
    return ErrnoStatus(errno, "initgroups");
  if (setgid(pw->pw_gid) != 0) return ErrnoStatus(errno, "setgid");
  if (setuid(pw->pw_uid) != 0) return ErrnoStatus(errno, "setuid");
  setenv("HOME", pw->pw_dir, 1);
  return absl::OkStatus();
}

}  // namespace

std::string EmbeddedStateDir() {
  if (const char* h = getenv("LONGSHORE_HOME")) return h;
  if (geteuid() == 0) return "/var/lib/longshore/local";
  if (const char* x = getenv("XDG_CACHE_HOME")) {
    return absl::StrCat(x, "/longshore");
  }
  const char* home = getenv("HOME");
  return absl::StrCat(home ? home : "/tmp", "/.cache/longshore");
}

absl::StatusOr<std::unique_ptr<EmbeddedFarm>> EmbeddedFarm::Start() {
  std::string state = EmbeddedStateDir();
  // As root the farm runs as another user, who must be able to reach it.
  RETURN_IF_ERROR(MakeDirs(state, geteuid() == 0 ? 0755 : 0700));
  int ready[2];
  if (pipe2(ready, O_CLOEXEC) != 0) return ErrnoStatus(errno, "pipe2");
  UniqueFd ready_r(ready[0]);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) return ErrnoStatus(errno, "fork");
  if (pid == 0) {
    // The child: single-threaded, like the parent at this point.
    close(ready[0]);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(1);
    if (geteuid() == 0) {
      absl::Status s = DropToFarmUser(state);
      if (!s.ok()) {
        std::string line = absl::StrCat("error ", s.message(), "\n");
        ssize_t ignored = write(ready[1], line.data(), line.size());
        (void)ignored;
        _exit(1);
      }
    }
    fcntl(ready[1], F_SETFD, 0);  // the re-executed farm reports through it
    std::string fd = std::to_string(ready[1]);
    execl("/proc/self/exe", "longshore", "__embedded-farm", state.c_str(),
          fd.c_str(), static_cast<char*>(nullptr));
    std::string line =
        absl::StrCat("error exec /proc/self/exe: ", strerror(errno), "\n");
    ssize_t ignored = write(ready[1], line.data(), line.size());
    (void)ignored;
    _exit(127);
  }
  close(ready[1]);
  // The farm writes "port N\n" when it serves, or "error ...\n".
  std::string got;
  char buf[512];
  for (;;) {
    struct pollfd p = {ready_r.get(), POLLIN, 0};
    int n = poll(&p, 1, 60000);
    if (n == 0) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
      return absl::DeadlineExceededError(
          "the one-machine farm did not start within 60s");
    }
    ssize_t r = read(ready_r.get(), buf, sizeof(buf));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got.append(buf, r);
    if (got.find('\n') != std::string::npos) break;
  }
  int port = 0;
  if (got.rfind("port ", 0) == 0 &&
      absl::SimpleAtoi(got.substr(5, got.find('\n') - 5), &port)) {
    return std::unique_ptr<EmbeddedFarm>(
        new EmbeddedFarm(pid, absl::StrCat("127.0.0.1:", port), state));
  }
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  std::string why = got.rfind("error ", 0) == 0
                        ? got.substr(6, got.find('\n') - 6)
                        : absl::StrCat("it exited with status ", status,
                                       " (see its log above)");
  return absl::UnavailableError(
      absl::StrCat("starting the one-machine farm: ", why));
}

EmbeddedFarm::~EmbeddedFarm() {
  if (pid_ <= 0) return;
  kill(pid_, SIGTERM);
  int status = 0;
  while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
}

int RunEmbeddedFarm(const std::vector<std::string>& args) {
  SetLogTag("farm");
  if (args.size() != 2) {
    fprintf(stderr, "usage: longshore __embedded-farm STATE_DIR READY_FD\n");
    return 2;
  }
  const std::string& state = args[0];
  int ready_fd = -1;
  if (!absl::SimpleAtoi(args[1], &ready_fd)) return 2;
  // Quiet unless something goes wrong: the farm's log would be the build's
  // noise (its errors reach the user as build events anyway).
  if (getenv("LONGSHORE_LOG_LEVEL") == nullptr) {
    SetMinLogLevel(LogLevel::kError);
  }
  auto report = [&](const std::string& line) {
    std::string l = line + "\n";
    ssize_t ignored = write(ready_fd, l.data(), l.size());
    (void)ignored;
  };
  worker::WorkerSetupOptions setup;
  setup.work_dir = state + "/worker";
  const char* sandbox = getenv("LONGSHORE_SANDBOX");
  setup.sandbox_flag = sandbox ? sandbox : "";
  auto env = worker::PrepareWorkerProcess(setup);
  if (!env.ok()) {
    report(absl::StrCat("error ", env.status().message()));
    return 1;
  }
  // The scheduler starts threads before the worker blocks these for its
  // signal thread; block them now so every thread inherits the mask.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  scheduler::SchedulerOptions sopts;
  sopts.state_dir = state + "/scheduler";
  auto sched = scheduler::Scheduler::Create(sopts);
  if (!sched.ok()) {
    report(absl::StrCat("error scheduler: ", sched.status().message()));
    return 1;
  }
  auto port = (*sched)->Start("127.0.0.1:0");
  if (!port.ok()) {
    report(absl::StrCat("error scheduler: ", port.status().message()));
    return 1;
  }
  worker::WorkerConfig config;
  config.scheduler_address = absl::StrCat("127.0.0.1:", *port);
  config.worker_id = "local";
  config.slots = 2;
  absl::Status s = worker::ServeWorker(config, *env, [&] {
    report(absl::StrCat("port ", *port));
    close(ready_fd);
  });
  (*sched)->Shutdown();
  if (!s.ok()) {
    report(absl::StrCat("error worker: ", s.message()));
    return 1;
  }
  return 0;
}

}  // namespace longshore::client
