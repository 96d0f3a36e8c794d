// Test driver: enters the worker's user namespace with EnterUserNamespace()
// and then either reports what it sees (--report) or execs a program, the way
// longshore-worker execs longshore-sandbox.
//   userns_exec --report [EXIT_CODE]
//   userns_exec --wait-for-signal
//   userns_exec -- PROGRAM [ARG...]
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <string>

#include "common/file_util.h"
#include "sandbox/userns.h"

namespace {

volatile sig_atomic_t g_signal = 0;
void OnSignal(int sig) { g_signal = sig; }

}  // namespace

int main(int argc, char** argv) {
  using namespace longshore::sandbox;
  if (argc < 2) {
    fprintf(stderr, "usage: userns_exec --report [CODE] | -- PROGRAM...\n");
    return 2;
  }
  UserNamespaceOptions opts;
  opts.warn = [](const std::string& m) {
    fprintf(stderr, "warning: %s\n", m.c_str());
  };
  absl::Status s = EnterUserNamespace(opts);
  if (!s.ok()) {
    fprintf(stderr, "EnterUserNamespace: %s\n",
            std::string(s.message()).c_str());
    return 125;
  }
  if (strcmp(argv[1], "--report") == 0) {
    auto uid_map = longshore::ReadFile("/proc/self/uid_map");
    auto gid_map = longshore::ReadFile("/proc/self/gid_map");
    printf("in_worker_userns=%d\n", InWorkerUserNamespace() ? 1 : 0);
    printf("uid=%d gid=%d\n", getuid(), getgid());
    printf("groups=%d\n", getgroups(0, nullptr));
    printf("uid_map=%s", uid_map.ok() ? uid_map->c_str() : "?\n");
    printf("gid_map=%s", gid_map.ok() ? gid_map->c_str() : "?\n");
    fflush(stdout);
    return argc > 2 ? atoi(argv[2]) : 0;
  }
  if (strcmp(argv[1], "--wait-for-signal") == 0) {
    signal(SIGTERM, OnSignal);
    printf("ready\n");
    fflush(stdout);
    while (g_signal == 0) pause();
    return 40 + g_signal;
  }
  if (strcmp(argv[1], "--") == 0 && argc > 2) {
    execv(argv[2], argv + 2);
    perror("execv");
    return 127;
  }
  fprintf(stderr, "userns_exec: bad arguments\n");
  return 2;
}
