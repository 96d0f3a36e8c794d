#include "worker/step_cache.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/file_util.h"
#include "common/sha256.h"
#include "nlohmann/json.hpp"

namespace longshore::worker {

absl::Status StepCache::Init() { return MakeDirs(dir_, 0700); }

std::string StepCache::PathFor(const std::string& key) const {
  absl::string_view hex = key;
  absl::ConsumePrefix(&hex, "sha256:");
  return absl::StrCat(dir_, "/", hex, ".json");
}

std::optional<CachedStep> StepCache::Lookup(const std::string& key) const {
  if (!IsValidDigest(key)) return std::nullopt;
  auto text = ReadFile(PathFor(key));
  if (!text.ok()) return std::nullopt;
  auto j = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  CachedStep s;
  s.has_layer = j.value("has_layer", false);
  s.digest = j.value("digest", "");
  s.diff_id = j.value("diff_id", "");
  s.size = j.value("size", int64_t{0});
  s.media_type = j.value("media_type", "");
  if (s.has_layer && (!IsValidDigest(s.digest) || !IsValidDigest(s.diff_id))) {
    return std::nullopt;
  }
  return s;
}

absl::Status StepCache::Store(const std::string& key, const CachedStep& s) {
  if (!IsValidDigest(key)) {
    return absl::InvalidArgumentError(absl::StrCat("bad cache key ", key));
  }
  nlohmann::json j = {{"has_layer", s.has_layer},
                      {"digest", s.digest},
                      {"diff_id", s.diff_id},
                      {"size", s.size},
                      {"media_type", s.media_type}};
  return WriteFileAtomic(PathFor(key), j.dump());
}

}  // namespace longshore::worker
