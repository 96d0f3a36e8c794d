// absl flag names are C++ identifiers (--state_dir); Longshore documents the
// dashed spelling (--state-dir) that docker and kubectl users type.
#ifndef LONGSHORE_COMMON_FLAG_NAMES_H_
#define LONGSHORE_COMMON_FLAG_NAMES_H_

#include <string>
#include <vector>

namespace longshore {

// Rewrites the name part of every "--flag[=value]" argument before a "--"
// terminator, dashes to underscores, so both spellings parse.
std::vector<std::string> NormalizeFlagNames(int argc, char** argv);

// argv-style pointers into `args` (valid while `args` lives), null-terminated.
std::vector<char*> ArgvPointers(std::vector<std::string>& args);

}  // namespace longshore

#endif  // LONGSHORE_COMMON_FLAG_NAMES_H_
