// The longshore-sandbox command line, as the worker uses it. Parsed by hand
// rather than with absl flags: options repeat (--lower, --env) with order
// significant, and everything after `--` is the command.
#ifndef LONGSHORE_SANDBOX_OPTIONS_H_
#define LONGSHORE_SANDBOX_OPTIONS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace longshore::sandbox {

enum class NetworkMode { kNone, kHost };

struct SandboxOptions {
  // Overlay lower layers, top-most first (overlayfs lowerdir order).
  std::vector<std::string> lowers;
  std::string upper;
  std::string work;
  // Alternative to lowers/upper/work: a plain directory as the root.
  std::string rootfs;
  std::string hostname = "longshore";
  std::string cwd = "/";
  // The command's whole environment, K=V each.
  std::vector<std::string> env;
  std::string user = "0:0";
  NetworkMode network = NetworkMode::kNone;
  std::string seccomp_bpf_path;
  bool no_seccomp = false;
  // 0: no limit.
  int timeout_seconds = 0;
  std::vector<std::string> command;

  // Set for `--write-seccomp-bpf PATH`: write the program and exit.
  std::string write_seccomp_bpf;
  bool help = false;
};

// Parses argv (argv[0] excluded) and checks the combination. Errors read
// "--flag: reason".
absl::StatusOr<SandboxOptions> ParseSandboxArgs(
    const std::vector<std::string>& args);

// Usage text for --help.
std::string SandboxUsage();

}  // namespace longshore::sandbox

#endif  // LONGSHORE_SANDBOX_OPTIONS_H_
