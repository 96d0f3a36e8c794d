// .dockerignore files, which come with the context a submitter sends: parse,
// then match a fixed set of paths and paths taken from the input itself.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "dockerfile/dockerignore.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using longshore::dockerfile::DockerIgnore;
  const std::string input(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<DockerIgnore> di = DockerIgnore::Parse(input);
  // The input's words are also file names (a/b/c.go), and a Dockerfile path
  // for the helpers that pick the ignore file.
  std::vector<std::string> paths = {
      "a",           "a/b/c.go",   "vendor/keep/x",
      ".git/config", "Dockerfile", "x/y/z/w/v"};
  for (absl::string_view w : absl::StrSplit(input, absl::ByAnyChar(" \n"))) {
    if (!w.empty() && paths.size() < 32) paths.emplace_back(w);
  }
  for (const std::string& p : paths) {
    (void)longshore::dockerfile::DockerIgnorePathFor(p);
    (void)longshore::dockerfile::DockerIgnoreCandidates(p);
    (void)longshore::dockerfile::AlwaysSent(p, "Dockerfile");
    if (!di.ok()) continue;
    (void)di->Excluded(p);
    (void)di->MayReinclude(p);
  }
  return 0;
}
