#include "worker/sandbox_self_test.h"

#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "common/status_macros.h"
#include "worker/sandbox_runner.h"

namespace longshore::worker {

absl::StatusOr<double> SandboxSelfTest(const SelfTestOptions& opts) {
  ASSIGN_OR_RETURN(std::string dir,
                   MakeTempDir(opts.scratch_dir, "self-test-"));
  for (const char* sub : {"/lower", "/upper", "/work"}) {
    RETURN_IF_ERROR(MakeDirs(dir + sub, 0755));
  }
  SandboxInvocation inv;
  inv.sandbox_binary = opts.sandbox_binary;
  inv.tmp_dir = opts.scratch_dir;
  inv.lowers = {dir + "/lower"};
  inv.upper = dir + "/upper";
  inv.work = dir + "/work";
  inv.hostname = "self-test";
  inv.network = "none";
  inv.seccomp_bpf = opts.seccomp_bpf;
  inv.timeout_seconds = 60;
  if (!opts.cgroup_parent.empty()) {
    inv.extra_args = {"--cgroup-parent", opts.cgroup_parent};
  }
  // The empty root has no such file: a sandbox that set everything up ends
  // at the command's execve with "not found" (127). Any setup failure exits
  // 125 with its reason.
  inv.argv = {"/longshore-self-test"};
  std::string err;
  auto outcome = RunSandbox(
      inv,
      [&](OutputStream stream, absl::string_view data) {
        if (err.size() < 4096) err.append(data.data(), data.size());
      },
      nullptr);
  RemoveTree(dir).IgnoreError();
  if (!outcome.ok()) return outcome.status();
  if (!outcome->setup_error.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("sandbox self-test: ", outcome->setup_error));
  }
  if (outcome->exit_code != 127 || outcome->setup_seconds < 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "sandbox self-test: expected the command's execve to report not "
        "found (exit 127), got exit ",
        outcome->exit_code, ": ", err));
  }
  return outcome->setup_seconds;
}

}  // namespace longshore::worker
