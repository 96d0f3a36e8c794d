// Platforms in OCI's "os/arch[/variant]" form: which one this machine builds
// for, and whether a worker's platform serves a build's.
#ifndef LONGSHORE_COMMON_PLATFORM_H_
#define LONGSHORE_COMMON_PLATFORM_H_

#include <string>

namespace longshore {

// This machine's platform from uname(2): x86_64 is linux/amd64, aarch64
// linux/arm64, armv7l linux/arm/v7, i686 linux/386.
std::string NativePlatform();
// Same, for a given uname machine string.
std::string PlatformOfMachine(const std::string& machine);

// Whether a worker of platform `have` builds for `want` (empty: anything):
// OS and architecture equal, and the variant too when `want` names one
// ("linux/arm64/v8" is "linux/arm64").
bool PlatformMatches(const std::string& want, const std::string& have);

}  // namespace longshore

#endif  // LONGSHORE_COMMON_PLATFORM_H_
