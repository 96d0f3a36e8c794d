#include "absl/strings/str_cat.h"
#include "common/version.h"

namespace longshore {

std::string VersionLine(const std::string& program) {
  return absl::StrCat(program, " ", Version(), " (commit ", Commit(), ")\n");
}

}  // namespace longshore
