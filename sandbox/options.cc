#include "sandbox/options.h"

#include <arpa/inet.h>
#include <sys/resource.h>

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace longshore::sandbox {
namespace {

absl::Status Bad(absl::string_view flag, absl::string_view reason) {
  return absl::InvalidArgumentError(absl::StrCat(flag, ": ", reason));
}

// The overlay mount option string separates with ',' and ':'.
absl::Status CheckOverlayPath(absl::string_view flag, const std::string& p) {
  if (p.empty() || p[0] != '/') return Bad(flag, "must be an absolute path");
  if (p.find_first_of(",:\\") != std::string::npos) {
    return Bad(flag, absl::StrCat("'", p, "' contains ',', ':' or '\\'"));
  }
  return absl::OkStatus();
}

absl::Status ParseCount(absl::string_view flag, const std::string& value,
                        uint64_t* out) {
  if (!absl::SimpleAtoi(value, out) || *out == 0) {
    return Bad(flag, absl::StrCat("'", value, "' is not a positive integer"));
  }
  return absl::OkStatus();
}

// Mount targets are resolved inside the root; these would shadow what the
// sandbox itself mounts there.
absl::Status CheckTarget(absl::string_view flag, const std::string& target) {
  if (target.empty() || target[0] != '/') {
    return Bad(flag, absl::StrCat("'", target, "' is not an absolute path"));
  }
  for (absl::string_view reserved : {"/proc", "/sys"}) {
    if (target == reserved ||
        absl::StartsWith(target, absl::StrCat(reserved, "/"))) {
      return Bad(flag, absl::StrCat("'", target, "' is under ", reserved));
    }
  }
  if (target.find_first_not_of('/') == std::string::npos) {
    return Bad(flag, "cannot mount over /");
  }
  return absl::OkStatus();
}

absl::StatusOr<BindMountSpec> ParseBind(const std::string& value) {
  std::vector<std::string> parts = absl::StrSplit(value, ':');
  if (parts.size() < 2 || parts.size() > 3) {
    return Bad("--bind", absl::StrCat("'", value, "' is not SRC:DST[:ro|rw]"));
  }
  BindMountSpec b;
  b.source = parts[0];
  b.target = parts[1];
  if (b.source.empty() || b.source[0] != '/') {
    return Bad("--bind",
               absl::StrCat("source '", b.source, "' is not an absolute path"));
  }
  if (auto s = CheckTarget("--bind", b.target); !s.ok()) return s;
  if (parts.size() == 3) {
    if (parts[2] == "rw") {
      b.writable = true;
    } else if (parts[2] != "ro") {
      return Bad("--bind", absl::StrCat("'", parts[2], "' is not ro or rw"));
    }
  }
  return b;
}

absl::StatusOr<TmpfsMountSpec> ParseTmpfs(const std::string& value) {
  std::vector<std::string> parts = absl::StrSplit(value, ':');
  if (parts.size() > 2) {
    return Bad("--tmpfs", absl::StrCat("'", value, "' is not DST[:BYTES]"));
  }
  TmpfsMountSpec t;
  t.target = parts[0];
  if (auto s = CheckTarget("--tmpfs", t.target); !s.ok()) return s;
  if (parts.size() == 2) {
    if (auto s = ParseCount("--tmpfs", parts[1], &t.size_bytes); !s.ok()) {
      return s;
    }
  }
  return t;
}

}  // namespace

absl::StatusOr<Ulimit> ParseUlimit(const std::string& value) {
  static constexpr std::pair<const char*, int> kNames[] = {
      {"core", RLIMIT_CORE},         {"cpu", RLIMIT_CPU},
      {"data", RLIMIT_DATA},         {"fsize", RLIMIT_FSIZE},
      {"locks", RLIMIT_LOCKS},       {"memlock", RLIMIT_MEMLOCK},
      {"msgqueue", RLIMIT_MSGQUEUE}, {"nice", RLIMIT_NICE},
      {"nofile", RLIMIT_NOFILE},     {"nproc", RLIMIT_NPROC},
      {"rss", RLIMIT_RSS},           {"rtprio", RLIMIT_RTPRIO},
      {"rttime", RLIMIT_RTTIME},     {"sigpending", RLIMIT_SIGPENDING},
      {"stack", RLIMIT_STACK}};
  size_t eq = value.find('=');
  if (eq == std::string::npos) {
    return Bad("--ulimit",
               absl::StrCat("'", value, "' is not NAME=SOFT[:HARD]"));
  }
  std::string name = value.substr(0, eq);
  Ulimit u;
  for (const auto& [n, r] : kNames) {
    if (name == n) u.resource = r;
  }
  if (u.resource < 0) {
    return Bad("--ulimit", absl::StrCat("unknown resource '", name, "'"));
  }
  std::vector<std::string> parts = absl::StrSplit(value.substr(eq + 1), ':');
  if (parts.size() > 2) {
    return Bad("--ulimit",
               absl::StrCat("'", value, "' is not NAME=SOFT[:HARD]"));
  }
  uint64_t v[2];
  for (size_t i = 0; i < 2; ++i) {
    const std::string& p = parts[std::min(i, parts.size() - 1)];
    int64_t n;
    if (!absl::SimpleAtoi(p, &n) || n < -1) {
      return Bad("--ulimit", absl::StrCat("'", value, "': '", p,
                                          "' is not a number or -1"));
    }
    v[i] = n == -1 ? static_cast<uint64_t>(RLIM_INFINITY)
                   : static_cast<uint64_t>(n);
  }
  u.soft = v[0];
  u.hard = v[1];
  if (u.soft > u.hard) {
    return Bad("--ulimit",
               absl::StrCat("'", value, "': the soft limit is above the hard"));
  }
  return u;
}

absl::StatusOr<std::string> ParseAddHost(const std::string& value) {
  // NAME:IP, or NAME=IP as buildx also reads it; an IPv6 address keeps its
  // colons (the name ends at the first separator).
  size_t sep = value.find_first_of(":=");
  if (sep == std::string::npos || sep == 0 || sep + 1 >= value.size()) {
    return Bad("--add-host", absl::StrCat("'", value, "' is not NAME:IP"));
  }
  std::string name = value.substr(0, sep);
  std::string ip = value.substr(sep + 1);
  if (ip.size() > 2 && ip.front() == '[' && ip.back() == ']') {
    ip = ip.substr(1, ip.size() - 2);
  }
  unsigned char buf[sizeof(struct in6_addr)];
  if (inet_pton(AF_INET, ip.c_str(), buf) != 1 &&
      inet_pton(AF_INET6, ip.c_str(), buf) != 1) {
    return Bad("--add-host",
               absl::StrCat("'", value, "': '", ip, "' is not an IP address"));
  }
  for (char c : name) {
    if (!(absl::ascii_isalnum(c) || c == '-' || c == '.' || c == '_')) {
      return Bad("--add-host", absl::StrCat("'", value, "': '", name,
                                            "' is not a host name"));
    }
  }
  return absl::StrCat(ip, "\t", name);
}

std::string SandboxUsage() {
  return R"(usage: longshore-sandbox [options] -- COMMAND [ARG...]
       longshore-sandbox --write-seccomp-bpf PATH
  --lower DIR          overlay lower layer, repeatable, top-most first
  --upper DIR          overlay upper dir (receives the step's changes)
  --work DIR           overlay work dir (same filesystem as --upper)
  --rootfs DIR         a plain directory as the root instead of an overlay
  --hostname NAME      (default longshore)
  --cwd PATH           working directory inside the root (created if missing)
  --env K=V            repeatable; the whole environment of the command
  --user USER[:GROUP]  names or numbers from the root's /etc/passwd, /etc/group
  --network none|default|host  (default none; default: slirp4netns)
  --slirp4netns PATH   (default: slirp4netns from PATH)
  --bind SRC:DST[:ro|rw]  bind a host path at DST (read-only by default)
  --tmpfs DST[:BYTES]  an empty tmpfs at DST (default 64 MiB)
  --memory BYTES       memory limit (cgroup memory.max, else RLIMIT_AS)
  --pids N             process/thread limit (cgroup pids.max, else
                       RLIMIT_NPROC over the step's own user namespace)
  --disk BYTES         limit on what the step writes to the upper dir
  --nofile N           RLIMIT_NOFILE (soft and hard)
  --cgroup-parent DIR  delegated cgroup v2 directory for per-step cgroups
  --seccomp-bpf PATH   compiled seccomp program (from --write-seccomp-bpf)
  --no-seccomp         no seccomp filter (debugging only)
  --add-host NAME:IP   an /etc/hosts entry (repeatable)
  --ulimit NAME=SOFT[:HARD]  an rlimit (docker's names: nofile, nproc, core,
                       stack, memlock, ...; -1 unlimited), never above the
                       limits above or the sandbox's own (repeatable)
  --shm-size BYTES     size of the /dev/shm tmpfs (default 64 MiB)
  --insecure           RUN --security=insecure: root keeps every capability
                       of the step's user namespace; no seccomp filter
  --timeout SECONDS    kill the step after this long (exit status 124)
  --ready-fd FD        an inherited pipe: one byte is written to it when the
                       command has been started (setup is over)
exit status: the command's; 128+N if killed by signal N; 124 on timeout;
125 when the sandbox fails (one line on stderr); 123 when a limit stopped
the step (one line on stderr); 126/127 when the command
cannot be executed / is not found.
)";
}

absl::StatusOr<SandboxOptions> ParseSandboxArgs(
    const std::vector<std::string>& args) {
  SandboxOptions o;
  size_t i = 0;
  bool have_command = false;
  while (i < args.size()) {
    std::string arg = args[i++];
    if (arg == "--") {
      o.command.assign(args.begin() + i, args.end());
      have_command = true;
      break;
    }
    if (arg == "-h" || arg == "--help") {
      o.help = true;
      return o;
    }
    if (arg == "--no-seccomp") {
      o.no_seccomp = true;
      continue;
    }
    if (arg == "--insecure") {
      o.insecure = true;
      continue;
    }
    if (!absl::StartsWith(arg, "--")) {
      return Bad(arg, "unexpected argument (put the command after --)");
    }
    std::string value;
    if (size_t eq = arg.find('='); eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
    } else {
      if (i >= args.size()) return Bad(arg, "missing value");
      value = args[i++];
    }
    if (arg == "--lower") {
      o.lowers.push_back(value);
    } else if (arg == "--upper") {
      o.upper = value;
    } else if (arg == "--work") {
      o.work = value;
    } else if (arg == "--rootfs") {
      o.rootfs = value;
    } else if (arg == "--hostname") {
      if (value.empty() || value.size() > 64) {
        return Bad(arg, "must be 1 to 64 characters");
      }
      o.hostname = value;
    } else if (arg == "--cwd") {
      if (value.empty() || value[0] != '/') {
        return Bad(arg, "must be an absolute path");
      }
      o.cwd = value;
    } else if (arg == "--env") {
      size_t eq = value.find('=');
      if (eq == std::string::npos || eq == 0) {
        return Bad(arg, absl::StrCat("'", value, "' is not K=V"));
      }
      o.env.push_back(value);
    } else if (arg == "--user") {
      o.user = value;
    } else if (arg == "--network") {
      if (value == "none") {
        o.network = NetworkMode::kNone;
      } else if (value == "host") {
        o.network = NetworkMode::kHost;
      } else if (value == "default") {
        o.network = NetworkMode::kDefault;
      } else {
        return Bad(arg,
                   absl::StrCat("'", value, "' is not none, default or host"));
      }
    } else if (arg == "--seccomp-bpf") {
      o.seccomp_bpf_path = value;
    } else if (arg == "--timeout") {
      if (!absl::SimpleAtoi(value, &o.timeout_seconds) ||
          o.timeout_seconds <= 0) {
        return Bad(arg, absl::StrCat("'", value,
                                     "' is not a positive number of seconds"));
      }
    } else if (arg == "--ready-fd") {
      if (!absl::SimpleAtoi(value, &o.ready_fd) || o.ready_fd < 3) {
        return Bad(arg, absl::StrCat("'", value,
                                     "' is not a descriptor number of 3 or "
                                     "more"));
      }
    } else if (arg == "--memory") {
      if (auto s = ParseCount(arg, value, &o.memory_bytes); !s.ok()) return s;
    } else if (arg == "--pids") {
      if (auto s = ParseCount(arg, value, &o.pids); !s.ok()) return s;
    } else if (arg == "--disk") {
      if (auto s = ParseCount(arg, value, &o.disk_bytes); !s.ok()) return s;
    } else if (arg == "--nofile") {
      if (auto s = ParseCount(arg, value, &o.nofile); !s.ok()) return s;
    } else if (arg == "--cgroup-parent") {
      if (value.empty() || value[0] != '/') {
        return Bad(arg, "must be an absolute path");
      }
      o.cgroup_parent = value;
    } else if (arg == "--slirp4netns") {
      if (value.empty()) return Bad(arg, "missing path");
      o.slirp4netns = value;
    } else if (arg == "--bind") {
      absl::StatusOr<BindMountSpec> b = ParseBind(value);
      if (!b.ok()) return b.status();
      o.binds.push_back(std::move(*b));
    } else if (arg == "--tmpfs") {
      absl::StatusOr<TmpfsMountSpec> t = ParseTmpfs(value);
      if (!t.ok()) return t.status();
      o.tmpfs.push_back(std::move(*t));
    } else if (arg == "--add-host") {
      absl::StatusOr<std::string> line = ParseAddHost(value);
      if (!line.ok()) return line.status();
      o.extra_hosts.push_back(std::move(*line));
    } else if (arg == "--ulimit") {
      absl::StatusOr<Ulimit> u = ParseUlimit(value);
      if (!u.ok()) return u.status();
      if (o.ulimits.size() >= StepLimits::kMaxUlimits) {
        return Bad(arg, "too many");
      }
      o.ulimits.push_back(*u);
    } else if (arg == "--shm-size") {
      if (auto s = ParseCount(arg, value, &o.shm_bytes); !s.ok()) return s;
    } else if (arg == "--write-seccomp-bpf") {
      if (value.empty()) return Bad(arg, "missing path");
      o.write_seccomp_bpf = value;
    } else {
      return Bad(arg, "unknown option");
    }
  }
  if (!o.write_seccomp_bpf.empty()) return o;
  if (!have_command || o.command.empty() || o.command[0].empty()) {
    return Bad("--",
               "no command given (longshore-sandbox [options] -- COMMAND)");
  }
  if (!o.rootfs.empty()) {
    if (!o.lowers.empty() || !o.upper.empty() || !o.work.empty()) {
      return Bad("--rootfs", "cannot be combined with --lower/--upper/--work");
    }
    if (o.rootfs[0] != '/') return Bad("--rootfs", "must be an absolute path");
    if (o.disk_bytes > 0) {
      return Bad("--disk", "needs --upper (it limits the upper directory)");
    }
  } else {
    if (o.upper.empty() || o.work.empty()) {
      return Bad("--upper", "--upper and --work (or --rootfs) are required");
    }
    for (const std::string& l : o.lowers) {
      if (auto s = CheckOverlayPath("--lower", l); !s.ok()) return s;
    }
    if (auto s = CheckOverlayPath("--upper", o.upper); !s.ok()) return s;
    if (auto s = CheckOverlayPath("--work", o.work); !s.ok()) return s;
  }
  if (o.insecure && !o.seccomp_bpf_path.empty()) {
    return Bad("--insecure", "cannot be combined with --seccomp-bpf");
  }
  if (o.no_seccomp && !o.seccomp_bpf_path.empty()) {
    return Bad("--no-seccomp", "cannot be combined with --seccomp-bpf");
  }
  return o;
}

}  // namespace longshore::sandbox
