#include "dockerfile/affinity_keys.h"

#include "gtest/gtest.h"

namespace longshore::dockerfile {
namespace {

TEST(AffinityKeysTest, DockerfileKeyThenBaseImages) {
  auto keys = AffinityKeys(
      "FROM registry:5000/python:3.11 AS build\nRUN true\n"
      "FROM build AS test\nFROM scratch\nCOPY --from=build /a /a\n"
      "FROM registry:5000/python:3.11\n",
      "", "linux/amd64");
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_EQ(keys[0].rfind("dockerfile:sha256:", 0), 0u) << keys[0];
  EXPECT_EQ(keys[1], "from:registry:5000/python:3.11");
}

TEST(AffinityKeysTest, SameInputsSameKeyOtherwiseNot) {
  const char* df = "FROM alpine\nRUN echo hi\n";
  EXPECT_EQ(AffinityKeys(df, "", ""), AffinityKeys(df, "", ""));
  EXPECT_NE(AffinityKeys(df, "", "")[0], AffinityKeys(df, "t", "")[0]);
  EXPECT_NE(AffinityKeys(df, "", "")[0],
            AffinityKeys(df, "", "linux/arm64")[0]);
  EXPECT_NE(AffinityKeys(df, "", "")[0],
            AffinityKeys("FROM alpine\nRUN echo ho\n", "", "")[0]);
  EXPECT_EQ(AffinityKeys(df, "", "")[1], "from:alpine");
}

TEST(AffinityKeysTest, UnparsableDockerfileGivesOnlyItsDigest) {
  EXPECT_EQ(AffinityKeys("FROM a\nRUN <<EOF\nunterminated", "", "").size(), 1u);
}

}  // namespace
}  // namespace longshore::dockerfile
