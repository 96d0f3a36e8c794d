#include "sandbox/options.h"

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

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

}  // namespace

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
  --network none|host  (default none)
  --seccomp-bpf PATH   compiled seccomp program (from --write-seccomp-bpf)
  --no-seccomp         no seccomp filter (debugging only)
  --timeout SECONDS    kill the step after this long (exit status 124)
exit status: the command's; 128+N if killed by signal N; 124 on timeout;
125 when the sandbox fails (one line on stderr); 126/127 when the command
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
        return Bad(arg,
                   "'default' (slirp4netns) is not implemented yet; use none "
                   "or host");
      } else {
        return Bad(arg, absl::StrCat("'", value, "' is not none or host"));
      }
    } else if (arg == "--seccomp-bpf") {
      o.seccomp_bpf_path = value;
    } else if (arg == "--timeout") {
      if (!absl::SimpleAtoi(value, &o.timeout_seconds) ||
          o.timeout_seconds <= 0) {
        return Bad(arg, absl::StrCat("'", value,
                                     "' is not a positive number of seconds"));
      }
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
  if (o.no_seccomp && !o.seccomp_bpf_path.empty()) {
    return Bad("--no-seccomp", "cannot be combined with --seccomp-bpf");
  }
  return o;
}

}  // namespace longshore::sandbox
