#include "common/platform.h"

#include <sys/utsname.h>

#include <algorithm>

namespace longshore {
namespace {

// arm64's default variant dropped.
std::string Normalize(const std::string& platform) {
  const std::string suffix = "/arm64/v8";
  if (platform.size() > suffix.size() &&
      platform.compare(platform.size() - suffix.size(), suffix.size(),
                       suffix) == 0) {
    return platform.substr(0, platform.size() - 3);
  }
  return platform;
}

}  // namespace

std::string PlatformOfMachine(const std::string& machine) {
  if (machine == "x86_64") return "linux/amd64";
  if (machine == "aarch64" || machine == "arm64") return "linux/arm64";
  if (machine == "armv7l" || machine == "armv8l") return "linux/arm/v7";
  if (machine == "armv6l") return "linux/arm/v6";
  if (machine == "i386" || machine == "i486" || machine == "i586" ||
      machine == "i686") {
    return "linux/386";
  }
  // ppc64le, s390x, riscv64, mips64le: the same names as OCI's.
  return "linux/" + machine;
}

std::string NativePlatform() {
  struct utsname u;
  if (uname(&u) != 0) return "linux/amd64";
  return PlatformOfMachine(u.machine);
}

bool PlatformMatches(const std::string& want, const std::string& have) {
  if (want.empty()) return true;
  const std::string w = Normalize(want);
  const std::string h = Normalize(have);
  if (w == h) return true;
  // A want without a variant takes any variant of its architecture.
  return std::count(w.begin(), w.end(), '/') == 1 && h.rfind(w + "/", 0) == 0;
}

}  // namespace longshore
