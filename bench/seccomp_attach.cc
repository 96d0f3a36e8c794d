// The cost of installing the step's seccomp filter, which every RUN step pays
// right before its execve: Longshore's program (libseccomp, binary tree)
// against the same policy as libseccomp's default linear list (what runc and
// crun install for Docker's profile), each installed in a fresh child process,
// alternately, N times. Prints median and p90 of the prctl(PR_SET_SECCOMP)
// call alone, and the ratio.
//
//   bazel run //bench:seccomp_attach -- [RUNS]
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "sandbox/seccomp_policy.h"

namespace {

double NowUs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

// Installs `program` in a child; returns the microseconds the prctl took, or
// a negative value when it failed.
double AttachOnce(const std::string& program) {
  int pipefd[2];
  if (pipe(pipefd) != 0) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    close(pipefd[0]);
    struct sock_fprog prog;
    prog.len = static_cast<unsigned short>(program.size() /
                                           sizeof(struct sock_filter));
    prog.filter = reinterpret_cast<struct sock_filter*>(
        const_cast<char*>(program.data()));
    double took = -1;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0) {
      const double start = NowUs();
      if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) == 0) {
        took = NowUs() - start;
      }
    }
    (void)!write(pipefd[1], &took, sizeof(took));
    _exit(0);
  }
  close(pipefd[1]);
  double took = -1;
  if (pid < 0 || read(pipefd[0], &took, sizeof(took)) != sizeof(took)) {
    took = -1;
  }
  close(pipefd[0]);
  if (pid > 0) waitpid(pid, nullptr, 0);
  return took;
}

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(p * (v.size() - 1))];
}

}  // namespace

int main(int argc, char** argv) {
  const int runs = argc > 1 ? atoi(argv[1]) : 300;
  longshore::sandbox::SeccompPolicyOptions tree, list;
  list.binary_tree = false;
  auto tree_program = longshore::sandbox::CompileSeccompBpf(tree);
  auto list_program = longshore::sandbox::CompileSeccompBpf(list);
  if (!tree_program.ok() || !list_program.ok()) {
    fprintf(stderr, "seccomp_attach: compiling the policy failed: %s\n",
            std::string((tree_program.ok() ? list_program.status()
                                           : tree_program.status())
                            .message())
                .c_str());
    return 1;
  }
  std::vector<double> tree_us, list_us;
  for (int i = 0; i < runs; ++i) {
    const double t = AttachOnce(*tree_program);
    const double l = AttachOnce(*list_program);
    if (t < 0 || l < 0) {
      fprintf(stderr, "seccomp_attach: installing a filter failed\n");
      return 1;
    }
    tree_us.push_back(t);
    list_us.push_back(l);
  }
  const size_t insn = sizeof(struct sock_filter);
  printf("%-44s %6s %10s %10s %8s\n", "program", "insns", "median_us", "p90_us",
         "ratio");
  const double list_median = Percentile(list_us, 0.5);
  printf("%-44s %6zu %10.1f %10.1f %8s\n",
         "libseccomp linear list (runc/crun style)",
         list_program->size() / insn, list_median, Percentile(list_us, 0.9),
         "1.00x");
  printf("%-44s %6zu %10.1f %10.1f %7.2fx\n", "longshore (binary tree)",
         tree_program->size() / insn, Percentile(tree_us, 0.5),
         Percentile(tree_us, 0.9), Percentile(tree_us, 0.5) / list_median);
  return 0;
}
