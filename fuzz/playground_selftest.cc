// Shows that Playground::CheckNothingOutside is not vacuous: each way of
// touching the tree outside dest/ must abort, and writing only inside dest/
// (links pointing out included) must pass. Run by fuzz/run.sh before the
// archive targets; exits non-zero naming the case that went wrong.
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "fuzz/playground.h"

namespace {

using longshore::fuzz::Playground;

void Write(const std::string& path, const char* text) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0 || write(fd, text, strlen(text)) < 0) _exit(3);
  close(fd);
}

// Runs `act` in a child on a fresh playground, then the check; true when the
// child aborted.
bool Aborts(const std::function<void(const Playground&)>& act) {
  pid_t pid = fork();
  if (pid < 0) {
    perror("fork");
    _exit(2);
  }
  if (pid == 0) {
    // The aborts are expected: keep their messages out of the log.
    if (freopen("/dev/null", "w", stderr) == nullptr) _exit(3);
    Playground pg;
    pg.Reset("input", 5);
    act(pg);
    pg.CheckNothingOutside();
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
}

}  // namespace

int main() {
  const std::vector<
      std::pair<const char*, std::function<void(const Playground&)>>>
      violations = {
          {"a new file outside",
           [](const Playground& pg) {
             Write(pg.root() + "/outside/new", "x");
           }},
          {"the victim rewritten with the same size",
           [](const Playground& pg) {
             std::string v = pg.root() + "/outside/victim";
             struct stat st;
             stat(v.c_str(), &st);
             Write(v.c_str(),
                   std::string(static_cast<size_t>(st.st_size), 'x').c_str());
           }},
          {"a hard link from dest to the victim",
           [](const Playground& pg) {
             link((pg.root() + "/outside/victim").c_str(),
                  (pg.dest() + "/h").c_str());
           }},
          {"a mode changed outside",
           [](const Playground& pg) {
             chmod((pg.root() + "/outside/dir").c_str(), 0700);
           }},
          {"the input removed",
           [](const Playground& pg) { unlink(pg.input().c_str()); }},
          {"the victim's mtime changed",
           [](const Playground& pg) {
             struct timespec ts[2] = {{1, 0}, {1, 0}};
             utimensat(AT_FDCWD, (pg.root() + "/outside/victim").c_str(), ts,
                       0);
           }},
      };
  int bad = 0;
  for (const auto& [what, act] : violations) {
    if (!Aborts(act)) {
      fprintf(stderr, "playground_selftest: not caught: %s\n", what);
      ++bad;
    }
  }
  bool clean_aborts = Aborts([](const Playground& pg) {
    Write(pg.dest() + "/file", "inside");
    mkdir((pg.dest() + "/d").c_str(), 0);
    symlink("/mnt/outside/victim", (pg.dest() + "/l").c_str());
    symlink("../outside", (pg.dest() + "/d/up").c_str());
  });
  if (clean_aborts) {
    fprintf(stderr,
            "playground_selftest: writing only inside dest/ was reported\n");
    ++bad;
  }
  if (bad > 0) return 1;
  printf(
      "playground_selftest: %zu ways of writing outside caught, writing "
      "inside passes\n",
      violations.size());
  return 0;
}
