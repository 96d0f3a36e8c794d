// longshore: the command line for CI jobs and operators.
#include <stdio.h>
#include <stdlib.h>

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "client/admin_commands.h"
#include "client/build_command.h"
#include "client/build_flags.h"
#include "client/dockerfile_command.h"
#include "client/embedded_farm.h"
#include "client/history_commands.h"
#include "client/token_command.h"
#include "client/unpack_image.h"

namespace {

const char kUsage[] =
    R"(Usage: longshore COMMAND [OPTIONS]

Commands:
  build CONTEXT              Build an image from a Dockerfile (docker build flags)
  dockerfile parse FILE      Print a Dockerfile's parse (--format=ast|json)
  builds                     List recent builds (--state, --submitter, --since,
                             --limit, --format json)
  inspect BUILD_ID           A build's spec, submitter, worker, times, steps
                             and outputs (--format json)
  logs BUILD_ID              Everything a build's steps wrote (--follow,
                             --step N)
  cancel BUILD_ID            Cancel a build
  workers                    List the scheduler's workers
  drain WORKER_ID            Stop giving builds to a worker
  undrain WORKER_ID          Resume giving builds to a worker
  token NAME [--role ROLE]   Make a bearer token and its --tokens-file line

Set LONGSHORE_SCHEDULER=HOST:PORT (or pass --scheduler) to talk to a farm.
A scheduler that authenticates callers takes a bearer token from
LONGSHORE_TOKEN or --token-file FILE (with any command), or a client
certificate from LONGSHORE_TLS_CERT and LONGSHORE_TLS_KEY.
)";

// Takes `--token-file FILE` (any command's) out of `args` into
// LONGSHORE_TOKEN_FILE, where the scheduler connection reads it.
bool TakeTokenFileFlag(std::vector<std::string>* args) {
  for (size_t i = 0; i < args->size(); ++i) {
    std::string value;
    const std::string& a = (*args)[i];
    if (a == "--token-file" || a == "--token_file") {
      if (i + 1 >= args->size()) {
        fputs("ERROR: --token-file needs a FILE\n", stderr);
        return false;
      }
      value = (*args)[i + 1];
      args->erase(args->begin() + i, args->begin() + i + 2);
    } else if (a.rfind("--token-file=", 0) == 0) {
      value = a.substr(13);
      args->erase(args->begin() + i);
    } else {
      continue;
    }
    setenv("LONGSHORE_TOKEN_FILE", value.c_str(), 1);
    // An explicit file wins over a token in the environment.
    unsetenv("LONGSHORE_TOKEN");
    --i;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "-h" ||
      std::string(argv[1]) == "--help" || std::string(argv[1]) == "help") {
    fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  std::string command = argv[1];
  std::vector<std::string> args(argv + 2, argv + argc);
  if (!TakeTokenFileFlag(&args)) return 2;
  if (command == "build") {
    for (const auto& a : args) {
      if (a == "-h" || a == "--help") {
        fputs(longshore::client::kBuildUsage, stdout);
        return 0;
      }
    }
    const char* env = getenv("LONGSHORE_SCHEDULER");
    auto flags = longshore::client::ParseBuildFlags(args, env ? env : "");
    if (!flags.ok()) {
      fprintf(stderr, "ERROR: %s\n",
              std::string(flags.status().message()).c_str());
      return 2;
    }
    return longshore::client::RunBuild(*flags);
  }
  if (command == "__embedded-farm") {
    return longshore::client::RunEmbeddedFarm(args);
  }
  if (command == "__unpack-image") {
    return longshore::client::RunUnpackImage(args);
  }
  if (command == "token") {
    return longshore::client::RunTokenCommand(args);
  }
  if (command == "dockerfile") {
    return longshore::client::RunDockerfileCommand(args);
  }
  if (command == "builds" || command == "inspect" || command == "logs") {
    return longshore::client::RunHistoryCommand(command, args);
  }
  if (command == "workers" || command == "drain" || command == "undrain" ||
      command == "cancel") {
    return longshore::client::RunAdminCommand(command, args);
  }
  fprintf(stderr, "longshore: unknown command \"%s\"\n\n%s", command.c_str(),
          kUsage);
  return 2;
}
