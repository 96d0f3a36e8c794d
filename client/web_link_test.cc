#include "client/web_link.h"

#include "gtest/gtest.h"

namespace longshore::client {
namespace {

TEST(BuildPageUrlTest, JoinsTheAdvertisedAddressAndTheBuildId) {
  EXPECT_EQ(BuildPageUrl("https://farm.example:7443", "b-1"),
            "https://farm.example:7443/builds/b-1");
  EXPECT_EQ(BuildPageUrl("http://127.0.0.1:8080/", "b-2"),
            "http://127.0.0.1:8080/builds/b-2");
  EXPECT_EQ(BuildPageUrl("https://ci.example/longshore//", "b-3"),
            "https://ci.example/longshore/builds/b-3");
}

TEST(BuildPageUrlTest, NoLinkWithoutAnHttpAddress) {
  EXPECT_EQ(BuildPageUrl("", "b-1"), "");
  EXPECT_EQ(BuildPageUrl("javascript:alert(1)", "b-1"), "");
  EXPECT_EQ(BuildPageUrl("farm.example:7443", "b-1"), "");
  EXPECT_EQ(BuildPageUrl("https://farm.example", ""), "");
}

}  // namespace
}  // namespace longshore::client
