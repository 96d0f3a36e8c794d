#include "sandbox/user_spec.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace longshore::sandbox {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

constexpr char kPasswd[] =
    "root:x:0:0:root:/root:/bin/sh\n"
    "# a comment\n"
    "builder:x:1000:1000:Builder:/home/builder:/bin/sh\n"
    "_apt:x:42:65534::/nonexistent:/usr/sbin/nologin\n"
    "broken:x:notanumber:1\n";
constexpr char kGroup[] =
    "root:x:0:\n"
    "wheel:x:10:root,builder\n"
    "builder:x:1000:\n"
    "docker:x:2000:other, builder\n"
    "nogroup:x:65534:\n";

TEST(ResolveUserTest, DefaultIsRootWithItsMemberships) {
  auto u = ResolveUser("", kPasswd, kGroup);
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->uid, 0u);
  EXPECT_EQ(u->gid, 0u);
  EXPECT_EQ(u->name, "root");
  EXPECT_EQ(u->home, "/root");
  EXPECT_THAT(u->groups, ElementsAre(10u));
}

TEST(ResolveUserTest, NameGivesPrimaryAndSupplementaryGroups) {
  auto u = ResolveUser("builder", kPasswd, kGroup);
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->uid, 1000u);
  EXPECT_EQ(u->gid, 1000u);
  EXPECT_THAT(u->groups, ElementsAre(10u, 2000u));
  EXPECT_EQ(u->home, "/home/builder");
}

TEST(ResolveUserTest, NumericUidFoundInPasswdUsesItsEntry) {
  auto u = ResolveUser("42", kPasswd, kGroup);
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->uid, 42u);
  EXPECT_EQ(u->gid, 65534u);
  EXPECT_EQ(u->name, "_apt");
}

TEST(ResolveUserTest, UnknownNumericUidGetsGroupZero) {
  auto u = ResolveUser("1234", kPasswd, kGroup);
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->uid, 1234u);
  EXPECT_EQ(u->gid, 0u);
  EXPECT_THAT(u->groups, IsEmpty());
  EXPECT_EQ(u->home, "/");
}

TEST(ResolveUserTest, ExplicitGroupReplacesMemberships) {
  auto u = ResolveUser("builder:docker", kPasswd, kGroup);
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->uid, 1000u);
  EXPECT_EQ(u->gid, 2000u);
  EXPECT_THAT(u->groups, IsEmpty());
  auto n = ResolveUser("1234:5678", kPasswd, kGroup);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n->uid, 1234u);
  EXPECT_EQ(n->gid, 5678u);
}

TEST(ResolveUserTest, Errors) {
  EXPECT_EQ(ResolveUser("nobody-here", kPasswd, kGroup).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(
      ResolveUser("builder:nogroup-here", kPasswd, kGroup).status().code(),
      absl::StatusCode::kNotFound);
  EXPECT_FALSE(ResolveUser("builder:", kPasswd, kGroup).ok());
  EXPECT_FALSE(ResolveUser(":10", kPasswd, kGroup).ok());
  EXPECT_FALSE(ResolveUser("a:b:c", kPasswd, kGroup).ok());
  // -1 means "unchanged" to the kernel and is not a valid id.
  EXPECT_FALSE(ResolveUser("4294967295", kPasswd, kGroup).ok());
  // An image without /etc/passwd still runs numeric users.
  auto u = ResolveUser("7:8", "", "");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->uid, 7u);
  EXPECT_EQ(u->gid, 8u);
  EXPECT_FALSE(ResolveUser("root", "", "").ok());
}

}  // namespace
}  // namespace longshore::sandbox
