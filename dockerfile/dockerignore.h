// .dockerignore matching with the semantics of moby/patternmatcher as BuildKit
// uses it: `*`, `?`, `**`, character classes, `!` exceptions (last match wins),
// leading `/` and `./` ignored, comments, and parent directories matching.
#ifndef LONGSHORE_DOCKERFILE_DOCKERIGNORE_H_
#define LONGSHORE_DOCKERFILE_DOCKERIGNORE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace longshore::dockerfile {

class DockerIgnore {
 public:
  struct Pattern {
    std::string text;               // cleaned pattern, '/' separated
    bool exclusion = false;         // written with a leading '!'
    std::vector<std::string> dirs;  // text split on '/'
  };

  // Parses the file's contents. Errors name the line of a malformed pattern
  // (an unterminated character class, say).
  static absl::StatusOr<DockerIgnore> Parse(absl::string_view text);

  // True when the file or directory at `relative_path` ("/" separated, no
  // leading "./") is excluded from the context.
  bool Excluded(absl::string_view relative_path) const;

  // True when the directory `dir` may contain re-included (!) files, so a
  // walker must descend into it even if it is excluded itself.
  bool MayReinclude(absl::string_view dir) const;

  const std::vector<Pattern>& patterns() const { return patterns_; }

 private:
  std::vector<Pattern> patterns_;
};

// The ignore file BuildKit prefers for a Dockerfile at `dockerfile_path`
// (relative to the context): "<dockerfile_path>.dockerignore". When that file
// does not exist, ".dockerignore" at the context root applies.
std::string DockerIgnorePathFor(absl::string_view dockerfile_path);

// The ignore files to look for, in order of precedence: the first one that
// exists applies.
std::vector<std::string> DockerIgnoreCandidates(
    absl::string_view dockerfile_path);

// True for the files that are always sent whatever the patterns say: the
// Dockerfile itself and the ignore files.
bool AlwaysSent(absl::string_view relative_path,
                absl::string_view dockerfile_path);

}  // namespace longshore::dockerfile

#endif  // LONGSHORE_DOCKERFILE_DOCKERIGNORE_H_
