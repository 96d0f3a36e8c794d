// The seccomp filter every RUN step gets: the semantics of Docker's default
// profile (deny by default with EPERM, an allow-list, the clone namespace-flag,
// personality and socket family rules, i386 and x32 handled like x86_64), built
// with libseccomp once per worker and handed to each sandbox as a compiled
// classic-BPF program.
#ifndef LONGSHORE_SANDBOX_SECCOMP_POLICY_H_
#define LONGSHORE_SANDBOX_SECCOMP_POLICY_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace longshore::sandbox {

struct SeccompPolicyOptions {
  // Docker allows ptrace, process_vm_readv and process_vm_writev on kernels
  // from 4.8 (where ptrace can no longer bypass seccomp). Inside the step's pid
  // namespace only the step's own processes are reachable.
  bool allow_ptrace = true;
  // Emit the allow-list as a binary tree of comparisons
  // (SCMP_FLTATR_CTL_OPTIMIZE 2) rather than libseccomp's default linear
  // list: a few more instructions, half the cost to install (see README.md,
  // "Per-step cost"). The list is kept for bench/seccomp_attach.
  bool binary_tree = true;
};

// Builds the policy and returns the compiled program: an array of
// `struct sock_filter` in host byte order, ready for SECCOMP_SET_MODE_FILTER.
absl::StatusOr<std::string> CompileSeccompBpf(
    const SeccompPolicyOptions& opts = {});

// Writes CompileSeccompBpf() to `path` (atomically, mode 0644).
absl::Status WriteSeccompBpfFile(const std::string& path,
                                 const SeccompPolicyOptions& opts = {});

// Reads a program written by WriteSeccompBpfFile and checks its shape (a whole
// number of instructions, at most BPF_MAXINSNS).
absl::StatusOr<std::string> ReadSeccompBpfFile(const std::string& path);

// Checks the shape of a compiled program.
absl::Status ValidateSeccompBpf(absl::string_view program);

// Installs `program` on the calling thread. no_new_privs must already be set
// (or the caller hold CAP_SYS_ADMIN). Async-signal-safe: usable after fork.
// Returns 0 or an errno value.
int InstallSeccompBpf(absl::string_view program);

}  // namespace longshore::sandbox

#endif  // LONGSHORE_SANDBOX_SECCOMP_POLICY_H_
