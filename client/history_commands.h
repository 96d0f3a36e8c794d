// What happened to builds, for CI jobs and developers: `longshore builds`
// (recent builds, filtered), `longshore inspect BUILD` (spec, who, where,
// when, each step) and `longshore logs BUILD` (every byte its steps wrote).
#ifndef LONGSHORE_CLIENT_HISTORY_COMMANDS_H_
#define LONGSHORE_CLIENT_HISTORY_COMMANDS_H_

#include <string>
#include <vector>

namespace longshore::client {

extern const char kBuildsUsage[];
extern const char kInspectUsage[];
extern const char kLogsUsage[];

// `command` is "builds", "inspect" or "logs"; `args` follow it.
int RunHistoryCommand(const std::string& command,
                      const std::vector<std::string>& args);

}  // namespace longshore::client

#endif  // LONGSHORE_CLIENT_HISTORY_COMMANDS_H_
