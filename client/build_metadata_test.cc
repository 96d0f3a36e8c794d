#include "client/build_metadata.h"

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace longshore::client {
namespace {

TEST(BuildMetadataTest, HasBuildxKeys) {
  BuildMetadata m;
  m.build_id = "b-1";
  m.image_digest = "sha256:aa";
  m.config_digest = "sha256:bb";
  m.names = {"reg:5000/app:1", "reg:5000/app:latest"};
  auto j = nlohmann::json::parse(MetadataJson(m));
  EXPECT_EQ(j["containerimage.digest"], "sha256:aa");
  EXPECT_EQ(j["containerimage.config.digest"], "sha256:bb");
  EXPECT_EQ(j["image.name"], "reg:5000/app:1,reg:5000/app:latest");
  EXPECT_EQ(j["longshore.build.id"], "b-1");
}

TEST(BuildMetadataTest, UnknownValuesAreLeftOut) {
  BuildMetadata m;
  m.build_id = "b-2";
  auto j = nlohmann::json::parse(MetadataJson(m));
  EXPECT_FALSE(j.contains("containerimage.digest"));
  EXPECT_FALSE(j.contains("image.name"));
  EXPECT_EQ(j.size(), 1u);
}

}  // namespace
}  // namespace longshore::client
