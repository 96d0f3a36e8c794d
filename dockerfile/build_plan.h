// Multi-stage structure of a parsed Dockerfile: which stages exist, what each
// is based on, what it depends on, and which must be built for a target.
#ifndef LONGSHORE_DOCKERFILE_BUILD_PLAN_H_
#define LONGSHORE_DOCKERFILE_BUILD_PLAN_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "dockerfile/parser.h"

namespace longshore::dockerfile {

struct PlanOptions {
  std::vector<std::pair<std::string, std::string>> build_args;  // --build-arg
  std::string target;  // --target; empty = the last stage
  std::string target_platform = "linux/amd64";
  std::string build_platform = "linux/amd64";
};

struct BaseRef {
  enum Kind { kScratch, kImage, kStage } kind = kScratch;
  std::string image;  // expanded ref (kImage)
  int stage = -1;     // kStage
};

struct Stage {
  int index = 0;
  std::string name;  // lower-case, may be empty
  BaseRef base;
  std::string platform;  // expanded --platform, or the target platform
  const Node* from = nullptr;
  std::vector<const Node*> instructions;  // after FROM
  // Stages used by COPY --from / RUN --mount from= (a stage this one is based
  // on is in base.stage, not here). Sorted, unique.
  std::vector<int> depends_on;
  // COPY --from=<image ref> (and mount from=) that is not a stage. Unique, in
  // order of appearance.
  std::vector<std::string> copy_from_images;
};

struct BuildPlan {
  std::vector<Stage> stages;
  // Stages to build, dependencies first, target last; unneeded stages absent.
  std::vector<int> order;
  int target = -1;
  // "K=V": effective ARGs declared before the first FROM (build args applied)
  // and the predefined platform args (TARGETPLATFORM, BUILDPLATFORM, ...).
  std::vector<std::string> global_args;
  // --build-arg names that no ARG of a built stage (or the global scope)
  // declares; proxy args and predefined args are never reported.
  std::vector<std::string> unused_build_args;
  PlanOptions options;  // as given to Plan()
  std::string filename;
  char escape = '\\';
};

// Errors are InvalidArgument "<file>:<line>: <what>" (or without a location
// where none applies): `target stage "x" could not be found`, a FROM whose base
// expands to nothing, circular stage references, instructions before the first
// FROM. The plan points into `df`: `df` must outlive it.
absl::StatusOr<BuildPlan> Plan(const ParsedDockerfile& df,
                               const PlanOptions& opts);

// Splits "os/arch[/variant]" into its parts; arch defaults to amd64.
struct Platform {
  std::string os, arch, variant;
};
Platform ParsePlatform(absl::string_view spec);

// Proxy build args (HTTP_PROXY, https_proxy, NO_PROXY, ...), which reach RUN
// without an ARG and stay out of history and cache keys.
bool IsProxyArg(absl::string_view name);

}  // namespace longshore::dockerfile

#endif  // LONGSHORE_DOCKERFILE_BUILD_PLAN_H_
