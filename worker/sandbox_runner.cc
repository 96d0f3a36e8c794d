#include "worker/sandbox_runner.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/errno_status.h"
#include "common/unique_fd.h"

extern char** environ;

namespace longshore::worker {
namespace {
// The descriptor the sandbox's --ready-fd pipe gets in the sandbox: 3, unless
// the sandbox binary itself is reached through descriptor 3
// (/proc/self/fd/3, as the CLI's embedded farm runs it), then 4.
int ReadyFdFor(const std::string& sandbox_binary) {
  absl::string_view path = sandbox_binary;
  int binary_fd = -1;
  if (absl::ConsumePrefix(&path, "/proc/self/fd/") &&
      absl::SimpleAtoi(path, &binary_fd) && binary_fd == 3) {
    return 4;
  }
  return 3;
}
}  // namespace

std::vector<std::string> SandboxArgv(const SandboxInvocation& inv) {
  std::vector<std::string> a{inv.sandbox_binary};
  for (const auto& l : inv.lowers) {
    a.push_back("--lower");
    a.push_back(l);
  }
  a.insert(a.end(), {"--upper", inv.upper, "--work", inv.work});
  if (!inv.hostname.empty()) a.insert(a.end(), {"--hostname", inv.hostname});
  if (!inv.cwd.empty()) a.insert(a.end(), {"--cwd", inv.cwd});
  if (!inv.user.empty()) a.insert(a.end(), {"--user", inv.user});
  a.insert(a.end(), {"--network", inv.network.empty() ? "none" : inv.network});
  for (const auto& e : inv.env) a.insert(a.end(), {"--env", e});
  if (inv.seccomp_bpf.empty()) {
    a.push_back("--no-seccomp");
  } else {
    a.insert(a.end(), {"--seccomp-bpf", inv.seccomp_bpf});
  }
  if (inv.timeout_seconds > 0) {
    a.insert(a.end(), {"--timeout", std::to_string(inv.timeout_seconds)});
  }
  a.insert(a.end(), inv.extra_args.begin(), inv.extra_args.end());
  a.push_back("--");
  a.insert(a.end(), inv.argv.begin(), inv.argv.end());
  return a;
}

absl::StatusOr<SandboxOutcome> RunSandbox(
    const SandboxInvocation& inv,
    const std::function<void(OutputStream, absl::string_view)>& on_output,
    const std::function<bool()>& cancelled) {
  int out_pipe[2], err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0) return ErrnoStatus(errno, "pipe2");
  UniqueFd out_r(out_pipe[0]), out_w(out_pipe[1]);
  if (pipe2(err_pipe, O_CLOEXEC) != 0) return ErrnoStatus(errno, "pipe2");
  UniqueFd err_r(err_pipe[0]), err_w(err_pipe[1]);
  // The sandbox writes one byte here when the command has started.
  int ready_pipe[2];
  if (pipe2(ready_pipe, O_CLOEXEC) != 0) return ErrnoStatus(errno, "pipe2");
  UniqueFd ready_r(ready_pipe[0]), ready_w(ready_pipe[1]);

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, out_w.get(), 1);
  posix_spawn_file_actions_adddup2(&fa, err_w.get(), 2);
  const int ready_fd = ReadyFdFor(inv.sandbox_binary);
  posix_spawn_file_actions_adddup2(&fa, ready_w.get(), ready_fd);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  sigset_t dfl;
  sigemptyset(&dfl);
  sigaddset(&dfl, SIGPIPE);
  sigaddset(&dfl, SIGTERM);
  sigaddset(&dfl, SIGINT);
  posix_spawnattr_setsigdefault(&attr, &dfl);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK |
                                      POSIX_SPAWN_SETSIGDEF |
                                      POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attr, 0);

  std::vector<std::string> args = SandboxArgv(inv);
  // Before "--": the sandbox's own flags end there.
  args.insert(args.end() - static_cast<long>(inv.argv.size()) - 1,
              {"--ready-fd", std::to_string(ready_fd)});
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  // The sandbox builds the step's environment from --env alone; it gets only
  // what it needs to run itself.
  std::string path_env = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";
  std::string tmp_env = "TMPDIR=" + inv.tmp_dir;
  std::vector<char*> envp{path_env.data()};
  if (!inv.tmp_dir.empty()) envp.push_back(tmp_env.data());
  envp.push_back(nullptr);
  pid_t pid = -1;
  const auto spawned = std::chrono::steady_clock::now();
  int rc = posix_spawn(&pid, inv.sandbox_binary.c_str(), &fa, &attr,
                       argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return ErrnoStatus(rc, "spawn %s", inv.sandbox_binary);
  out_w.reset();
  err_w.reset();
  ready_w.reset();

  SandboxOutcome outcome;
  std::string err_tail;  // last bytes of stderr, for the setup error line
  struct pollfd fds[3] = {{out_r.get(), POLLIN, 0},
                          {err_r.get(), POLLIN, 0},
                          {ready_r.get(), POLLIN, 0}};
  int open_fds = 2;  // output; the ready pipe does not hold the loop open
  bool killed = false;
  auto kill_deadline = std::chrono::steady_clock::time_point::max();
  char buf[1 << 16];
  while (open_fds > 0) {
    if (!killed && cancelled && cancelled()) {
      killed = true;
      outcome.cancelled = true;
      // The sandbox turns SIGTERM into a kill of its whole pid namespace.
      kill(pid, SIGTERM);
      kill_deadline =
          std::chrono::steady_clock::now() + std::chrono::seconds(5);
    }
    if (killed && std::chrono::steady_clock::now() > kill_deadline) {
      kill(-pid, SIGKILL);
      kill_deadline = std::chrono::steady_clock::time_point::max();
    }
    int n = poll(fds, 3, 100);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(errno, "poll");
    if (fds[2].fd >= 0 && (fds[2].revents & (POLLIN | POLLHUP | POLLERR))) {
      char byte = 0;
      ssize_t r = read(fds[2].fd, &byte, 1);
      if (r == 1) {
        outcome.setup_seconds = std::chrono::duration<double>(
                                    std::chrono::steady_clock::now() - spawned)
                                    .count();
      }
      if (r >= 0 || (errno != EINTR && errno != EAGAIN)) fds[2].fd = -1;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) {
        continue;
      }
      ssize_t r = read(fds[i].fd, buf, sizeof(buf));
      if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (r <= 0) {
        fds[i].fd = -1;
        --open_fds;
        continue;
      }
      absl::string_view chunk(buf, r);
      if (i == 1) {
        err_tail.append(chunk.data(), chunk.size());
        if (err_tail.size() > 4096) err_tail.erase(0, err_tail.size() - 4096);
      }
      on_output(i == 0 ? OutputStream::kStdout : OutputStream::kStderr, chunk);
    }
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return ErrnoStatus(errno, "waitpid(sandbox)");
  }
  if (WIFSIGNALED(status)) {
    outcome.exit_code = 128 + WTERMSIG(status);
  } else {
    outcome.exit_code = WEXITSTATUS(status);
  }
  // 123, 124 and 125 are the sandbox's own codes only when it said so on
  // stderr; a
  // command may exit with either value itself.
  std::string sandbox_line;
  for (absl::string_view line : absl::StrSplit(err_tail, '\n')) {
    if (absl::StartsWith(line, "longshore-sandbox: ")) {
      sandbox_line = std::string(line.substr(19));
    }
  }
  if (!sandbox_line.empty()) {
    if (outcome.exit_code == 124) outcome.timed_out = true;
    if (outcome.exit_code == 125) outcome.setup_error = sandbox_line;
    if (outcome.exit_code == 123) outcome.limit_error = sandbox_line;
  }
  return outcome;
}

}  // namespace longshore::worker
