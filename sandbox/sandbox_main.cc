// longshore-sandbox: runs one build step in a rootless sandbox. See README.md
// for the command-line contract the worker relies on.
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "sandbox/options.h"
#include "sandbox/sandbox.h"
#include "sandbox/seccomp_policy.h"
#include "sandbox/step.h"

int main(int argc, char** argv) {
  using namespace longshore::sandbox;
  std::vector<std::string> args(argv + 1, argv + argc);
  absl::StatusOr<SandboxOptions> options = ParseSandboxArgs(args);
  auto fail = [](absl::string_view message) {
    std::string line = absl::StrCat("longshore-sandbox: ", message, "\n");
    (void)!write(STDERR_FILENO, line.data(), line.size());
    return kExitSandboxFailure;
  };
  if (!options.ok()) {
    return fail(absl::StrCat("options: ", options.status().message()));
  }
  if (options->help) {
    std::string usage = SandboxUsage();
    (void)!write(STDOUT_FILENO, usage.data(), usage.size());
    return 0;
  }
  if (!options->write_seccomp_bpf.empty()) {
    absl::Status s = WriteSeccompBpfFile(options->write_seccomp_bpf);
    if (!s.ok()) {
      return fail(absl::StrCat("write-seccomp-bpf(", options->write_seccomp_bpf,
                               "): ", s.message()));
    }
    return 0;
  }
  return RunSandbox(*options);
}
