// longshore-sandbox: runs one build step in a rootless sandbox. See README.md
// for the command-line contract the worker relies on.
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "sandbox/image_rootfs.h"
#include "sandbox/options.h"
#include "sandbox/sandbox.h"
#include "sandbox/seccomp_policy.h"
#include "sandbox/step.h"
#include "sandbox/userns.h"

int main(int argc, char** argv) {
  using namespace longshore::sandbox;
  auto fail = [](absl::string_view message) {
    std::string line = absl::StrCat("longshore-sandbox: ", message, "\n");
    (void)!write(STDERR_FILENO, line.data(), line.size());
    return kExitSandboxFailure;
  };
  // --image LAYOUT[:REF]: the image's layers become the lowers (debugging).
  // Like the worker, first re-execute inside a user namespace over the
  // caller's subordinate ids, so the layers unpack with the image's owners
  // and the step sees them as a build step would.
  if (HasImageArg(std::vector<std::string>(argv + 1, argv + argc)) &&
      InInitialUserNamespace()) {
    UserNamespaceOptions uopts;
    absl::Status entered = EnterUserNamespace(uopts);
    if (!entered.ok()) return fail(entered.message());
  }
  absl::StatusOr<ImageArgs> image =
      ResolveImageArgs(std::vector<std::string>(argv + 1, argv + argc));
  if (!image.ok()) return fail(image.status().message());
  const std::vector<std::string>& args = image->args;
  absl::StatusOr<SandboxOptions> options = ParseSandboxArgs(args);
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
  int rc = RunSandbox(*options);
  if (!image->temp_dir.empty())
    longshore::RemoveTree(image->temp_dir).IgnoreError();
  return rc;
}
