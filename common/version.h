// The release version (common/VERSION) and the commit the binaries were built
// from (stamped by ops/workspace-status.sh; "unknown" outside a git checkout).
#ifndef LONGSHORE_COMMON_VERSION_H_
#define LONGSHORE_COMMON_VERSION_H_

#include <string>

namespace longshore {

const char* Version();
const char* Commit();
// "longshore-worker 0.9.0 (commit 0123456789ab)".
std::string VersionLine(const std::string& program);

}  // namespace longshore

#endif  // LONGSHORE_COMMON_VERSION_H_
