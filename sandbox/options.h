// The longshore-sandbox command line, as the worker uses it. Parsed by hand
// rather than with absl flags: options repeat (--lower, --env) with order
// significant, and everything after `--` is the command.
#ifndef LONGSHORE_SANDBOX_OPTIONS_H_
#define LONGSHORE_SANDBOX_OPTIONS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "sandbox/limits.h"

namespace longshore::sandbox {

enum class NetworkMode { kNone, kHost, kDefault };

// --bind SRC:DST[:ro|rw]: a host path (file or directory) bound at DST inside
// the root, recursively; read-only unless rw. nosuid,nodev either way.
struct BindMountSpec {
  std::string source;
  std::string target;
  bool writable = false;
};

// --tmpfs DST[:BYTES]: an empty tmpfs (mode 1777, nosuid,nodev) at DST.
struct TmpfsMountSpec {
  std::string target;
  uint64_t size_bytes = 64 << 20;
};

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
  // --insecure: every capability of the user namespace, no seccomp filter.
  bool insecure = false;
  // --add-host NAME:IP, as "IP\tNAME" lines for /etc/hosts.
  std::vector<std::string> extra_hosts;
  // --ulimit NAME=SOFT[:HARD].
  std::vector<Ulimit> ulimits;
  // --shm-size BYTES: the size of /dev/shm.
  uint64_t shm_bytes = 64 << 20;
  // 0: no limit.
  int timeout_seconds = 0;
  // --ready-fd: an inherited pipe; pid 1 writes one byte to it once the
  // command has been exec'd (the end of the sandbox's setup), then closes it.
  int ready_fd = -1;
  // Limits, 0 meaning none. See README.md ("Limits") for how each is enforced
  // with and without a delegated cgroup.
  uint64_t memory_bytes = 0;
  uint64_t pids = 0;
  uint64_t disk_bytes = 0;
  uint64_t nofile = 0;
  // A delegated cgroup v2 directory; each step gets a child cgroup in it.
  std::string cgroup_parent;
  // slirp4netns for --network default (searched in PATH when a bare name).
  std::string slirp4netns = "slirp4netns";
  std::vector<BindMountSpec> binds;
  std::vector<TmpfsMountSpec> tmpfs;
  std::vector<std::string> command;

  // Set for `--write-seccomp-bpf PATH`: write the program and exit.
  std::string write_seccomp_bpf;
  bool help = false;
};

// `--ulimit NAME=SOFT[:HARD]` with docker's resource names; -1 is unlimited.
absl::StatusOr<Ulimit> ParseUlimit(const std::string& value);

// `--add-host NAME:IP` (or NAME=IP): the /etc/hosts line "IP\tNAME".
absl::StatusOr<std::string> ParseAddHost(const std::string& value);

// Parses argv (argv[0] excluded) and checks the combination. Errors read
// "--flag: reason".
absl::StatusOr<SandboxOptions> ParseSandboxArgs(
    const std::vector<std::string>& args);

// Usage text for --help.
std::string SandboxUsage();

}  // namespace longshore::sandbox

#endif  // LONGSHORE_SANDBOX_OPTIONS_H_
