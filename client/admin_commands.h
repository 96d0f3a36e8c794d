// `longshore workers|drain|undrain|cancel|builds`: operator commands against a
// scheduler.
#ifndef LONGSHORE_CLIENT_ADMIN_COMMANDS_H_
#define LONGSHORE_CLIENT_ADMIN_COMMANDS_H_

#include <string>
#include <vector>

namespace longshore::client {

// `args` are the words after the command name. Returns the exit status.
int RunAdminCommand(const std::string& command,
                    const std::vector<std::string>& args);

}  // namespace longshore::client

#endif  // LONGSHORE_CLIENT_ADMIN_COMMANDS_H_
