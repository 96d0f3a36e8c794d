#include "client/platform_index.h"

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace longshore::client {
namespace {

TEST(PlatformIndexTest, OneEntryPerPlatform) {
  image::Descriptor a{
      image::kMediaTypeOciManifest, "sha256:aa", 100, {}, {}, std::nullopt};
  image::Descriptor b{
      image::kMediaTypeOciManifest, "sha256:bb", 200, {}, {}, std::nullopt};
  auto j = nlohmann::json::parse(image::ToJson(
      MakePlatformIndex({a, b}, {"linux/amd64", "linux/arm/v7"})));
  EXPECT_EQ(j["mediaType"], image::kMediaTypeOciIndex);
  ASSERT_EQ(j["manifests"].size(), 2u);
  EXPECT_EQ(j["manifests"][0]["digest"], "sha256:aa");
  EXPECT_EQ(j["manifests"][0]["platform"]["architecture"], "amd64");
  EXPECT_EQ(j["manifests"][0]["platform"]["os"], "linux");
  EXPECT_EQ(j["manifests"][1]["size"], 200);
  EXPECT_EQ(j["manifests"][1]["platform"]["architecture"], "arm");
  EXPECT_EQ(j["manifests"][1]["platform"]["variant"], "v7");
}

}  // namespace
}  // namespace longshore::client
