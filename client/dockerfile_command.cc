#include "client/dockerfile_command.h"

#include <stdio.h>

#include "common/file_util.h"
#include "dockerfile/parser.h"

namespace longshore::client {

int RunDockerfileCommand(const std::vector<std::string>& args) {
  const char* usage =
      "usage: longshore dockerfile parse [--format=ast|json] FILE\n";
  if (args.empty() || args[0] != "parse") {
    fputs(usage, stderr);
    return 2;
  }
  std::string format = "ast";
  std::string file;
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a.rfind("--format=", 0) == 0) {
      format = a.substr(9);
    } else if (a == "--format" && i + 1 < args.size()) {
      format = args[++i];
    } else if (file.empty()) {
      file = a;
    } else {
      fputs(usage, stderr);
      return 2;
    }
  }
  if (file.empty() || (format != "ast" && format != "json")) {
    fputs(usage, stderr);
    return 2;
  }
  auto text = ReadFile(file);
  if (!text.ok()) {
    fprintf(stderr, "ERROR: %s\n",
            std::string(text.status().message()).c_str());
    return 1;
  }
  // The AST dump is BuildKit's parser output, which keeps instructions its
  // later checks reject; the JSON view is of a Dockerfile that would build.
  auto parsed = format == "ast" ? dockerfile::ParseAst(*text, file)
                                : dockerfile::Parse(*text, file);
  if (!parsed.ok()) {
    fprintf(stderr, "ERROR: %s\n",
            std::string(parsed.status().message()).c_str());
    return 1;
  }
  std::string out = format == "ast" ? dockerfile::DumpAst(*parsed)
                                    : dockerfile::DumpJson(*parsed);
  fputs(out.c_str(), stdout);
  if (!out.empty() && out.back() != '\n') fputc('\n', stdout);
  return 0;
}

}  // namespace longshore::client
