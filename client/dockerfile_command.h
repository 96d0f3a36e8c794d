// `longshore dockerfile parse [--format=ast|json] FILE`.
#ifndef LONGSHORE_CLIENT_DOCKERFILE_COMMAND_H_
#define LONGSHORE_CLIENT_DOCKERFILE_COMMAND_H_

#include <string>
#include <vector>

namespace longshore::client {

int RunDockerfileCommand(const std::vector<std::string>& args);

}  // namespace longshore::client

#endif  // LONGSHORE_CLIENT_DOCKERFILE_COMMAND_H_
