#include "dockerfile/affinity_keys.h"

#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/sha256.h"
#include "dockerfile/parser.h"

namespace longshore::dockerfile {

std::vector<std::string> AffinityKeys(absl::string_view dockerfile,
                                      absl::string_view target,
                                      absl::string_view platform) {
  std::vector<std::string> keys;
  // Lengths first, so no two different triples hash the same bytes.
  keys.push_back(absl::StrCat(
      kDockerfileKeyPrefix,
      Sha256Digest(absl::StrCat(dockerfile.size(), ":", target.size(), ":",
                                dockerfile, target, platform))));
  absl::StatusOr<ParsedDockerfile> df = ParseAst(dockerfile);
  if (!df.ok()) return keys;
  std::set<std::string> stages;
  std::set<std::string> seen;
  for (const Node& node : df->nodes) {
    if (node.cmd != "from" || node.args.empty()) continue;
    const std::string& image = node.args[0];
    // FROM image AS name: later FROMs may name the stage.
    if (node.args.size() >= 3 && absl::AsciiStrToLower(node.args[1]) == "as") {
      stages.insert(absl::AsciiStrToLower(node.args[2]));
    }
    if (absl::AsciiStrToLower(image) == "scratch") continue;
    if (stages.count(absl::AsciiStrToLower(image)) > 0 &&
        !(node.args.size() >= 3 && absl::AsciiStrToLower(node.args[2]) ==
                                       absl::AsciiStrToLower(image))) {
      continue;
    }
    if (seen.insert(image).second) {
      keys.push_back(absl::StrCat(kBaseKeyPrefix, image));
    }
  }
  return keys;
}

}  // namespace longshore::dockerfile
