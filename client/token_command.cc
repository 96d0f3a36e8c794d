#include "client/token_command.h"

#include <stdio.h>

#include "absl/status/statusor.h"
#include "scheduler/tokens.h"

namespace longshore::client {
namespace {

const char kTokenUsage[] =
    R"(Usage: longshore token NAME [--role submitter|operator|worker]

Makes a random bearer token that authenticates as NAME with ROLE (default
submitter). Prints two lines: the token, for the client only (its
LONGSHORE_TOKEN, or a file given with --token-file), and the line to add to
the scheduler's --tokens-file, which holds the token's hash, never the token.

Example:
  longshore token team-a-ci > t && head -1 t > team-a.token &&
    tail -1 t >> /etc/longshore/tokens && rm t
)";

}  // namespace

int RunTokenCommand(const std::vector<std::string>& args) {
  std::string name;
  std::string role_name = "submitter";
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "-h" || a == "--help") {
      fputs(kTokenUsage, stdout);
      return 0;
    }
    if (a == "--role" && i + 1 < args.size()) {
      role_name = args[++i];
    } else if (a.rfind("--role=", 0) == 0) {
      role_name = a.substr(7);
    } else if (!a.empty() && a[0] == '-') {
      fprintf(stderr, "longshore token: unknown flag %s\n\n%s", a.c_str(),
              kTokenUsage);
      return 2;
    } else if (name.empty()) {
      name = a;
    } else {
      fprintf(stderr, "longshore token: one NAME only (got %s and %s)\n",
              name.c_str(), a.c_str());
      return 2;
    }
  }
  if (name.empty()) {
    fputs(kTokenUsage, stderr);
    return 2;
  }
  if (!scheduler::IsValidIdentityName(name)) {
    fprintf(stderr,
            "longshore token: NAME \"%s\" must be 1-128 letters, digits or "
            "._@/:-\n",
            name.c_str());
    return 2;
  }
  absl::StatusOr<scheduler::Role> role = scheduler::ParseRole(role_name);
  if (!role.ok()) {
    fprintf(stderr, "longshore token: --role: %s\n",
            std::string(role.status().message()).c_str());
    return 2;
  }
  absl::StatusOr<std::string> token = scheduler::NewToken();
  if (!token.ok()) {
    fprintf(stderr, "longshore token: %s\n",
            std::string(token.status().message()).c_str());
    return 1;
  }
  printf("%s\n%s %s %s\n", token->c_str(), scheduler::HashToken(*token).c_str(),
         name.c_str(), scheduler::RoleName(*role));
  return 0;
}

}  // namespace longshore::client
