// `--metadata-file`: the result of a build as the JSON object buildx writes,
// so CI scripts that read containerimage.digest keep working.
#ifndef LONGSHORE_CLIENT_BUILD_METADATA_H_
#define LONGSHORE_CLIENT_BUILD_METADATA_H_

#include <string>
#include <vector>

namespace longshore::client {

struct BuildMetadata {
  std::string build_id;
  std::string image_digest;        // manifest digest; empty while detached
  std::string config_digest;       // image config digest
  std::vector<std::string> names;  // -t names (pushed or recorded)
};

// Keys: "containerimage.digest", "containerimage.config.digest",
// "image.name" (names joined by ","), "longshore.build.id"; a key whose
// value is unknown is left out, as buildx does. Pretty-printed, ends in a
// newline.
std::string MetadataJson(const BuildMetadata& m);

}  // namespace longshore::client

#endif  // LONGSHORE_CLIENT_BUILD_METADATA_H_
