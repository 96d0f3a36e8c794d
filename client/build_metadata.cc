#include "client/build_metadata.h"

#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"

namespace longshore::client {

std::string MetadataJson(const BuildMetadata& m) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  if (!m.config_digest.empty()) {
    j["containerimage.config.digest"] = m.config_digest;
  }
  if (!m.image_digest.empty()) j["containerimage.digest"] = m.image_digest;
  if (!m.names.empty()) j["image.name"] = absl::StrJoin(m.names, ",");
  j["longshore.build.id"] = m.build_id;
  return j.dump(2) + "\n";
}

}  // namespace longshore::client
