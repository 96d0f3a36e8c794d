// `longshore token NAME [--role ROLE]`: makes a bearer token for a CI system
// and prints it with the line for the scheduler's --tokens-file.
#ifndef LONGSHORE_CLIENT_TOKEN_COMMAND_H_
#define LONGSHORE_CLIENT_TOKEN_COMMAND_H_

#include <string>
#include <vector>

namespace longshore::client {

int RunTokenCommand(const std::vector<std::string>& args);

}  // namespace longshore::client

#endif  // LONGSHORE_CLIENT_TOKEN_COMMAND_H_
