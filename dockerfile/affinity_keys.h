// What a worker that built a Dockerfile before is likely to hold in its layer
// cache, as short keys the scheduler can compare: placement prefers a free
// worker that built the same Dockerfile (its steps' layers), then one that
// pulled the same base image, over a cold one.
#ifndef LONGSHORE_DOCKERFILE_AFFINITY_KEYS_H_
#define LONGSHORE_DOCKERFILE_AFFINITY_KEYS_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace longshore::dockerfile {

inline constexpr absl::string_view kDockerfileKeyPrefix = "dockerfile:";
inline constexpr absl::string_view kBaseKeyPrefix = "from:";

// "dockerfile:<sha256 of the Dockerfile's bytes, target and platform>", then
// "from:<image>" for each FROM that names an image (not scratch, not an
// earlier stage), as written. A Dockerfile that does not parse gives only the
// first key.
std::vector<std::string> AffinityKeys(absl::string_view dockerfile,
                                      absl::string_view target,
                                      absl::string_view platform);

}  // namespace longshore::dockerfile

#endif  // LONGSHORE_DOCKERFILE_AFFINITY_KEYS_H_
